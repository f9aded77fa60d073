package lifecycle

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins"
)

// State is where an agent is in its life, read from its pod and its Jenkins computer.
type State string

const (
	// Starting: pod and node exist, the agent has not connected yet.
	Starting State = "starting"
	// Queued: the pod waits for Kueue to admit it (a scheduling gate): waiting for quota, not failing.
	Queued State = "queued"
	// Idle: connected and accepting a build; Jenkins hands it the next matching build within ms.
	Idle State = "idle"
	// Busy: an executor runs a build.
	Busy State = "busy"
	// Done: it ran its build (or was released) and is idle again: delete it.
	Done State = "done"
	// Released: demand went away before it got a build; marked offline, deleted on the next poll.
	Released State = "released"
	// Failed: it cannot become an agent (image pull, crash, unschedulable, connect timeout...).
	Failed State = "failed"
	// Terminating: the pod is being deleted.
	Terminating State = "terminating"
	// Retained: kept on purpose by podRetention until its expiry.
	Retained State = "retained"
	// Orphan: one half of an agent without the other (a pod without node, a node without pod).
	Orphan State = "orphan"
	// Ready: connected, kept as headroom with our ready mark (no build lands on it), brought online
	// when a build waits (decide_warm.go).
	Ready State = "ready"
	// Suspended: an agent that was online lost its connection (Jenkins restarted, the network
	// dropped) while its pod runs: kept, pod and node, for the reconnect grace, because a pipeline
	// node block resumes only on its own node.
	Suspended State = "suspended"
	// Resuming: a queue item is bound to the agent by name (a pipeline node block resumed after a
	// restart): the agent is brought online for exactly that item and serves nothing else.
	Resuming State = "resuming"
	// Lost: the agent's pod was killed (deleted, evicted, OOM-killed) in the middle of its build.
	Lost State = "lost"
)

// Pod annotations written at creation, so decisions about an existing agent never depend on the
// current template set (in-flight agents keep the template they were made from).
const (
	annotationConnectTimeout   = "jenkins-agent-provisioner/connect-timeout"
	annotationPodRetention     = "jenkins-agent-provisioner/pod-retention"
	annotationRetentionTimeout = "jenkins-agent-provisioner/retention-timeout"
	annotationQueuedAt         = "jenkins-agent-provisioner/queued-at"
	annotationRetainUntil      = "jenkins-agent-provisioner/retain-until"
)

// Agent is one agent as the world shows it: its pod, its Jenkins computer, or both.
type Agent struct {
	Name     string
	Template string
	Pod      *corev1.Pod
	Computer *jenkins.Computer
	State    State
	// Reason says why an agent failed, was released, or is an orphan.
	Reason Reason
	// Build is the URL of the build it runs, when busy.
	Build string
	// Marked is true when the node already carries one of our temporarily-offline marks.
	Marked bool
}

// classifyOptions are the graces that turn a slow agent into a failed one.
type classifyOptions struct {
	// UnschedulableGrace: how long a pod may stay unschedulable (the cluster may scale up).
	UnschedulableGrace time.Duration
	// DefaultConnectTimeout: used when a pod lacks its connect-timeout annotation.
	DefaultConnectTimeout time.Duration
	// OrphanGrace: how long one half of an agent may exist without the other.
	OrphanGrace time.Duration
	// ConfigErrorGrace: CreateContainerConfigError may be a Secret not yet seen by the kubelet.
	ConfigErrorGrace time.Duration
	// JenkinsBack is when Jenkins answered again after an outage (zero: none seen): agents cannot
	// connect to a Jenkins that is down, so connect timeouts and node-less graces count from then.
	JenkinsBack time.Time
}

// classify reads an agent's state from its pod and computer. pod or c may be nil, not both.
// jenkinsSeenAt is when the computer list was read: a pod newer than that cannot be judged by its
// node's absence.
//
// A new state (Queued, Ready: see the package doc) is one more constant above and one
// more case here, placed before the cases it must win against.
func classify(pod *corev1.Pod, c *jenkins.Computer, now, jenkinsSeenAt time.Time, o classifyOptions) (State, Reason) {
	// An agent with a build on it (running, or marked as running one) whose pod is gone, going or
	// dead was killed under its build: no grace can bring it back. The provisioner's own deletions
	// delete the node first, so a node still there means someone else killed the pod.
	midBuild := c != nil && (c.Busy() || markedBusy(c))
	if pod == nil {
		if midBuild {
			return Lost, Reason{KindDeletedExternally, "DeletedExternally: the agent pod was deleted by someone else"}
		}
		// A node of ours without its pod: provisioning crashed between node and pod, or the pod was
		// deleted behind our back. decide applies the grace from the node's description.
		return Orphan, Reason{KindNodeWithoutPod, "Jenkins node without a pod"}
	}
	if pod.DeletionTimestamp != nil {
		if midBuild {
			return Lost, killedReason(pod)
		}
		return Terminating, Reason{}
	}
	if _, ok := pod.Annotations[annotationRetainUntil]; ok {
		return Retained, Reason{}
	}
	if c != nil && c.Busy() {
		if podDead(pod) {
			return Lost, killedReason(pod)
		}
		return Busy, Reason{}
	}
	if carriesOurMark(c) {
		switch {
		case strings.HasPrefix(c.OfflineReason, reasonBusy):
			// Jenkins' `offline` is true for the mark alone; only Connected says whether the agent
			// is there. A marked agent without its connection may still have a build to resume.
			if !c.Connected && !podDead(pod) {
				return Suspended, Reason{KindDisconnected, "agent disconnected after its build started (Jenkins restarted or the connection dropped)"}
			}
			return Done, Reason{KindBuildFinished, "build finished"}
		case strings.HasPrefix(c.OfflineReason, reasonFailed):
			return Failed, Reason{KindOther, strings.TrimPrefix(c.OfflineReason, reasonFailed)}
		case strings.HasPrefix(c.OfflineReason, reasonReady):
			return classifyReady(pod, c, now, o)
		default:
			return Released, Reason{KindReleased, strings.TrimPrefix(c.OfflineReason, reasonPrefix)}
		}
	}
	if c == nil {
		// The node is created before the pod, so a pod without a node means the node went away
		// (deleted in Jenkins by someone, or by us before a crash). Judge only pods older than both
		// the grace and the Jenkins read.
		// Judge by the Jenkins view's time, not by now: a slow or retried read can be seconds old
		// when it is used. creationTimestamp has one-second resolution, hence the extra second.
		created := pod.CreationTimestamp.Time
		if !created.Add(time.Second).Before(jenkinsSeenAt) {
			return Starting, Reason{}
		}
		// An agent that exited (its node deleted, by us before a crash or by someone) needs no grace.
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			return Orphan, Reason{KindPodWithoutNode, "agent exited and its Jenkins node is gone"}
		}
		// Time Jenkins was unreachable does not count: the first view after an outage judges from
		// the end of the outage.
		if jenkinsSeenAt.Sub(laterOf(created, o.JenkinsBack)) > o.OrphanGrace {
			return Orphan, Reason{KindPodWithoutNode, "agent pod without a Jenkins node"}
		}
		return Starting, Reason{}
	}
	switch pod.Status.Phase {
	case corev1.PodSucceeded:
		return Failed, Reason{KindAgentExited, "agent exited before running a build"}
	case corev1.PodFailed:
		return Failed, podFailureReason(pod)
	}
	if r, failed := containerFailure(pod, now, o); failed {
		return Failed, r
	}
	if !c.Offline {
		return Idle, Reason{}
	}
	if kueueQueued(pod) {
		return Queued, queuedReason(pod)
	}
	if cond := podCondition(pod, corev1.PodScheduled); cond != nil && cond.Status == corev1.ConditionFalse &&
		cond.Reason == corev1.PodReasonUnschedulable && now.Sub(cond.LastTransitionTime.Time) > o.UnschedulableGrace {
		return Failed, Reason{KindUnschedulable, fmt.Sprintf("Unschedulable for more than %s: %s", o.UnschedulableGrace, cond.Message)}
	}
	timeout := o.DefaultConnectTimeout
	if v, err := time.ParseDuration(pod.Annotations[annotationConnectTimeout]); err == nil && v > 0 {
		timeout = v
	}
	// "Not online" is what the Jenkins view says, so the timeout is measured to the view's time.
	// A pod Kueue queued counts from its admission: waiting for quota is not being slow to connect.
	if jenkinsSeenAt.Sub(laterOf(connectStart(pod), o.JenkinsBack)) > timeout {
		return Failed, Reason{KindConnectTimeout, fmt.Sprintf("agent not online within connectTimeout %s", timeout)}
	}
	return Starting, Reason{}
}

// containerFailure finds a container that can no longer become a running agent.
func containerFailure(pod *corev1.Pod, now time.Time, o classifyOptions) (Reason, bool) {
	statuses := append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...)
	for _, cs := range statuses {
		if w := cs.State.Waiting; w != nil {
			kind, ok := waitingKinds[w.Reason]
			if !ok {
				continue
			}
			if kind == KindCreateConfig && now.Sub(pod.CreationTimestamp.Time) < o.ConfigErrorGrace {
				continue
			}
			return Reason{kind, describe(cs.Name, w.Reason, w.Message)}, true
		}
		if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
			return Reason{KindCrash, describe(cs.Name, firstNonEmpty(t.Reason, "Error"), fmt.Sprintf("exit code %d %s", t.ExitCode, t.Message))}, true
		}
	}
	return Reason{}, false
}

func podFailureReason(pod *corev1.Pod) Reason {
	statuses := append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...)
	for _, cs := range statuses {
		if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
			return Reason{KindCrash, describe(cs.Name, firstNonEmpty(t.Reason, "Error"), fmt.Sprintf("exit code %d %s", t.ExitCode, t.Message))}
		}
	}
	if pod.Status.Reason != "" {
		return Reason{KindPodFailed, strings.TrimSpace(pod.Status.Reason + ": " + pod.Status.Message)}
	}
	return Reason{KindPodFailed, "pod failed"}
}

// markedBusy reports whether a node carries our busy mark (a build started on it).
func markedBusy(c *jenkins.Computer) bool {
	return carriesOurMark(c) && strings.HasPrefix(c.OfflineReason, reasonBusy)
}

// markedBuild is the URL of the build an agent runs: on an executor, else from our busy mark.
func markedBuild(c *jenkins.Computer) string {
	if b := currentBuild(c); b != "" {
		return b
	}
	if !markedBusy(c) {
		return ""
	}
	rest := strings.TrimPrefix(c.OfflineReason, reasonBusy)
	if strings.HasPrefix(rest, " (") && strings.HasSuffix(rest, ")") {
		return rest[2 : len(rest)-1]
	}
	return ""
}

// podDead reports whether the pod's containers have ended for good (restartPolicy Never).
func podDead(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// killedReason names what killed an agent's pod under its build: OOMKilled (a container's
// termination), Evicted (the kubelet's node-pressure eviction sets reason Evicted; the Eviction API,
// the taint manager and pod GC set the DisruptionTarget condition), else DeletedExternally for a
// pod being deleted, or the pod's own failure.
func killedReason(pod *corev1.Pod) Reason {
	statuses := append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...)
	for _, cs := range statuses {
		for _, t := range []*corev1.ContainerStateTerminated{cs.State.Terminated, cs.LastTerminationState.Terminated} {
			if t != nil && t.Reason == "OOMKilled" {
				return Reason{KindOOMKilled, describe(cs.Name, "OOMKilled", fmt.Sprintf("exit code %d %s", t.ExitCode, t.Message))}
			}
		}
	}
	if pod.Status.Reason == "Evicted" {
		return Reason{KindEvicted, strings.TrimSpace("Evicted: " + pod.Status.Message)}
	}
	if cond := podCondition(pod, corev1.DisruptionTarget); cond != nil && cond.Status == corev1.ConditionTrue {
		return Reason{KindEvicted, strings.TrimSpace(fmt.Sprintf("Evicted (%s): %s", cond.Reason, cond.Message))}
	}
	if pod.DeletionTimestamp != nil {
		return Reason{KindDeletedExternally, "DeletedExternally: the agent pod was deleted by someone else"}
	}
	return podFailureReason(pod)
}

func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func describe(container, reason, message string) string {
	message = strings.TrimSpace(message)
	if message == "" {
		return fmt.Sprintf("%s (container %s)", reason, container)
	}
	return fmt.Sprintf("%s (container %s): %s", reason, container, message)
}

func podCondition(pod *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == t {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
