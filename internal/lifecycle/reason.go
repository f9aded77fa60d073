package lifecycle

// ReasonKind names, in a word, why an agent failed, was released or is being removed. It is what
// metrics (the reason label of provisioner_agents_failed_total) and Event filters use; the set is
// small and fixed, so a metric label never carries free text.
type ReasonKind string

// Kinds of reason. The failure kinds come from the pod (kubelet container states, scheduling), from
// the Jenkins view (connect timeout), or from the API server refusing a creation.
const (
	// Failures read from the pod.
	KindImagePull       ReasonKind = "ImagePull"       // ErrImagePull, ImagePullBackOff, InvalidImageName, ErrImageNeverPull
	KindCreateConfig    ReasonKind = "CreateConfig"    // CreateContainerConfigError past its grace (a Secret or ConfigMap missing)
	KindCreateContainer ReasonKind = "CreateContainer" // CreateContainerError, RunContainerError
	KindCrash           ReasonKind = "Crash"           // a container exited non-zero, or CrashLoopBackOff
	KindPodFailed       ReasonKind = "PodFailed"       // the pod's phase is Failed (evicted, deadline exceeded, ...)
	KindAgentExited     ReasonKind = "AgentExited"     // the pod succeeded without running a build
	KindUnschedulable   ReasonKind = "Unschedulable"   // unschedulable past UnschedulableGrace
	KindConnectTimeout  ReasonKind = "ConnectTimeout"  // the agent did not connect within its connect timeout

	// Creations the API server refused (the chaos report reads quota_exceeded).
	KindQuotaExceeded ReasonKind = "quota_exceeded"
	KindForbidden     ReasonKind = "forbidden"
	KindThrottled     ReasonKind = "throttled"
	KindConflict      ReasonKind = "conflict"
	KindInvalid       ReasonKind = "invalid_pod"
	KindRefused       ReasonKind = "apiserver_refused"

	// Not failures: why an agent goes.
	KindBuildFinished    ReasonKind = "BuildFinished"
	KindReleased         ReasonKind = "Released"
	KindNodeWithoutPod   ReasonKind = "NodeWithoutPod"
	KindPodWithoutNode   ReasonKind = "PodWithoutNode"
	KindRetentionExpired ReasonKind = "RetentionExpired"
	// KindDisconnected: a suspended agent, disconnected after it was online (Jenkins restarted, the
	// connection dropped); KindReconnectTimeout: it did not come back within the reconnect grace.
	KindDisconnected     ReasonKind = "Disconnected"
	KindReconnectTimeout ReasonKind = "ReconnectTimeout"

	// An agent killed in the middle of its build (the provisioner_agents_lost_total reasons).
	KindOOMKilled         ReasonKind = "OOMKilled"         // a container of the pod was OOM-killed
	KindEvicted           ReasonKind = "Evicted"           // evicted: the Eviction API (a drain), node pressure, a taint
	KindDeletedExternally ReasonKind = "DeletedExternally" // the pod was deleted by someone else, or is gone
	// KindQueued: the pod waits for Kueue to admit it (quota in its ClusterQueue).
	KindQueued ReasonKind = "Queued"
	// KindKueueEvicted: Kueue evicted the pod (preemption, its Workload evicted or deleted).
	KindKueueEvicted ReasonKind = "KueueEvicted"
	// KindOther is a failure mark on a node whose kind a restarted provisioner cannot recover (the
	// mark carries the detail only).
	KindOther ReasonKind = "Other"
)

// Reason says why: Kind for machines, Detail for people (it is what Events, logs, the status page and
// the Jenkins offline message show).
type Reason struct {
	Kind   ReasonKind
	Detail string
}

// String is the detail, for people.
func (r Reason) String() string { return r.Detail }

// IsZero reports whether no reason is given.
func (r Reason) IsZero() bool { return r.Kind == "" && r.Detail == "" }

// Refusal reports whether the reason is the API server refusing a creation.
func (r Reason) Refusal() bool {
	switch r.Kind {
	case KindQuotaExceeded, KindForbidden, KindThrottled, KindConflict, KindInvalid, KindRefused:
		return true
	}
	return false
}

// waitingKinds are container waiting reasons after which a kubelet will not start the container
// without a change to the pod or the image: the agent can never connect.
var waitingKinds = map[string]ReasonKind{
	"ErrImagePull":               KindImagePull,
	"ImagePullBackOff":           KindImagePull,
	"InvalidImageName":           KindImagePull,
	"ErrImageNeverPull":          KindImagePull,
	"CreateContainerError":       KindCreateContainer,
	"CreateContainerConfigError": KindCreateConfig,
	"RunContainerError":          KindCreateContainer,
	"CrashLoopBackOff":           KindCrash,
}
