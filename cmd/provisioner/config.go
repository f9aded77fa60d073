package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
	"k8s.io/apimachinery/pkg/util/validation"
)

// runConfig is every setting of `provisioner run`. Each is read from PROVISIONER_<envconfig name>
// and can be overridden by the flag of the same name in kebab case (JENKINS_URL → --jenkins-url).
type runConfig struct {
	JenkinsURL       string        `envconfig:"JENKINS_URL" desc:"Jenkins root URL the provisioner talks to (required)"`
	JenkinsUser      string        `envconfig:"JENKINS_USER" desc:"Jenkins user the API token belongs to"`
	JenkinsToken     string        `envconfig:"JENKINS_TOKEN" desc:"Jenkins API token (prefer JENKINS_TOKEN_FILE)" secret:"true"`
	JenkinsTokenFile string        `envconfig:"JENKINS_TOKEN_FILE" desc:"file holding the Jenkins API token, e.g. a mounted Secret"`
	JenkinsCAFile    string        `envconfig:"JENKINS_CA_FILE" desc:"PEM bundle of CAs to trust for Jenkins' TLS certificate"`
	AgentJenkinsURL  string        `envconfig:"AGENT_JENKINS_URL" desc:"Jenkins URL agents dial (default JENKINS_URL)"`
	AgentTunnel      string        `envconfig:"AGENT_TUNNEL" desc:"host:port agents use for Jenkins' inbound TCP port (JENKINS_TUNNEL)"`
	Namespace        string        `envconfig:"NAMESPACE" desc:"namespace of agent pods (default the in-cluster namespace, else default)"`
	Templates        string        `envconfig:"TEMPLATES" default:"/etc/provisioner/templates" desc:"template file or directory of *.yaml files"`
	Kubeconfig       string        `envconfig:"KUBECONFIG" desc:"kubeconfig file (default $KUBECONFIG, else in-cluster)"`
	PollInterval     time.Duration `envconfig:"POLL_INTERVAL" default:"1s" desc:"how often the Jenkins queue and agents are read (2 requests a poll)"`
	BusyPollInterval time.Duration `envconfig:"BUSY_POLL_INTERVAL" default:"250ms" desc:"computer-list reads while an agent could take a build unnoticed; bounds the shortest build guaranteed its own pod"`
	KueueQueue       string        `envconfig:"KUEUE_QUEUE" desc:"Kueue LocalQueue (in NAMESPACE) of agent pods whose template names none: sets the kueue.x-k8s.io/queue-name label"`
	MaxAgents        int           `envconfig:"MAX_AGENTS" default:"100" desc:"global cap on live agent pods (0: none)"`
	Listen           string        `envconfig:"LISTEN" default:":8080" desc:"address of the status page, /metrics, /healthz and /readyz"`
	StatusListen     string        `envconfig:"STATUS_LISTEN" desc:"address of the status page alone, e.g. 127.0.0.1:8081 to reach it only through kubectl port-forward (default: on LISTEN)"`
	ServiceAccount   string        `envconfig:"SERVICE_ACCOUNT" desc:"the provisioner's own service account; templates naming it are refused (the Deployment sets it from spec.serviceAccountName)"`
	MaxUnauthorized  int           `envconfig:"MAX_UNAUTHORIZED" default:"5" desc:"401 answers from Jenkins in a row after which the provisioner stops (a leader gives up its Lease); -1: never"`
	InstallationID   string        `envconfig:"INSTALLATION_ID" desc:"names this installation on its Jenkins nodes and pods (default: the id in the Secret jenkins-agent-provisioner-installation, made once)"`
	KubeQPS          float64       `envconfig:"KUBE_QPS" default:"50" desc:"Kubernetes client queries per second"`
	KubeBurst        int           `envconfig:"KUBE_BURST" default:"100" desc:"Kubernetes client burst"`
	LeaderElect      bool          `envconfig:"LEADER_ELECT" default:"false" desc:"elect a leader among replicas through a Lease; only the leader provisions"`
	LeaderNamespace  string        `envconfig:"LEADER_ELECTION_NAMESPACE" desc:"namespace of the Lease (default NAMESPACE)"`
	LeaderLease      string        `envconfig:"LEADER_ELECTION_ID" default:"jenkins-agent-provisioner" desc:"name of the Lease"`
	LeaseDuration    time.Duration `envconfig:"LEASE_DURATION" default:"15s" desc:"how long a lost leader's lease lasts before another replica takes over"`
	ReleaseGrace     time.Duration `envconfig:"RELEASE_GRACE" default:"10s" desc:"how long surplus agents wait for demand before they are let go"`
	OrphanGrace      time.Duration `envconfig:"ORPHAN_GRACE" default:"2m" desc:"age after which half an agent (node without pod, pod or Secret without node) is removed"`
	ReconnectGrace   time.Duration `envconfig:"RECONNECT_GRACE" default:"5m" desc:"how long an agent that lost its connection (Jenkins restarted, the network dropped) is kept for its build to resume"`
	UnschedulableFor time.Duration `envconfig:"UNSCHEDULABLE_GRACE" default:"5m" desc:"how long an agent pod may stay unschedulable before it counts as failed"`
	BackoffBase      time.Duration `envconfig:"BACKOFF_BASE" default:"5s" desc:"first wait after a template's agent fails; doubles per failure"`
	BackoffMax       time.Duration `envconfig:"BACKOFF_MAX" default:"5m" desc:"longest wait after repeated failures"`
	LogLevel         string        `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat        string        `envconfig:"LOG_FORMAT" default:"json" desc:"json or console"`
}

const envPrefix = "PROVISIONER"

// errHelp is returned when --help was asked for: usage printed, nothing to run.
var errHelp = flag.ErrHelp

// loadRunConfig reads the environment, then flags. A missing or invalid setting is an error that
// names both its variable and its flag.
func loadRunConfig(args []string, usageOut io.Writer) (*runConfig, error) {
	cfg := &runConfig{}
	if err := envconfig.Process(envPrefix, cfg); err != nil {
		return nil, fmt.Errorf("read settings from the environment: %w", err)
	}
	fs := flag.NewFlagSet("provisioner run", flag.ContinueOnError)
	fs.SetOutput(usageOut)
	bindFlags(fs, cfg)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: provisioner run [flags]\n\nProvisions one Kubernetes agent pod per queued Jenkins build.\n"+
			"Every setting is an environment variable %s_<NAME> or the flag below.\n\n", envPrefix)
		fs.VisitAll(func(f *flag.Flag) {
			fmt.Fprintf(fs.Output(), "  --%s (%s_%s)\n    \t%s", f.Name, envPrefix, envName(f.Name), f.Usage)
			if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" && !strings.Contains(f.Name, "token") {
				fmt.Fprintf(fs.Output(), " (default %s)", f.DefValue)
			}
			fmt.Fprintln(fs.Output())
		})
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return cfg, cfg.validate()
}

func (c *runConfig) validate() error {
	var errs []error
	if c.JenkinsURL == "" {
		errs = append(errs, errors.New("PROVISIONER_JENKINS_URL (--jenkins-url) is required"))
	} else if !strings.HasPrefix(c.JenkinsURL, "http://") && !strings.HasPrefix(c.JenkinsURL, "https://") {
		errs = append(errs, fmt.Errorf("PROVISIONER_JENKINS_URL (--jenkins-url) must be an http:// or https:// URL, got %q", c.JenkinsURL))
	}
	if c.JenkinsToken != "" && c.JenkinsTokenFile != "" {
		errs = append(errs, errors.New("set PROVISIONER_JENKINS_TOKEN or PROVISIONER_JENKINS_TOKEN_FILE, not both"))
	}
	if (c.JenkinsToken != "" || c.JenkinsTokenFile != "") && c.JenkinsUser == "" {
		errs = append(errs, errors.New("PROVISIONER_JENKINS_USER (--jenkins-user) is required with a token"))
	}
	if c.PollInterval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("PROVISIONER_POLL_INTERVAL (--poll-interval) must be at least 100ms, got %s", c.PollInterval))
	}
	if c.BusyPollInterval <= 0 || c.BusyPollInterval > c.PollInterval {
		errs = append(errs, fmt.Errorf("PROVISIONER_BUSY_POLL_INTERVAL (--busy-poll-interval) must be positive and at most the poll interval, got %s", c.BusyPollInterval))
	}
	if c.MaxAgents < 0 {
		errs = append(errs, fmt.Errorf("PROVISIONER_MAX_AGENTS (--max-agents) must be 0 (no cap) or more, got %d", c.MaxAgents))
	}
	if c.KueueQueue != "" {
		// Kueue's webhook refuses a queue name that is not a DNS-1123 subdomain; a label value
		// longer than 63 characters the apiserver refuses: say so now, not on every pod.
		if msgs := append(validation.IsDNS1123Subdomain(c.KueueQueue), validation.IsValidLabelValue(c.KueueQueue)...); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("PROVISIONER_KUEUE_QUEUE (--kueue-queue) %q is not a LocalQueue name: %s", c.KueueQueue, strings.Join(msgs, "; ")))
		}
	}
	if c.KubeQPS <= 0 || c.KubeBurst <= 0 {
		errs = append(errs, errors.New("PROVISIONER_KUBE_QPS and PROVISIONER_KUBE_BURST must be positive"))
	}
	switch c.LogFormat {
	case "json", "console":
	default:
		errs = append(errs, fmt.Errorf("PROVISIONER_LOG_FORMAT (--log-format) must be json or console, got %q", c.LogFormat))
	}
	return errors.Join(errs...)
}

// bindFlags registers one flag per envconfig field, defaulting to the value already read from the
// environment, so a flag wins over its variable.
func bindFlags(fs *flag.FlagSet, cfg any) {
	v := reflect.ValueOf(cfg).Elem()
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name := flagName(f.Tag.Get("envconfig"))
		usage := f.Tag.Get("desc")
		ptr := v.Field(i).Addr().Interface()
		switch p := ptr.(type) {
		case *string:
			fs.StringVar(p, name, *p, usage)
		case *bool:
			fs.BoolVar(p, name, *p, usage)
		case *int:
			fs.IntVar(p, name, *p, usage)
		case *float64:
			fs.Float64Var(p, name, *p, usage)
		case *time.Duration:
			fs.DurationVar(p, name, *p, usage)
		default:
			panic("bindFlags: unsupported field type " + f.Type.String())
		}
	}
}

func flagName(env string) string { return strings.ToLower(strings.ReplaceAll(env, "_", "-")) }
func envName(flag string) string { return strings.ToUpper(strings.ReplaceAll(flag, "-", "_")) }

// namespaceDefault is the in-cluster namespace when running in a pod, else "default".
func namespaceDefault() string {
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
		if ns := strings.TrimSpace(string(b)); ns != "" {
			return ns
		}
	}
	return "default"
}
