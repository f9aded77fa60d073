// Package podtemplate turns the pod templates administrators write into agent pods.
//
// It loads templates from YAML (one file, or every *.yaml in a directory as a mounted ConfigMap
// presents them), checks them strictly with file, line and field path in every message, resolves
// inheritance with Kubernetes' strategic merge patch (so containers, env, volumes and mounts merge by
// name exactly as kubectl merges them), picks the template for a Jenkins label expression, and
// renders the Pod and per-agent Secret for one agent. It knows nothing of Jenkins' HTTP API: the
// lifecycle controller feeds it the agent's identity.
//
// The rendered pod follows the Jenkins Kubernetes plugin's conventions, which users already know:
// a `jnlp` container running the inbound agent (added when the template has none), the agent's
// secret in the environment (here by secretKeyRef, never as a literal, so it is not readable by
// anyone who can read pods), restartPolicy Never, and a workspace volume in every container.
//
// A Set is immutable once built: a reload makes a new Set, so an agent keeps the *Template it was
// made from even after the file changes.
package podtemplate

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	utilrand "k8s.io/apimachinery/pkg/util/rand"

	"github.com/jenkins-agent-provisioner/provisioner/internal/warm"
)

// Names of the labels, annotations and Secret key the provisioner puts on what it creates; the
// reaper and the lifecycle controller find their objects by them.
const (
	LabelManagedBy       = "app.kubernetes.io/managed-by"
	ManagedByValue       = "jenkins-agent-provisioner"
	LabelName            = "app.kubernetes.io/name"
	NameValue            = "jenkins-agent"
	LabelTemplate        = "jenkins-agent-provisioner/template"
	AnnotationJenkinsURL = "jenkins-agent-provisioner/jenkins-url"
	AnnotationNodeName   = "jenkins-agent-provisioner/node-name"
	SecretKey            = "jenkins-agent-secret"
)

// DefaultAgentImage is the inbound agent image used when a template names none. It is pinned to a
// tag, never "latest", so that an agent pod is the same pod tomorrow as today.
const DefaultAgentImage = "jenkins/inbound-agent:3327.v868139a_d00e0-1"

// Defaults for fields a template leaves out.
const (
	DefaultMode             = ModeExclusive
	DefaultMaxAgents        = 10
	DefaultConnectTimeout   = 5 * time.Minute
	DefaultPodRetention     = RetentionNever
	DefaultRetentionTimeout = time.Hour
	DefaultWorkDir          = "/home/jenkins/agent"
	// JNLPContainerName is the container the inbound agent runs in, as in the Kubernetes plugin.
	JNLPContainerName = "jnlp"
	// WorkspaceVolumeName is the volume holding the agent's working directory.
	WorkspaceVolumeName = "workspace-volume"
	// maxTemplateNameLength keeps "<name>-<5 chars>" within a DNS-1123 label (63).
	maxTemplateNameLength = 63 - 6
	// agentNameSuffixLength is the random part of an agent's name.
	agentNameSuffixLength = 5
)

// Mode says which builds a template serves, as Jenkins' Node.Mode does.
type Mode string

const (
	// ModeExclusive serves only builds whose label expression its labels satisfy.
	ModeExclusive Mode = "exclusive"
	// ModeNormal also serves builds that name no label.
	ModeNormal Mode = "normal"
)

// Retention says when an agent's pod is kept after its build, for debugging.
type Retention string

const (
	RetentionNever     Retention = "never"
	RetentionOnFailure Retention = "onFailure"
	RetentionAlways    Retention = "always"
)

// Workspace is the volume for the agent's working directory.
type Workspace struct {
	// EmptyDir is set for a node-local scratch volume (the default).
	EmptyDir *corev1.EmptyDirVolumeSource `json:"emptyDir,omitempty"`
	// Ephemeral is set for a generic ephemeral volume: a PVC the pod owns, deleted with it.
	Ephemeral *EphemeralWorkspace `json:"ephemeral,omitempty"`
}

// EphemeralWorkspace describes the PVC of an ephemeral workspace.
type EphemeralWorkspace struct {
	StorageClassName string                              `json:"storageClassName,omitempty"`
	Size             resource.Quantity                   `json:"size"`
	AccessModes      []corev1.PersistentVolumeAccessMode `json:"accessModes,omitempty"`
}

// AgentSpec configures the inbound agent.
type AgentSpec struct {
	// Image for the jnlp container when the template's pod does not define one.
	Image string `json:"image,omitempty"`
	// WebSocket makes the agent connect over WebSocket through the Jenkins HTTP port instead of the
	// TCP agent port.
	WebSocket bool `json:"webSocket,omitempty"`
	// WorkDir is the agent's working directory, where the workspace volume is mounted.
	WorkDir string `json:"workDir,omitempty"`
}

// Template is one resolved template: inheritance merged, defaults applied, validated.
type Template struct {
	Name                  string
	Labels                []string
	Mode                  Mode
	MaxAgents             int
	ConnectTimeout        time.Duration
	ActiveDeadlineSeconds *int64
	PodRetention          Retention
	RetentionTimeout      time.Duration
	Workspace             Workspace
	Agent                 AgentSpec
	Pod                   corev1.PodTemplateSpec // merged with its parents
	// Warm sizes the ready agents kept for the template; nil (no warm block, or one wanting none,
	// or a parent-only template) keeps none: exactly the behaviour without warm.
	Warm *warm.Spec
	// Queue is the Kueue LocalQueue its pods join (template field queue:), "" for the
	// installation's default; a queue label in Pod's labels wins over both (see kueue.go).
	Queue string

	// Source is "file:line" of the template's definition, for messages.
	Source string
}

// Selectable reports whether the template can be picked for a build: a template with no labels in
// exclusive mode can never match a demand and only serves as a parent for others.
func (t *Template) Selectable() bool { return len(t.Labels) > 0 || t.Mode == ModeNormal }

// Identity is what makes one agent's pod different from another's.
type Identity struct {
	Name      string // agent name: pod name, Jenkins node name and Secret name
	Namespace string
	Secret    string // the agent's secret from Jenkins (jenkins-agent.jnlp)
	// JenkinsURL is the controller's root URL as the provisioner knows it; recorded on the pod.
	JenkinsURL string
	// AgentJenkinsURL is the root URL agents reach Jenkins at, when it differs (e.g. an in-cluster
	// Service); empty means JenkinsURL.
	AgentJenkinsURL string
	// Tunnel is host:port of the agent TCP port when it is not reachable at the URL's host.
	Tunnel string
	// WebSocket overrides the template's agent.webSocket when set.
	WebSocket *bool
	// Queue is the installation's Kueue LocalQueue (PROVISIONER_KUEUE_QUEUE): the queue label of
	// pods whose template names no queue; "" for none.
	Queue string
}

// NewAgentName returns "<template>-<5 random chars>", from the same alphabet Kubernetes uses for
// generated names, so agent names look like the Kubernetes plugin's.
func NewAgentName(template string) string {
	return template + "-" + utilrand.String(agentNameSuffixLength)
}

// Duration is a Go duration string in YAML ("5m", "1h30m").
type Duration struct{ time.Duration }

// UnmarshalJSON accepts a duration string; a bare number is refused because its unit would be a
// guess.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration such as \"5m\" or \"1h30m\"")
	}
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("want a duration such as \"5m\" or \"1h30m\"")
	}
	d.Duration = v
	return nil
}
