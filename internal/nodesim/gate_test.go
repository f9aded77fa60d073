package nodesim

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestSchedulingGates checks a gated pod (as Kueue's webhook gates one until its queue has quota)
// is held as kube-scheduler holds it: not bound, not reported unschedulable, with the apiserver's
// PodScheduled=False reason SchedulingGated, until its last gate is removed; then it is bound.
func TestSchedulingGates(t *testing.T) {
	ns := newNamespace(t)
	sim := startSim(t, Config{Namespace: ns, NodeName: "nodesim-gates"})
	const name = "gated"
	gates := []corev1.PodSchedulingGate{{Name: "kueue.x-k8s.io/admission"}, {Name: "example.com/second"}}
	p := agentPod(ns, name, "http://127.0.0.1:1/", name, "-noReconnect")
	p.Spec.SchedulingGates = gates
	createPod(t, p)

	// Once the simulator has seen the pod gated, it has decided not to bind it.
	eventually(t, "simulator saw the pod gated", func() (bool, string) {
		return countReason(sim, name, corev1.PodReasonSchedulingGated) == 1, strings.Join(eventsFor(sim, name), " ")
	})
	got, err := getPod(t, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.NodeName != "" {
		t.Fatalf("gated pod bound to %q", got.Spec.NodeName)
	}
	want := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonSchedulingGated,
		Message: "Scheduling is blocked due to non-empty scheduling gates"}
	c := condition(got, corev1.PodScheduled)
	c.LastTransitionTime, c.LastProbeTime = metav1.Time{}, metav1.Time{}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("PodScheduled while gated (-want +got):\n%s", diff)
	}

	// Removing one of two gates changes nothing; the simulator notes the pod once only.
	setGates(t, ns, name, gates[1:])
	eventually(t, "one gate left", func() (bool, string) {
		p, err := getPod(t, ns, name)
		if err != nil {
			return false, err.Error()
		}
		return len(p.Spec.SchedulingGates) == 1, describe(p)
	})
	setGates(t, ns, name, nil)
	p = waitPod(t, ns, name, "bound", func(p *corev1.Pod) bool {
		return p.Spec.NodeName != "" && condition(p, corev1.PodScheduled).Status == corev1.ConditionTrue
	})
	if p.Spec.NodeName != "nodesim-gates" {
		t.Errorf("bound to %q, want nodesim-gates", p.Spec.NodeName)
	}
	if got := countReason(sim, name, corev1.PodReasonSchedulingGated); got != 1 {
		t.Errorf("SchedulingGated noted %d times, want once", got)
	}
	if got := countReason(sim, name, "FailedScheduling"); got != 0 {
		t.Errorf("FailedScheduling %d times for a gated pod, want none (the scheduler does not try gated pods)", got)
	}
	if got := countReason(sim, name, "Scheduled"); got != 1 {
		t.Errorf("Scheduled %d times, want once after the gates cleared", got)
	}
}

// setGates replaces the pod's scheduling gates (only removals are allowed) with a JSON merge patch,
// as Kueue ungates a pod.
func setGates(t *testing.T, ns, name string, gates []corev1.PodSchedulingGate) {
	t.Helper()
	if gates == nil {
		gates = []corev1.PodSchedulingGate{}
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"schedulingGates": gates}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.CoreV1().Pods(ns).Patch(context.Background(), name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("setting the gates of %s to %v: %v", name, gates, err)
	}
}
