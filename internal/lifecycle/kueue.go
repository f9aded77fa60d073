package lifecycle

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
)

// Kueue (kueue.sigs.k8s.io) admits pods labelled with a LocalQueue: its webhook gives each the
// scheduling gate kueueAdmissionGate at creation and its pod controller removes the gate once the
// queue's ClusterQueue has quota. Until then the pod is Pending with PodScheduled=False, reason
// SchedulingGated (set by the apiserver), and no scheduler will place it: the agent waits for
// quota, it has not failed. When Kueue evicts an admitted pod (preemption, a deleted Workload) it
// first writes the condition kueueTerminationTarget with the stop reason, then deletes the pod
// (pkg/controller/jobs/pod Pod.Stop, v0.17.0).
const (
	kueueAdmissionGate     = "kueue.x-k8s.io/admission"
	kueueTerminationTarget = corev1.PodConditionType("TerminationTarget")
)

// kueueQueued reports whether a pod still waits for admission: Kueue's gate is on it, or the
// apiserver still says SchedulingGated (the gate just went and no scheduler has looked yet).
func kueueQueued(pod *corev1.Pod) bool {
	for _, g := range pod.Spec.SchedulingGates {
		if g.Name == kueueAdmissionGate {
			return true
		}
	}
	if cond := podCondition(pod, corev1.PodScheduled); cond != nil && cond.Status == corev1.ConditionFalse &&
		cond.Reason == corev1.PodReasonSchedulingGated {
		return true
	}
	return false
}

// queuedReason says what a queued agent waits for, naming the LocalQueue from the pod's label.
func queuedReason(pod *corev1.Pod) Reason {
	if q := pod.Labels[podtemplate.LabelKueueQueue]; q != "" {
		return Reason{KindQueued, fmt.Sprintf("waiting for quota in Kueue LocalQueue %s", q)}
	}
	return Reason{KindQueued, "waiting for its scheduling gates to be removed"}
}

// connectStart is when a pod's connect timeout starts. For a pod Kueue queued it is its admission,
// which the pod itself records: the PodScheduled condition's last transition, from SchedulingGated
// to scheduled (or Unschedulable) once the gate went. That survives a restart of the provisioner,
// unlike a time it would note itself. Other pods count from their creation, as before.
func connectStart(pod *corev1.Pod) time.Time {
	created := pod.CreationTimestamp.Time
	if pod.Labels[podtemplate.LabelKueueQueue] == "" {
		return created
	}
	if cond := podCondition(pod, corev1.PodScheduled); cond != nil && cond.Reason != corev1.PodReasonSchedulingGated &&
		cond.LastTransitionTime.After(created) {
		return cond.LastTransitionTime.Time
	}
	return created
}

// kueueEviction is Kueue's stop reason and message on a pod it evicts; ok false if Kueue did not.
func kueueEviction(pod *corev1.Pod) (Reason, bool) {
	cond := podCondition(pod, kueueTerminationTarget)
	if cond == nil || cond.Status != corev1.ConditionTrue {
		return Reason{}, false
	}
	detail := "evicted by Kueue"
	if cond.Reason != "" {
		detail += " (" + cond.Reason + ")"
	}
	if cond.Message != "" {
		detail += ": " + cond.Message
	}
	return Reason{KindKueueEvicted, detail}, true
}
