package lifecycle

import (
	"context"
	"errors"
	"time"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins"
	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
)

// Jenkins is what the controller needs of Jenkins; *jenkins.Client implements it.
type Jenkins interface {
	Queue(ctx context.Context) ([]jenkins.Demand, error)
	Computers(ctx context.Context) ([]jenkins.Computer, error)
	CreateNode(ctx context.Context, n jenkins.NodeSpec) error
	DeleteNode(ctx context.Context, name string) error
	SetTemporarilyOffline(ctx context.Context, name, reason string) error
	SetOnline(ctx context.Context, name string) error
	NodeSecret(ctx context.Context, name string) (string, error)
	JobLabelExpression(ctx context.Context, taskURL string) (string, error)
	EnsurePlaceholderNode(ctx context.Context, name, label, description string) error
}

// Templates gives the current template set; *podtemplate.Watcher implements it.
type Templates interface {
	Current() *podtemplate.Set
}

// Config holds the controller's settings. Zero durations take the defaults below.
type Config struct {
	// Namespace is where agent pods and Secrets live.
	Namespace string
	// JenkinsURL is the controller's Jenkins URL, recorded on pods.
	JenkinsURL string
	// AgentJenkinsURL is the URL agents dial (JENKINS_URL in the pod); default JenkinsURL.
	AgentJenkinsURL string
	// AgentTunnel is JENKINS_TUNNEL for agents (host:port of the inbound TCP port), if any.
	AgentTunnel string
	// MaxAgents caps live agent pods across all templates; 0 means no global cap.
	MaxAgents int
	// KueueQueue is the Kueue LocalQueue of pods whose template names none (PROVISIONER_KUEUE_QUEUE);
	// "" for none.
	KueueQueue string
	// PollInterval is how often Jenkins' queue and computers are read (2 requests a poll).
	PollInterval time.Duration
	// BusyPollInterval is how often the computer list alone is read while an agent of ours could
	// receive a build unnoticed; it bounds the shortest build guaranteed its own pod.
	BusyPollInterval time.Duration
	// ReleaseGrace is how long surplus agents wait for demand before they are let go.
	ReleaseGrace time.Duration
	// OrphanGrace is how long half an agent (a node without pod, a pod or Secret without node) may
	// exist before the reaper removes it; longer than one provisioning takes.
	OrphanGrace time.Duration
	// UnschedulableGrace is how long a pod may stay unschedulable before it counts as failed.
	UnschedulableGrace time.Duration
	// DefaultConnectTimeout applies to pods made without a connect-timeout annotation.
	DefaultConnectTimeout time.Duration
	// BackoffBase and BackoffMax bound the per-template backoff after failures.
	BackoffBase, BackoffMax time.Duration
	// ReconnectGrace is how long an agent of ours that lost its connection (Jenkins restarted, the
	// network dropped) is kept, pod and node, for its agent to reconnect and its build to resume.
	// Default 5 minutes: Jenkins' own wait for a resumed node block's node
	// (ExecutorPickle.timeoutForNodeMillis), after which Jenkins aborts the build anyway.
	ReconnectGrace time.Duration
	// Workers is how many provisioning and deletion steps may run at once.
	Workers int
	// MaxUnauthorized is how many 401 answers in a row make Run give up (and a leader its Lease),
	// so a standby with a good token can lead; 0 takes the default 5, a negative value never gives up.
	MaxUnauthorized int
	// InstallationID names this installation in node descriptions and creation records (default: the
	// id the installation Secret was created with; see EnsureIdentity).
	InstallationID string
	// Identity, when its Key is set, is used as is instead of the installation Secret (tests).
	Identity Identity
	// PlaceholderName is the Jenkins node that makes Jenkins name labels in `why`.
	PlaceholderName string
	// Clock is the controller's clock (default time.Now). Tests inject one to evaluate warm
	// schedules and the adaptive estimate's decay at another time than now.
	Clock func() time.Time
}

const (
	// PlaceholderNodeName is the default name and label of the placeholder node.
	PlaceholderNodeName    = "jenkins-agent-provisioner-placeholder"
	placeholderDescription = "[jenkins-agent-provisioner] placeholder: never connected, never runs a build. " +
		"It exists because Jenkins names the label a build waits for only while at least one agent node exists; " +
		"deleting it hides pipeline demand from the provisioner, which recreates it."
)

func (c *Config) setDefaults() error {
	if c.Namespace == "" {
		return errors.New("lifecycle: Namespace is required")
	}
	if c.AgentJenkinsURL == "" {
		c.AgentJenkinsURL = c.JenkinsURL
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.PollInterval, time.Second)
	def(&c.BusyPollInterval, c.PollInterval/4)
	def(&c.ReleaseGrace, 10*time.Second)
	def(&c.OrphanGrace, 2*time.Minute)
	def(&c.UnschedulableGrace, 5*time.Minute)
	def(&c.DefaultConnectTimeout, 5*time.Minute)
	def(&c.BackoffBase, 5*time.Second)
	def(&c.BackoffMax, 5*time.Minute)
	def(&c.ReconnectGrace, 5*time.Minute)
	if c.Workers <= 0 {
		c.Workers = 32
	}
	if c.PlaceholderName == "" {
		c.PlaceholderName = PlaceholderNodeName
	}
	if c.MaxUnauthorized == 0 {
		c.MaxUnauthorized = 5
	}
	return nil
}

// decideConfig is the part of the settings decide applies.
func (c *Config) decideConfig() DecideConfig {
	return DecideConfig{
		MaxAgents:             c.MaxAgents,
		ReleaseGrace:          c.ReleaseGrace,
		OrphanGrace:           c.OrphanGrace,
		UnschedulableGrace:    c.UnschedulableGrace,
		DefaultConnectTimeout: c.DefaultConnectTimeout,
		ConfigErrorGrace:      15 * time.Second,
		BackoffBase:           c.BackoffBase,
		BackoffMax:            c.BackoffMax,
		ReconnectGrace:        c.ReconnectGrace,
		ResumeSettle:          min(c.ReconnectGrace, resumeSettle),
		Identity:              c.Identity,
	}
}

// resumeSettle is how long after Jenkins comes back a marked, connected, idle agent is not yet judged
// done: Jenkins resumes each pipeline build in the background once it is up
// (FlowExecutionList.ItemListenerImpl), so the node block bound to the agent may be queued some
// seconds after the agent reconnected.
const resumeSettle = 30 * time.Second
