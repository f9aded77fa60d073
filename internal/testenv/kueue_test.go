package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
)

const (
	// kueueQueueLabel and kueueAdmissionGate are Kueue's own names (pkg/controller/constants and
	// pkg/controller/jobs/pod): the label that puts a pod in a LocalQueue and the scheduling gate
	// its webhook adds until the pod's Workload is admitted.
	kueueQueueLabel    = "kueue.x-k8s.io/queue-name"
	kueueAdmissionGate = "kueue.x-k8s.io/admission"
	// kueueDeadline bounds one admission step; Kueue admits in well under a second and re-admits a
	// freed slot after about 1.1 s (its requeue batch period), so reaching it means it is broken.
	kueueDeadline = 90 * time.Second
)

// TestKueue starts a control plane with Kueue (one for all subtests: Kueue's start is the cost)
// and checks that quota gates pods as Kueue documents it.
func TestKueue(t *testing.T) {
	if testing.Short() && !KueueAssetsGiven() {
		t.Skip("needs Kueue " + KueueVersion + ": set " + kueueAssetsEnv + " (make kueue builds it); skipped under -short only")
	}
	ke, err := Start(Options{Kueue: true})
	if err != nil {
		t.Fatalf("starting a control plane with Kueue: %v", err)
	}
	t.Cleanup(func() {
		if err := ke.Stop(); err != nil {
			t.Errorf("stopping: %v", err)
		}
	})
	t.Logf("control plane with Kueue ready in %s", ke.startDuration.Round(timeRound))

	t.Run("quota for two admits two of four and a freed slot the next", func(t *testing.T) { testKueueQuota(t, ke) })
	t.Run("documented queues borrow within the cohort and never preempt", func(t *testing.T) { testKueueDocumented(t, ke) })
}

func testKueueQuota(t *testing.T, ke *Env) {
	ctx := t.Context()
	ns := kueueNamespace(t, ke)
	if err := ke.CreateResourceFlavor(ctx, "quota-flavor"); err != nil {
		t.Fatal(err)
	}
	if err := ke.CreateClusterQueue(ctx, ClusterQueue{
		Name: "quota-cq", Flavor: "quota-flavor",
		Quota: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")},
	}); err != nil {
		t.Fatal(err)
	}
	if err := ke.CreateLocalQueue(ctx, ns, "agents", "quota-cq"); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	if err := ke.WaitLocalQueueActive(ctx, ns, "agents"); err != nil {
		t.Fatal(err)
	}
	t.Logf("LocalQueue Active %s after its ClusterQueue was created", time.Since(begin).Round(timeRound))

	var names []string
	for i := range 4 {
		name := fmt.Sprintf("agent-%d", i)
		pod, err := ke.Client.CoreV1().Pods(ns).Create(ctx, queuedPod(ns, name, "agents", "500m", "256Mi"), metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating %s: %v", name, err)
		}
		// Kueue's webhook gates the pod in the create itself, before anyone could schedule it.
		if !gated(pod) {
			t.Fatalf("pod %s created without the %s gate: %v", name, kueueAdmissionGate, pod.Spec.SchedulingGates)
		}
		names = append(names, name)
	}
	begin = time.Now()
	admitted, waiting := waitAdmission(t, ke, ns, "agents", 2, 2)
	t.Logf("2 of 4 admitted %s after the last create", time.Since(begin).Round(timeRound))
	for _, name := range waiting {
		p, err := ke.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// The apiserver's own condition for a gated pod (pod strategy's applySchedulingGatedCondition).
		if got := podScheduledReason(p); got != corev1.PodReasonSchedulingGated {
			t.Errorf("gated pod %s: PodScheduled reason %q, want %q", name, got, corev1.PodReasonSchedulingGated)
		}
	}

	// Deleting an admitted pod frees its quota (its Workload goes with it, by the garbage
	// collector) and Kueue admits one of the two waiting.
	begin = time.Now()
	deleteByUID(t, ke, ns, admitted[0])
	t.Logf("admitted pod gone %s after its delete", time.Since(begin).Round(timeRound))
	admittedAfter, waitingAfter := waitAdmission(t, ke, ns, "agents", 2, 1)
	t.Logf("freed slot re-admitted %s after the delete", time.Since(begin).Round(timeRound))
	if !slices.Contains(admittedAfter, admitted[1]) {
		t.Errorf("admitted after the delete %v: %s, admitted before, is not among them", admittedAfter, admitted[1])
	}
	newly := slices.DeleteFunc(slices.Clone(admittedAfter), func(n string) bool { return n == admitted[1] })
	if len(newly) != 1 || !slices.Contains(waiting, newly[0]) {
		t.Errorf("newly admitted %v, want one of the waiting %v", newly, waiting)
	}
	if got, want := append(slices.Clone(admittedAfter), waitingAfter...), slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == admitted[0] }); !cmp.Equal(sorted(got), sorted(want)) {
		t.Errorf("pods after the delete %v, want %v", sorted(got), sorted(want))
	}
}

// testKueueDocumented applies the example of docs/operating.md ("Sharing a cluster with Kueue"):
// team A borrows team B's unused quota, team B's first agent then waits for quota (no running agent
// of A is preempted: reclaimWithinCohort Never) and gets it as soon as one of A's agents ends.
func testKueueDocumented(t *testing.T, ke *Env) {
	ctx := t.Context()
	example, err := os.ReadFile(filepath.Join("testdata", "kueue-queues.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	root, err := ModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "operating.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), string(example)) {
		t.Errorf("docs/operating.md does not contain testdata/kueue-queues.yaml verbatim: the documented example must be the tested one")
	}
	nsA, nsB := kueueNamespace(t, ke), kueueNamespace(t, ke)
	if _, err := ke.ApplyKueueObjects(ctx, example, map[string]string{"jenkins-team-a": nsA, "jenkins-team-b": nsB}); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{nsA, nsB} {
		if err := ke.WaitLocalQueueActive(ctx, ns, "jenkins-agents"); err != nil {
			t.Fatal(err)
		}
	}

	// Six agents of 1 cpu / 2Gi for team A: its nominal 2 plus team B's unused 2.
	for i := range 6 {
		if _, err := ke.Client.CoreV1().Pods(nsA).Create(ctx, queuedPod(nsA, fmt.Sprintf("a-%d", i), "jenkins-agents", "1", "2Gi"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	admittedA, _ := waitAdmission(t, ke, nsA, "jenkins-agents", 4, 2)

	// Team B's agent fits in B's nominal quota, which A borrows: with reclaimWithinCohort Never it
	// waits, and Kueue says why on its Workload, rather than preempting one of A's.
	if _, err := ke.Client.CoreV1().Pods(nsB).Create(ctx, queuedPod(nsB, "b-0", "jenkins-agents", "1", "2Gi"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitWorkloadPending(t, ke, nsB, "b-0")
	if got, _ := podSets(t, ke, nsA); !cmp.Equal(sorted(got), sorted(admittedA)) {
		t.Errorf("team A's admitted agents changed while team B waited: %v, want %v (nothing preempted)", sorted(got), sorted(admittedA))
	}

	// One of A's agents ends: the freed quota goes to B (within its nominal quota, which Kueue
	// serves before borrowing), not to A's next waiting agent.
	deleteByUID(t, ke, nsA, admittedA[0])
	waitAdmission(t, ke, nsB, "jenkins-agents", 1, 0)
	waitAdmission(t, ke, nsA, "jenkins-agents", 3, 2)
}

// kueueNamespace creates a namespace for one test in ke.
func kueueNamespace(t *testing.T, ke *Env) string {
	t.Helper()
	ns, err := ke.Client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "kueue-test-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating a namespace: %v", err)
	}
	return ns.Name
}

// queuedPod is an agent-like pod in LocalQueue queue requesting cpu and memory.
func queuedPod(ns, name, queue, cpu, memory string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{kueueQueueLabel: queue}},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "jnlp", Image: "jenkins/inbound-agent:latest",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(memory),
				}},
			}},
		},
	}
}

func gated(p *corev1.Pod) bool {
	return slices.ContainsFunc(p.Spec.SchedulingGates, func(g corev1.PodSchedulingGate) bool { return g.Name == kueueAdmissionGate })
}

func podScheduledReason(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			return c.Reason
		}
	}
	return ""
}

// podSets returns the names of ns's pods not being deleted, split into admitted (ungated) and
// waiting (gated).
func podSets(t *testing.T, ke *Env, ns string) (admitted, waiting []string) {
	t.Helper()
	pods, err := ke.Client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("listing pods in %s: %v", ns, err)
	}
	for _, p := range pods.Items {
		switch {
		case p.DeletionTimestamp != nil:
		case gated(&p):
			waiting = append(waiting, p.Name)
		default:
			admitted = append(admitted, p.Name)
		}
	}
	return sorted(admitted), sorted(waiting)
}

// waitAdmission waits until the LocalQueue reports wantAdmitted admitted and wantPending pending
// workloads and ns's pods show the same split by their gate, and returns the split. Once Kueue's
// own count says the quota is full, no further admission can happen, so the split is final.
func waitAdmission(t *testing.T, ke *Env, ns, queue string, wantAdmitted, wantPending int) (admitted, waiting []string) {
	t.Helper()
	dyn, err := ke.KueueDynamic()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), kueueDeadline)
	defer cancel()
	var last string
	err = wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
		lq, err := dyn.Resource(LocalQueueResource).Namespace(ns).Get(ctx, queue, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		a, _, _ := unstructured.NestedInt64(lq.Object, "status", "admittedWorkloads")
		p, _, _ := unstructured.NestedInt64(lq.Object, "status", "pendingWorkloads")
		admitted, waiting = podSets(t, ke, ns)
		last = fmt.Sprintf("LocalQueue admitted %d pending %d; pods admitted %v waiting %v", a, p, admitted, waiting)
		return int(a) == wantAdmitted && int(p) == wantPending && len(admitted) == wantAdmitted && len(waiting) == wantPending, nil
	})
	if err != nil {
		t.Fatalf("waiting for %d admitted and %d pending in %s/%s: %v (last: %s)", wantAdmitted, wantPending, ns, queue, err, last)
	}
	return admitted, waiting
}

// waitWorkloadPending waits until the Workload of pod ns/name says Kueue looked at it and found no
// quota: QuotaReserved=False with reason Pending, Kueue's "couldn't assign flavors" verdict.
func waitWorkloadPending(t *testing.T, ke *Env, ns, pod string) {
	t.Helper()
	dyn, err := ke.KueueDynamic()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), kueueDeadline)
	defer cancel()
	last := "no Workload"
	err = wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
		list, err := dyn.Resource(WorkloadResource).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		for _, wl := range list.Items {
			if !ownedByPod(&wl, pod) {
				continue
			}
			conds, _, _ := unstructured.NestedSlice(wl.Object, "status", "conditions")
			last = fmt.Sprint(conds)
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "QuotaReserved" && m["status"] == "False" && m["reason"] == "Pending" {
					return true, nil
				}
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("waiting for pod %s/%s's Workload to be pending for quota: %v (last: %s)", ns, pod, err, last)
	}
}

func ownedByPod(obj *unstructured.Unstructured, pod string) bool {
	for _, ref := range obj.GetOwnerReferences() {
		if ref.Kind == "Pod" && ref.Name == pod {
			return true
		}
	}
	return false
}

// deleteByUID deletes pod ns/name, precondition on its UID, and waits until it is gone (Kueue
// removes its finalizer once the Workload is finished).
func deleteByUID(t *testing.T, ke *Env, ns, name string) {
	t.Helper()
	ctx := t.Context()
	p, err := ke.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ke.Client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &p.UID}}); err != nil {
		t.Fatalf("deleting %s: %v", name, err)
	}
	wctx, cancel := context.WithTimeout(ctx, kueueDeadline)
	defer cancel()
	err = wait.PollUntilContextCancel(wctx, pollInterval, true, func(ctx context.Context) (bool, error) {
		_, err := ke.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("pod %s/%s still there after its delete: %v", ns, name, err)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
