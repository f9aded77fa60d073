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
)

// Offline reasons we write on Jenkins nodes. They all start with reasonPrefix, which is how a
// restarted provisioner recognises its own marks.
const (
	reasonPrefix   = "jenkins-agent-provisioner: "
	reasonBusy     = reasonPrefix + "single-use agent, build running"
	reasonReleased = reasonPrefix + "released, no build is waiting for it"
	reasonFailed   = reasonPrefix + "failed: "
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
	Reason string
	// Build is the URL of the build it runs, when busy.
	Build string
	// Marked is true when the node already carries one of our temporarily-offline marks.
	Marked bool
}

// waitingFailures are container waiting reasons after which a kubelet will not start the container
// without a change to the pod or the image: the agent can never connect.
var waitingFailures = map[string]bool{
	"ErrImagePull":               true,
	"ImagePullBackOff":           true,
	"InvalidImageName":           true,
	"ErrImageNeverPull":          true,
	"CreateContainerError":       true,
	"CreateContainerConfigError": true,
	"RunContainerError":          true,
	"CrashLoopBackOff":           true,
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
}

// classify reads an agent's state from its pod and computer. pod or c may be nil, not both.
// jenkinsSeenAt is when the computer list was read: a pod newer than that cannot be judged by its
// node's absence.
func classify(pod *corev1.Pod, c *jenkins.Computer, now, jenkinsSeenAt time.Time, o classifyOptions) (State, string) {
	marked := c != nil && c.TemporarilyOffline && strings.HasPrefix(c.OfflineReason, reasonPrefix)

	if pod == nil {
		// A node of ours without its pod: provisioning crashed between node and pod, or the pod was
		// deleted behind our back. The caller applies the grace from the node's description.
		return Orphan, "Jenkins node without a pod"
	}
	if pod.DeletionTimestamp != nil {
		return Terminating, ""
	}
	if _, ok := pod.Annotations[annotationRetainUntil]; ok {
		return Retained, ""
	}
	if c != nil && c.Busy() {
		return Busy, ""
	}
	if marked {
		switch {
		case strings.HasPrefix(c.OfflineReason, reasonBusy):
			return Done, "build finished"
		case strings.HasPrefix(c.OfflineReason, reasonFailed):
			return Failed, strings.TrimPrefix(c.OfflineReason, reasonFailed)
		default:
			return Released, strings.TrimPrefix(c.OfflineReason, reasonPrefix)
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
			return Starting, ""
		}
		// An agent that exited (its node deleted, by us before a crash or by someone) needs no grace.
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			return Orphan, "agent exited and its Jenkins node is gone"
		}
		if jenkinsSeenAt.Sub(created) > o.OrphanGrace {
			return Orphan, "agent pod without a Jenkins node"
		}
		return Starting, ""
	}
	switch pod.Status.Phase {
	case corev1.PodSucceeded:
		return Failed, "agent exited before running a build"
	case corev1.PodFailed:
		return Failed, podFailureReason(pod, "pod failed")
	}
	if reason, failed := containerFailure(pod, now, o); failed {
		return Failed, reason
	}
	if !c.Offline {
		return Idle, ""
	}
	if cond := podCondition(pod, corev1.PodScheduled); cond != nil && cond.Status == corev1.ConditionFalse &&
		cond.Reason == corev1.PodReasonUnschedulable && now.Sub(cond.LastTransitionTime.Time) > o.UnschedulableGrace {
		return Failed, fmt.Sprintf("Unschedulable for more than %s: %s", o.UnschedulableGrace, cond.Message)
	}
	timeout := o.DefaultConnectTimeout
	if v, err := time.ParseDuration(pod.Annotations[annotationConnectTimeout]); err == nil && v > 0 {
		timeout = v
	}
	// "Not online" is what the Jenkins view says, so the timeout is measured to the view's time.
	if jenkinsSeenAt.Sub(pod.CreationTimestamp.Time) > timeout {
		return Failed, fmt.Sprintf("agent not online within connectTimeout %s", timeout)
	}
	return Starting, ""
}

// containerFailure finds a container that can no longer become a running agent.
func containerFailure(pod *corev1.Pod, now time.Time, o classifyOptions) (string, bool) {
	statuses := append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...)
	for _, cs := range statuses {
		if w := cs.State.Waiting; w != nil && waitingFailures[w.Reason] {
			if w.Reason == "CreateContainerConfigError" && now.Sub(pod.CreationTimestamp.Time) < o.ConfigErrorGrace {
				continue
			}
			return describe(cs.Name, w.Reason, w.Message), true
		}
		if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
			return describe(cs.Name, firstNonEmpty(t.Reason, "Error"), fmt.Sprintf("exit code %d %s", t.ExitCode, t.Message)), true
		}
	}
	return "", false
}

func podFailureReason(pod *corev1.Pod, fallback string) string {
	statuses := append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...)
	for _, cs := range statuses {
		if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
			return describe(cs.Name, firstNonEmpty(t.Reason, "Error"), fmt.Sprintf("exit code %d %s", t.ExitCode, t.Message))
		}
	}
	if pod.Status.Reason != "" {
		return strings.TrimSpace(pod.Status.Reason + ": " + pod.Status.Message)
	}
	return fallback
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

// currentBuild is the URL of the first build running on a computer.
func currentBuild(c *jenkins.Computer) string {
	if c == nil {
		return ""
	}
	for _, list := range [][]jenkins.Executor{c.Executors, c.OneOffExecutors} {
		for _, e := range list {
			if e.Build != nil {
				return e.Build.URL
			}
		}
	}
	return ""
}
