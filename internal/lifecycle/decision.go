package lifecycle

// decision.go: the vocabulary of Decide's answer (actions, notices, the Decision itself and the
// gauges' keys), apart from the rules in decide.go that produce it.

import (
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
)

// ActionKind names what an action does.
type ActionKind string

// Kinds of action. Each is one step of act (teardown.go, provision.go).
const (
	ActMarkBusy     ActionKind = "MarkBusy"     // mark a busy agent offline so no second build lands on it
	ActFinish       ActionKind = "Finish"       // a done or released agent: node, then pod and Secret (or retain)
	ActFail         ActionKind = "Fail"         // a failed agent: say why on the node, delete it, then the pod (or retain)
	ActRemoveOrphan ActionKind = "RemoveOrphan" // half an agent past its grace
	ActDeleteNode   ActionKind = "DeleteNode"   // the node of a terminating pod
	ActExpire       ActionKind = "Expire"       // a retained pod whose retention ran out
	ActRelease      ActionKind = "Release"      // a surplus agent: mark released (deleted next poll)
	ActCreate       ActionKind = "Create"       // a new agent for Template (act names it)
	ActDeleteSecret ActionKind = "DeleteSecret" // a Secret of ours whose pod is gone
	ActOwnSecret    ActionKind = "OwnSecret"    // a Secret of ours whose pod exists but is not its owner
	ActMarkReady    ActionKind = "MarkReady"    // an idle agent kept as headroom: the ready mark, so it takes no build unseen
	ActUnready      ActionKind = "Unready"      // a ready agent a waiting build needs: back online (busy watch armed first)
	ActResume       ActionKind = "Resume"       // clear our mark so the node block bound to the agent takes it
	ActLose         ActionKind = "Lose"         // an agent killed mid-build: node, then pod and Secret, at once
)

// Action is one step for one agent. Agent is the key: act never runs two steps of one agent at once.
type Action struct {
	Kind     ActionKind
	Agent    string
	Template string
	// State is the agent's state when decided (Finish: done or released).
	State  State
	Reason Reason
	// Pod is the agent's pod as the cache showed it (deletes carry its UID as a precondition).
	Pod *corev1.Pod
	// Secret is the agent's Secret as the cache showed it, when it is owned by Pod (or, for the Secret
	// actions, the Secret itself).
	Secret *corev1.Secret
	// Node is true when the agent's Jenkins node exists; NodeMarkedFailed when it already says why.
	Node, NodeMarkedFailed bool
	// Build is the URL of the build an agent marked busy runs.
	Build string
	// Retain keeps the pod (podRetention) instead of deleting it.
	Retain bool
	// Spec is the template a Create makes its agent from; QueuedAt is when the build it is made for
	// entered the queue (zero: unknown).
	Spec     *podtemplate.Template
	QueuedAt time.Time
}

// NoticeKind names something worth an Event, a log line or a metric.
type NoticeKind string

// Kinds of notice.
const (
	NoticeOnline       NoticeKind = "AgentOnline"
	NoticeBuildStarted NoticeKind = "BuildStarted"
	NoticeFailed       NoticeKind = "AgentFailed"
	NoticeRefused      NoticeKind = "ProvisioningRefused"
	NoticeUnserved     NoticeKind = "Unserved"
	NoticeSuspended    NoticeKind = "AgentSuspended" // Backoff carries the reconnect grace
	NoticeResuming     NoticeKind = "AgentResuming"
	NoticeLost         NoticeKind = "AgentLost"
	// NoticeEvicted: Kueue evicted the agent's pod (Build: the build it took with it, if any).
	NoticeEvicted NoticeKind = "AgentEvicted"
	// NoticeForeign: a pod with our labels or a node with our marker that this installation did
	// not make; it is reported once and never deleted nor counted.
	NoticeForeign NoticeKind = "ForeignObject"
	// NoticeBadDemand: a queued build whose label cannot be read (too long, too deep).
	NoticeBadDemand NoticeKind = "UnreadableDemand"
)

// Notice is an observation decide made once; act reports it (Event, log, metric).
type Notice struct {
	Kind     NoticeKind
	Agent    string
	Template string
	Pod      *corev1.Pod
	Build    string
	Reason   Reason
	// Backoff is how long the template now waits (failures, refusals).
	Backoff time.Duration
	// Latency is queue-to-online for AgentOnline (0: unknown).
	Latency time.Duration
	// Label and Builds: a label no template serves.
	Label  string
	Builds int
	// Code and Detail of a refusal.
	Code string
	// ReadyFor is how long the agent of a BuildStarted waited as a ready agent (0: it was none).
	ReadyFor time.Duration
	// Object is what a foreign notice is about ("pod", "node"); QueueID the build of a bad demand.
	Object  string
	QueueID int64
}

// Decision is what one poll decided.
type Decision struct {
	// Hold is true when nothing was decided (the Jenkins view is not fresh): act does nothing and the
	// previous status stays.
	Hold    bool
	Actions []Action
	Notices []Notice
	Memory  Memory
	Status  Status
	// Exposed counts agents that could take a build unnoticed; the busy watch runs while > 0.
	Exposed int
	// Agents counts agents by template and state; Waiting counts builds by label and wait reason.
	Agents  map[AgentKey]int
	Waiting map[WaitKey]int
	// Warm is every warm template's desired ready agents and its source (decide_warm.go).
	Warm []WarmStatus
	// Foreign counts the objects that look like ours but are not, by kind ("pod", "node").
	Foreign map[string]int
}

// AgentKey and WaitKey are the label sets of the agent and waiting-build gauges.
type AgentKey struct {
	Template string
	State    State
}

type WaitKey struct {
	Label  string
	Reason WaitKind
}
