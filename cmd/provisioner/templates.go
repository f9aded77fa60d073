package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/jenkins-agent-provisioner/provisioner/internal/labelexpr"
	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
	"github.com/jenkins-agent-provisioner/provisioner/internal/warm"
)

const templatesUsage = `Usage:
  provisioner templates check  [--file F] [--kubeconfig K] [--namespace N] [--offline]
  provisioner templates render --label EXPR [--file F] [--namespace N] [--jenkins-url U]

check   validates every template (file, line and field of each problem) and, when a cluster is
        configured (--kubeconfig, $KUBECONFIG or in-cluster), creates each rendered agent pod with
        server-side dry run so that the apiserver validates it too, and looks up the Kueue
        LocalQueues the pods join (a missing one is a problem; Kueue absent or unreadable is a
        warning). Exit code 1 on any problem.
render  prints the template a build asking for EXPR would get and the pod (and Secret, its value
        masked) the provisioner would create for it. EXPR "" is a build that names no label.
`

// templatesFlags are the settings of both subcommands; defaults come from the same PROVISIONER_*
// variables `provisioner run` reads, so that in the provisioner's own pod the commands check what
// the controller loads.
type templatesFlags struct {
	file, kubeconfig, namespace, label  string
	jenkinsURL, agentJenkinsURL, tunnel string
	serviceAccount, kueueQueue          string
	offline                             bool
	labelSet                            bool
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func parseTemplatesFlags(sub string, args []string, stderr io.Writer) (*templatesFlags, error) {
	f := &templatesFlags{}
	fs := flag.NewFlagSet("provisioner templates "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, templatesUsage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&f.file, "file", envOr("PROVISIONER_TEMPLATES", "/etc/provisioner/templates"), "template file, or directory of *.yaml files ($PROVISIONER_TEMPLATES)")
	fs.StringVar(&f.kubeconfig, "kubeconfig", envOr("PROVISIONER_KUBECONFIG", os.Getenv("KUBECONFIG")), "kubeconfig of the cluster to dry-run pods on ($PROVISIONER_KUBECONFIG, $KUBECONFIG; else in-cluster)")
	fs.StringVar(&f.namespace, "namespace", envOr("PROVISIONER_NAMESPACE", "default"), "namespace of agent pods ($PROVISIONER_NAMESPACE)")
	fs.StringVar(&f.jenkinsURL, "jenkins-url", envOr("PROVISIONER_JENKINS_URL", "https://jenkins.example.com/"), "Jenkins root URL put in the pod ($PROVISIONER_JENKINS_URL)")
	fs.StringVar(&f.agentJenkinsURL, "agent-jenkins-url", os.Getenv("PROVISIONER_AGENT_JENKINS_URL"), "Jenkins URL agents dial, when it differs ($PROVISIONER_AGENT_JENKINS_URL)")
	fs.StringVar(&f.serviceAccount, "service-account", os.Getenv("PROVISIONER_SERVICE_ACCOUNT"), "the provisioner's own service account, which templates may not name ($PROVISIONER_SERVICE_ACCOUNT)")
	fs.StringVar(&f.kueueQueue, "kueue-queue", os.Getenv("PROVISIONER_KUEUE_QUEUE"), "Kueue LocalQueue of pods whose template names none ($PROVISIONER_KUEUE_QUEUE)")
	fs.StringVar(&f.tunnel, "tunnel", os.Getenv("PROVISIONER_AGENT_TUNNEL"), "host:port of Jenkins' inbound TCP port for agents ($PROVISIONER_AGENT_TUNNEL)")
	if sub == "check" {
		fs.BoolVar(&f.offline, "offline", false, "do not contact a cluster, even when one is configured")
	}
	if sub == "render" {
		fs.StringVar(&f.label, "label", "", "label expression of the build, as in node('...') or agent { label '...' }; \"\" for none (required)")
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "label" {
			f.labelSet = true
		}
	})
	return f, nil
}

// runTemplates runs `provisioner templates check|render`. Exit codes: 0 fine, 1 the templates (or
// the label) have a problem, 2 the command was used wrongly.
func runTemplates(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, templatesUsage)
		return 2
	}
	sub := args[0]
	switch sub {
	case "import":
		return templatesImport(args[1:], stdout, stderr)
	case "check", "render":
	case "help", "-h", "--help":
		fmt.Fprint(stdout, templatesUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "provisioner templates: unknown command %q\n\n%s", sub, templatesUsage)
		return 2
	}
	f, err := parseTemplatesFlags(sub, args[1:], stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "provisioner templates %s: %v\n", sub, err)
		return 2
	}
	if sub == "check" {
		return templatesCheck(ctx, f, stdout, stderr)
	}
	if !f.labelSet {
		fmt.Fprintf(stderr, "provisioner templates render: --label is required (--label '' for a build that names no label)\n")
		return 2
	}
	return templatesRender(f, stdout, stderr)
}

// printLoadError prints one problem per line, as the loader reports them.
func printLoadError(stderr io.Writer, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(stderr, "error: %s\n", line)
	}
}

func templatesCheck(ctx context.Context, f *templatesFlags, stdout, stderr io.Writer) int {
	set, err := podtemplate.LoadWith(f.file, podtemplate.Options{ProvisionerServiceAccount: f.serviceAccount})
	if err != nil {
		printLoadError(stderr, err)
		return 1
	}
	for _, t := range set.Templates {
		fmt.Fprintf(stdout, "%s: template %s: %s\n", t.Source, t.Name, describeTemplate(t))
	}
	// Risky settings are an administrator's choice, and warm counts above their bounds are cut:
	// said, not refused. A parent's settings are reported with each child that merges them.
	for _, t := range set.Templates {
		if !t.Selectable() {
			continue
		}
		for _, w := range append(podtemplate.SecurityWarnings(t), podtemplate.WarmWarnings(t)...) {
			fmt.Fprintf(stdout, "warning: %s: template %s: %s\n", t.Source, t.Name, w)
		}
	}
	if _, ok := set.Select(""); !ok {
		// Not an error (a Jenkins may require labels everywhere), but a common surprise.
		fmt.Fprintf(stdout, "note: no template has mode: normal, so builds that name no label get no agent\n")
	}

	if f.offline {
		fmt.Fprintf(stdout, "%d templates valid (server-side dry run skipped: --offline)\n", len(set.Templates))
		return 0
	}
	cfg, err := templatesKubeConfig(f.kubeconfig)
	if errors.Is(err, errNoCluster) {
		fmt.Fprintf(stdout, "%d templates valid (server-side dry run skipped: no kubeconfig and not in a cluster)\n", len(set.Templates))
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "error: kubernetes client: %v\n", err)
		return 1
	}
	failed := 0
	checked := 0
	for _, t := range set.Templates {
		if !t.Selectable() {
			continue // a parent only: its merged pod may be incomplete on purpose
		}
		checked++
		if err := dryRunTemplate(ctx, client, t, f); err != nil {
			failed++
			fmt.Fprintf(stderr, "error: %s: template %s: %v\n", t.Source, t.Name, err)
		}
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "%d of %d rendered pods rejected by the apiserver\n", failed, checked)
		return 1
	}
	if missing := checkKueueQueues(ctx, client, f.namespace, kueueQueuesOf(set, f), stdout, stderr); missing > 0 {
		fmt.Fprintf(stderr, "%d Kueue LocalQueues missing\n", missing)
		return 1
	}
	fmt.Fprintf(stdout, "%d templates valid; %d rendered pods accepted by the apiserver (server-side dry run in namespace %s)\n", len(set.Templates), checked, f.namespace)
	return 0
}

// dryRunTemplate creates the Secret and Pod of one would-be agent with dryRun=All: admission and
// validation run in full, nothing is stored.
func dryRunTemplate(ctx context.Context, client kubernetes.Interface, t *podtemplate.Template, f *templatesFlags) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pod, secret, err := podtemplate.Render(t, identityFor(t, f, "dry-run-secret"))
	if err != nil {
		return err
	}
	opts := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	if _, err := client.CoreV1().Secrets(f.namespace).Create(ctx, secret, opts); err != nil {
		return fmt.Errorf("apiserver rejected the Secret: %s", apiMessage(err))
	}
	if _, err := client.CoreV1().Pods(f.namespace).Create(ctx, pod, opts); err != nil {
		return fmt.Errorf("apiserver rejected the pod: %s", apiMessage(err))
	}
	return nil
}

// apiMessage keeps the apiserver's own wording, which names the offending fields.
func apiMessage(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return status.Status().Message
	}
	return err.Error()
}

func identityFor(t *podtemplate.Template, f *templatesFlags, secret string) podtemplate.Identity {
	return podtemplate.Identity{
		Name:            podtemplate.NewAgentName(t.Name),
		Namespace:       f.namespace,
		Secret:          secret,
		JenkinsURL:      f.jenkinsURL,
		AgentJenkinsURL: f.agentJenkinsURL,
		Tunnel:          f.tunnel,
		Queue:           f.kueueQueue,
	}
}

func describeTemplate(t *podtemplate.Template) string {
	if !t.Selectable() {
		return "parent only (no labels, mode exclusive)"
	}
	labels := "(none)"
	if len(t.Labels) > 0 {
		labels = strings.Join(t.Labels, " ")
	}
	retention := string(t.PodRetention)
	if t.PodRetention != podtemplate.RetentionNever {
		retention += " for " + t.RetentionTimeout.String()
	}
	desc := fmt.Sprintf("labels %s, mode %s, maxAgents %d, connectTimeout %s, podRetention %s", labels, t.Mode, t.MaxAgents, t.ConnectTimeout, retention)
	if t.Warm != nil {
		desc += ", warm: " + t.Warm.String()
	}
	return desc
}

const maskedSecret = "********"

func templatesRender(f *templatesFlags, stdout, stderr io.Writer) int {
	set, err := podtemplate.LoadWith(f.file, podtemplate.Options{ProvisionerServiceAccount: f.serviceAccount})
	if err != nil {
		printLoadError(stderr, err)
		return 1
	}
	expr := strings.TrimSpace(f.label)
	shown := "(none: a build that names no label)"
	if expr != "" {
		norm, err := labelexpr.Normalize(expr)
		if err != nil {
			// Jenkins takes an expression it cannot parse as one label name; so does Select.
			fmt.Fprintf(stderr, "warning: %v; taken as a single label name, as Jenkins does\n", err)
			norm = expr
		}
		shown = norm
	}
	t, ok := set.Select(expr)
	if !ok {
		if expr == "" {
			fmt.Fprintf(stderr, "error: no template has mode: normal, so builds that name no label get no agent\n")
		} else {
			fmt.Fprintf(stderr, "error: no template's labels satisfy %s\n", shown)
		}
		return 1
	}
	pod, secret, err := podtemplate.Render(t, identityFor(t, f, maskedSecret))
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	// The Secret is shown with its value masked and in stringData, so that nothing that looks like
	// a real secret is ever printed.
	secret.Data = nil
	secret.StringData = map[string]string{podtemplate.SecretKey: maskedSecret}

	podYAML, err := yaml.Marshal(pod)
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	secretYAML, err := yaml.Marshal(secret)
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "# label expression: %s\n# template: %s (%s): %s\n", shown, t.Name, t.Source, describeTemplate(t))
	if t.Warm != nil {
		// The schedules from the clock alone; the adaptive estimate starts at zero in a new process.
		n, src := warm.Desired(t.Warm, time.Now(), warm.Estimate{})
		fmt.Fprintf(stdout, "# ready agents wanted now: %d (%s; adaptive demand not counted)\n", n, cmp.Or(string(src), "none"))
	}
	fmt.Fprintf(stdout, "---\n%s---\n%s", stripStatus(podYAML), secretYAML)
	return 0
}

// stripStatus drops the empty status the Pod type always marshals; it is not part of what is sent.
func stripStatus(b []byte) []byte {
	return []byte(strings.TrimSuffix(string(b), "status: {}\n"))
}

var errNoCluster = errors.New("no cluster configured")

// templatesKubeConfig picks the cluster for the dry run: the kubeconfig named, else the in-cluster
// service account, else none (errNoCluster), in which case check validates offline only.
func templatesKubeConfig(path string) (*rest.Config, error) {
	if path == "" {
		c, err := rest.InClusterConfig()
		if errors.Is(err, rest.ErrNotInCluster) {
			return nil, errNoCluster
		}
		if err != nil {
			return nil, fmt.Errorf("in-cluster config: %w", err)
		}
		return c, nil
	}
	c, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", path, err)
	}
	return c, nil
}
