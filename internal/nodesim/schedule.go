package nodesim

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// The scheduler's part: binding a pod to the simulated node when its node selector, resources and
// scheduling gates allow, or marking it unschedulable as kube-scheduler does (PodScheduled=False,
// reason Unschedulable).

// schedule plays kube-scheduler for an unbound pod: bind it to this node, or say why it cannot be.
func (s *Simulator) schedule(ctx context.Context, key string, pod *corev1.Pod) error {
	if len(pod.Spec.SchedulingGates) > 0 {
		s.gated(pod)
		return nil
	}
	reason := ""
	switch b := s.behaviourOf(pod); {
	case b.Unschedulable:
		reason = unschedulableMessage
	case !s.selectorMatches(pod):
		reason = unschedulableMessage
	default:
		if res := s.insufficient(pod); res != "" {
			reason = fmt.Sprintf("0/1 nodes are available: 1 Insufficient %s. preemption: 0/1 nodes are available: "+
				"1 No preemption victims found for incoming pod.", res)
		}
	}
	if d := s.behaviourOf(pod).ScheduleDelay; reason == "" && d > 0 {
		// The scheduler's latency: queueing, filtering and scoring before the binding.
		s.mu.Lock()
		wait := time.Until(s.firstSeen[pod.UID].Add(d))
		s.mu.Unlock()
		if wait > 0 {
			s.queue.AddAfter(key, wait)
			return nil
		}
	}
	if reason != "" {
		if err := s.markUnschedulable(ctx, pod, reason); err != nil {
			return err
		}
		// The scheduler retries unschedulable pods on its own clock; so does this, so a fixed cause
		// (SetBehaviour, a new node label) is noticed without an event on the pod.
		s.queue.AddAfter(key, s.cfg.RetryInterval)
		return nil
	}
	err := s.cfg.Client.CoreV1().Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		Target:     corev1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: s.cfg.NodeName},
	}, metav1.CreateOptions{})
	switch {
	case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
		// Bound already (the cache lags our own binding) or gone: the next event says which.
		return nil
	case err != nil:
		return fmt.Errorf("bind pod %s to %s: %w", key, s.cfg.NodeName, err)
	}
	s.count(func(c *Counters) { c.Bound++ })
	s.emit(pod, "default-scheduler", corev1.EventTypeNormal, "Scheduled",
		fmt.Sprintf("Successfully assigned %s/%s to %s", pod.Namespace, pod.Name, s.cfg.NodeName))
	return nil
}

// gated leaves a pod with scheduling gates alone, as kube-scheduler does: its SchedulingGates
// PreEnqueue plugin keeps such a pod out of the active queue, so it is neither bound (the
// apiserver refuses a binding while gates remain) nor reported unschedulable, and no
// FailedScheduling event is posted. The PodScheduled=False condition with reason SchedulingGated
// is the apiserver's own, written at creation (pod strategy's applySchedulingGatedCondition), so
// nothing is written here either. Removing the last gate is an update event, which brings the pod
// back to schedule. The simulator notes the first time it sees each gated pod (Events only, with
// reason SchedulingGated), so tests can tell "seen and held" from "not seen yet".
func (s *Simulator) gated(pod *corev1.Pod) {
	s.mu.Lock()
	first := !s.gatedSeen[pod.UID]
	s.gatedSeen[pod.UID] = true
	s.mu.Unlock()
	if !first {
		return
	}
	gates := make([]string, 0, len(pod.Spec.SchedulingGates))
	for _, g := range pod.Spec.SchedulingGates {
		gates = append(gates, g.Name)
	}
	s.note(pod.Name, corev1.PodReasonSchedulingGated, "waiting for scheduling gates: "+strings.Join(gates, ", "))
}

// selectorMatches checks the pod's nodeSelector against this node's labels; affinity and taints are
// not simulated (the node has no taints).
func (s *Simulator) selectorMatches(pod *corev1.Pod) bool {
	nodeLabels := s.nodeLabels()
	for k, v := range pod.Spec.NodeSelector {
		if nodeLabels[k] != v {
			return false
		}
	}
	return true
}

// insufficient names the first resource the pod requests beyond the node's allocatable. Pods already
// running are not subtracted: the defaults are large enough that only an absurd request trips this.
func (s *Simulator) insufficient(pod *corev1.Pod) string {
	want := corev1.ResourceList{}
	for _, c := range pod.Spec.Containers {
		for k, v := range c.Resources.Requests {
			q := want[k]
			q.Add(v)
			want[k] = q
		}
	}
	for _, k := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		have, ok := s.cfg.Capacity[k]
		if q, asked := want[k]; asked && ok && q.Cmp(have) > 0 {
			return string(k)
		}
	}
	return ""
}

// markUnschedulable writes PodScheduled=False as the scheduler does, once per distinct message.
func (s *Simulator) markUnschedulable(ctx context.Context, pod *corev1.Pod, message string) error {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable && c.Message == message {
			return nil
		}
	}
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		cur, err := s.cfg.Client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cur.UID != pod.UID || cur.Spec.NodeName != "" {
			return nil
		}
		setCondition(&cur.Status, corev1.PodCondition{
			Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
			Reason: corev1.PodReasonUnschedulable, Message: message,
		}, metav1.Now())
		_, err = s.cfg.Client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("report pod %s/%s unschedulable: %w", pod.Namespace, pod.Name, err)
	}
	s.count(func(c *Counters) { c.Unschedulable++ })
	s.emit(pod, "default-scheduler", corev1.EventTypeWarning, "FailedScheduling", message)
	return nil
}

// setCondition replaces or adds a condition, keeping lastTransitionTime when the status is unchanged
// (as the scheduler and kubelet do, so "since when" stays true).
func setCondition(st *corev1.PodStatus, c corev1.PodCondition, now metav1.Time) {
	for i := range st.Conditions {
		if st.Conditions[i].Type != c.Type {
			continue
		}
		if st.Conditions[i].Status == c.Status {
			c.LastTransitionTime = st.Conditions[i].LastTransitionTime
		} else {
			c.LastTransitionTime = now
		}
		if c.LastProbeTime.IsZero() {
			c.LastProbeTime = st.Conditions[i].LastProbeTime
		}
		st.Conditions[i] = c
		return
	}
	c.LastTransitionTime = now
	st.Conditions = append(st.Conditions, c)
}
