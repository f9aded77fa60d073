package nodesim

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The pod's status as the kubelet computes it from its containers: phase, conditions, container
// states, and the status of a pod that is killed.

// refresh recomputes the phase and conditions from the container statuses.
func (r *podRun) refresh(terminal bool) {
	refreshStatus(r.pod, &r.status, terminal, metav1.Now())
}

// refreshStatus sets phase and the kubelet-owned conditions from the container statuses, with the
// kubelet's own rules (getPhase in pkg/kubelet/kubelet_pods.go, without sidecar init containers).
func refreshStatus(pod *corev1.Pod, st *corev1.PodStatus, terminal bool, now metav1.Time) {
	st.Phase = phaseOf(pod, st, terminal)
	done := isTerminal(st.Phase)
	setCondition(st, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}, now)
	setCondition(st, corev1.PodCondition{Type: corev1.PodReadyToStartContainers, Status: boolCond(st.PodIP != "" && !done)}, now)

	var incomplete []string
	for _, c := range pod.Spec.InitContainers {
		cs := findStatus(st.InitContainerStatuses, c.Name)
		if cs == nil || cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
			incomplete = append(incomplete, c.Name)
		}
	}
	if len(incomplete) == 0 || done {
		setCondition(st, corev1.PodCondition{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}, now)
	} else {
		setCondition(st, corev1.PodCondition{Type: corev1.PodInitialized, Status: corev1.ConditionFalse,
			Reason: "ContainersNotInitialized", Message: fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(incomplete, " "))}, now)
	}

	var unready []string
	for _, c := range pod.Spec.Containers {
		if cs := findStatus(st.ContainerStatuses, c.Name); cs == nil || !cs.Ready {
			unready = append(unready, c.Name)
		}
	}
	for _, t := range []corev1.PodConditionType{corev1.ContainersReady, corev1.PodReady} {
		switch {
		case done:
			setCondition(st, corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, Reason: "PodCompleted"}, now)
		case len(unready) == 0:
			setCondition(st, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue}, now)
		default:
			setCondition(st, corev1.PodCondition{Type: t, Status: corev1.ConditionFalse,
				Reason: "ContainersNotReady", Message: fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))}, now)
		}
	}
}

// phaseOf is the kubelet's getPhase for regular init containers and containers.
func phaseOf(pod *corev1.Pod, st *corev1.PodStatus, terminal bool) corev1.PodPhase {
	pendingInit, failedInit := 0, 0
	for _, c := range pod.Spec.InitContainers {
		cs := findStatus(st.InitContainerStatuses, c.Name)
		switch {
		case cs == nil, cs.State.Running != nil:
			pendingInit++
		case cs.State.Terminated != nil:
			if cs.State.Terminated.ExitCode != 0 {
				failedInit++
			}
		case cs.State.Waiting != nil:
			if cs.LastTerminationState.Terminated != nil {
				if cs.LastTerminationState.Terminated.ExitCode != 0 {
					failedInit++
				}
			} else {
				pendingInit++
			}
		default:
			pendingInit++
		}
	}
	unknown, running, waiting, stopped, succeeded := 0, 0, 0, 0, 0
	for _, c := range pod.Spec.Containers {
		cs := findStatus(st.ContainerStatuses, c.Name)
		switch {
		case cs == nil:
			unknown++
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil:
			stopped++
			if cs.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case cs.State.Waiting != nil:
			if cs.LastTerminationState.Terminated != nil {
				stopped++
			} else {
				waiting++
			}
		default:
			unknown++
		}
	}
	if failedInit > 0 && pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
		return corev1.PodFailed
	}
	switch {
	case pendingInit > 0, waiting > 0:
		return corev1.PodPending
	case running > 0 && unknown == 0:
		return corev1.PodRunning
	case running == 0 && stopped > 0 && unknown == 0:
		if terminal {
			if stopped == succeeded {
				return corev1.PodSucceeded
			}
			return corev1.PodFailed
		}
		switch {
		case pod.Spec.RestartPolicy == corev1.RestartPolicyAlways:
			return corev1.PodRunning
		case stopped == succeeded:
			return corev1.PodSucceeded
		case pod.Spec.RestartPolicy == corev1.RestartPolicyNever:
			return corev1.PodFailed
		default:
			return corev1.PodRunning
		}
	default:
		return corev1.PodPending
	}
}

// killStatus is what a kubelet reports after it stopped a pod it was told to end (deletion, deadline):
// running containers terminated (the agent by SIGTERM, the rest by SIGKILL after ignoring it),
// containers that never started "could not be located", and a terminal phase. It reports whether
// anything changed, so an already finished pod is not written again.
func killStatus(pod *corev1.Pod, st *corev1.PodStatus, now time.Time) bool {
	before := st.DeepCopy()
	agent := agentContainer(pod)
	for _, c := range pod.Spec.Containers {
		cs := findStatus(st.ContainerStatuses, c.Name)
		if cs == nil {
			st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{Name: c.Name, Image: c.Image})
			cs = &st.ContainerStatuses[len(st.ContainerStatuses)-1]
		}
		switch {
		case cs.State.Running != nil:
			code := int32(exitSIGKILL)
			if c.Name == agent {
				code = exitSIGTERM
			}
			cs.State = corev1.ContainerState{Terminated: terminated(cs, code, now, c, "")}
		case cs.State.Terminated == nil:
			cs.State = corev1.ContainerState{Terminated: unknownTerminated()}
		}
		cs.Ready, cs.Started = false, ptr(false)
	}
	for i := range st.InitContainerStatuses {
		if cs := &st.InitContainerStatuses[i]; cs.State.Terminated == nil {
			cs.State = corev1.ContainerState{Terminated: unknownTerminated()}
		}
	}
	refreshStatus(pod, st, true, metav1.NewTime(now))
	return !statusEqual(before, st)
}

// statusEqual compares what matters for a rewrite: phase and container states (times aside).
func statusEqual(a, b *corev1.PodStatus) bool {
	if a.Phase != b.Phase || len(a.ContainerStatuses) != len(b.ContainerStatuses) {
		return false
	}
	for i := range a.ContainerStatuses {
		x, y := a.ContainerStatuses[i].State, b.ContainerStatuses[i].State
		if (x.Running == nil) != (y.Running == nil) || (x.Waiting == nil) != (y.Waiting == nil) || (x.Terminated == nil) != (y.Terminated == nil) {
			return false
		}
	}
	return true
}

func findStatus(list []corev1.ContainerStatus, name string) *corev1.ContainerStatus {
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}
