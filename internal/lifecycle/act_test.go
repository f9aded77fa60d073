package lifecycle

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	k8stesting "k8s.io/client-go/testing"

	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
)

func agentPod(name, template string) *corev1.Pod {
	return newTestWorld().pod(name, template, time.Minute).snap.Pods[0]
}

func ownedSecret(pod *corev1.Pod) *corev1.Secret {
	return newTestWorld().secret(pod.Name, time.Minute, pod).snap.Secrets[0]
}

// Each step of act, on a fake clientset and a fake Jenkins: the calls it makes, in order.
func TestSteps(t *testing.T) {
	pod := agentPod("maven-a", "maven")
	retained := pod.DeepCopy()
	retained.Annotations[annotationRetentionTimeout] = "30m0s"
	tests := []struct {
		name        string
		action      Action
		failJenkins map[string]error
		wantJenkins []string
		wantKube    []string
		wantErr     bool
	}{
		{
			name:        "mark busy names the build",
			action:      Action{Kind: ActMarkBusy, Agent: "maven-a", Build: "http://j/job/a/1/"},
			wantJenkins: []string{"SetTemporarilyOffline maven-a " + reasonBusy + " (http://j/job/a/1/)"},
			wantKube:    []string{},
		},
		{
			name:        "a failed mark is an error act retries",
			action:      Action{Kind: ActMarkBusy, Agent: "maven-a"},
			failJenkins: map[string]error{"SetTemporarilyOffline": errUnavailable},
			wantJenkins: []string{"SetTemporarilyOffline maven-a " + reasonBusy},
			wantKube:    []string{},
			wantErr:     true,
		},
		{
			name:        "resume: the mark is cleared for the resumed block and set again at once",
			action:      Action{Kind: ActResume, Agent: "maven-a", Build: "http://j/job/a/1/", Node: true},
			wantJenkins: []string{"SetOnline maven-a", "SetTemporarilyOffline maven-a " + reasonBusy + " (http://j/job/a/1/)"},
			wantKube:    []string{},
		},
		{
			name:        "lose: an agent killed mid-build loses node, pod and Secret at once",
			action:      Action{Kind: ActLose, Agent: "maven-a", Template: "maven", State: Lost, Pod: pod, Secret: ownedSecret(pod), Node: true},
			wantJenkins: []string{"DeleteNode maven-a"},
			wantKube:    []string{"delete pods maven-a", "delete secrets maven-a"},
		},
		{
			name:        "finish: node, pod, its Secret",
			action:      Action{Kind: ActFinish, Agent: "maven-a", Template: "maven", State: Done, Pod: pod, Secret: ownedSecret(pod), Node: true},
			wantJenkins: []string{"DeleteNode maven-a"},
			wantKube:    []string{"delete pods maven-a", "delete secrets maven-a"},
		},
		{
			name:        "finish keeps a pod its template retains",
			action:      Action{Kind: ActFinish, Agent: "maven-a", Template: "maven", State: Done, Pod: retained, Node: true, Retain: true},
			wantJenkins: []string{"DeleteNode maven-a"},
			wantKube:    []string{"patch pods maven-a"},
		},
		{
			name:        "finish stops when the node cannot be deleted",
			action:      Action{Kind: ActFinish, Agent: "maven-a", Template: "maven", State: Released, Pod: pod, Node: true},
			failJenkins: map[string]error{"DeleteNode": errUnavailable},
			wantJenkins: []string{"DeleteNode maven-a"},
			wantKube:    []string{},
			wantErr:     true,
		},
		{
			name:        "finish of a released agent without a node",
			action:      Action{Kind: ActFinish, Agent: "maven-a", Template: "maven", State: Released, Pod: pod},
			wantJenkins: []string{},
			wantKube:    []string{"delete pods maven-a"},
		},
		{
			name:        "fail says why on the node, then deletes node and pod",
			action:      Action{Kind: ActFail, Agent: "maven-a", Template: "maven", State: Failed, Reason: Reason{KindCrash, "Error (container jnlp)"}, Pod: pod, Node: true},
			wantJenkins: []string{"SetTemporarilyOffline maven-a " + reasonFailed + "Error (container jnlp)", "DeleteNode maven-a"},
			wantKube:    []string{"delete pods maven-a"},
		},
		{
			name:        "fail keeps a pod its template retains on failure, and does not say why twice",
			action:      Action{Kind: ActFail, Agent: "maven-a", Template: "maven", State: Failed, Pod: pod, Node: true, NodeMarkedFailed: true, Retain: true},
			wantJenkins: []string{"DeleteNode maven-a"},
			wantKube:    []string{"patch pods maven-a"},
		},
		{
			name:        "an orphan node goes",
			action:      Action{Kind: ActRemoveOrphan, Agent: "maven-a", Reason: Reason{KindNodeWithoutPod, "Jenkins node without a pod"}, Node: true},
			wantJenkins: []string{"DeleteNode maven-a"},
			wantKube:    []string{},
		},
		{
			name:        "an orphan pod goes",
			action:      Action{Kind: ActRemoveOrphan, Agent: "maven-a", Reason: Reason{KindPodWithoutNode, "agent pod without a Jenkins node"}, Pod: pod},
			wantJenkins: []string{},
			wantKube:    []string{"delete pods maven-a"},
		},
		{
			name:        "a terminating pod's node",
			action:      Action{Kind: ActDeleteNode, Agent: "maven-a", Node: true},
			wantJenkins: []string{"DeleteNode maven-a"},
			wantKube:    []string{},
		},
		{
			name:        "retention expired",
			action:      Action{Kind: ActExpire, Agent: "maven-a", Pod: pod, Reason: Reason{KindRetentionExpired, "retention expired"}},
			wantJenkins: []string{},
			wantKube:    []string{"delete pods maven-a"},
		},
		{
			name:        "release marks the node",
			action:      Action{Kind: ActRelease, Agent: "maven-a", Node: true},
			wantJenkins: []string{"SetTemporarilyOffline maven-a " + reasonReleased},
			wantKube:    []string{},
		},
		{
			name:        "a Secret without its pod",
			action:      Action{Kind: ActDeleteSecret, Agent: "maven-a", Secret: ownedSecret(pod)},
			wantJenkins: []string{},
			wantKube:    []string{"delete secrets maven-a"},
		},
		{
			name:        "a Secret gets its pod as owner",
			action:      Action{Kind: ActOwnSecret, Agent: "maven-a", Pod: pod, Secret: ownedSecret(pod)},
			wantJenkins: []string{},
			wantKube:    []string{"patch secrets maven-a"},
		},
		{
			name:        "an unknown action is an error",
			action:      Action{Kind: "Dance", Agent: "maven-a"},
			wantJenkins: []string{},
			wantKube:    []string{},
			wantErr:     true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, kube, jc := newTestController(t, pod)
			if tt.action.Secret != nil {
				if err := kube.Tracker().Add(tt.action.Secret); err != nil {
					t.Fatal(err)
				}
			}
			kube.ClearActions()
			for k, v := range tt.failJenkins {
				jc.fail[k] = v
			}
			err := c.step(context.Background(), tt.action)
			if (err != nil) != tt.wantErr {
				t.Errorf("step error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && tt.wantErr && tt.action.Kind != "Dance" && !transient(err) {
				t.Errorf("error %v is not transient", err)
			}
			if diff := cmp.Diff(tt.wantJenkins, jc.Calls()); diff != "" {
				t.Errorf("Jenkins calls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantKube, kubeWrites(kube)); diff != "" {
				t.Errorf("Kubernetes writes (-want +got):\n%s", diff)
			}
		})
	}
}

// Every delete names the very object decided on: its UID is a precondition.
func TestDeletesCarryTheUIDAsPrecondition(t *testing.T) {
	pod := agentPod("maven-a", "maven")
	c, kube, _ := newTestController(t, pod)
	sec := ownedSecret(pod)
	_ = kube.Tracker().Add(sec)
	kube.ClearActions()
	if err := c.step(context.Background(), Action{Kind: ActFinish, Agent: "maven-a", State: Done, Pod: pod, Secret: sec}); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, a := range kube.Actions() {
		if d, ok := a.(k8stesting.DeleteAction); ok {
			pre := d.GetDeleteOptions().Preconditions
			if pre == nil || pre.UID == nil {
				t.Fatalf("delete %s %s without a UID precondition", a.GetResource().Resource, d.GetName())
			}
			got[a.GetResource().Resource] = string(*pre.UID)
		}
	}
	want := map[string]string{"pods": "uid-maven-a", "secrets": "uid-secret-maven-a"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("preconditions (-want +got):\n%s", diff)
	}
}

// A pod recreated under the same name (another UID) is not deleted, and that is no error.
func TestDeleteOfAReplacedPodIsRefusedAndFine(t *testing.T) {
	pod := agentPod("maven-a", "maven")
	c, kube, _ := newTestController(t, pod)
	kube.PrependReactor("delete", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewConflict(schema.GroupResource{Resource: "pods"}, "maven-a", errors.New("UID precondition failed"))
	})
	if err := c.step(context.Background(), Action{Kind: ActExpire, Agent: "maven-a", Pod: pod}); err != nil {
		t.Errorf("step = %v, want nil", err)
	}
}

func TestCreate(t *testing.T) {
	spec := &podtemplate.Template{Name: "maven", Labels: []string{"maven"}, ConnectTimeout: time.Minute, Agent: podtemplate.AgentSpec{Image: "jenkins/inbound-agent"}}
	quota := apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "maven-x", errors.New("exceeded quota: agents"))
	tests := []struct {
		name        string
		failJenkins map[string]error
		refusePod   error
		wantJenkins []string
		wantKube    []string
		wantOutcome ReasonKind
		wantCounted bool
	}{
		{
			name:        "node, its secret, pod, Secret",
			wantJenkins: []string{"CreateNode maven", "NodeSecret maven"},
			wantKube:    []string{"create pods maven-x", "create secrets maven-x"},
			wantCounted: true,
		},
		{
			name:        "a refused pod leaves no node, and backs the template off next poll",
			refusePod:   quota,
			wantJenkins: []string{"CreateNode maven", "NodeSecret maven", "DeleteNode maven-x"},
			wantKube:    []string{"create pods maven-x"},
			wantOutcome: KindQuotaExceeded,
		},
		{
			name:        "no secret from Jenkins: the node is removed again",
			failJenkins: map[string]error{"NodeSecret": errUnavailable},
			wantJenkins: []string{"CreateNode maven", "NodeSecret maven", "DeleteNode maven-x"},
			wantKube:    []string{},
		},
		{
			name:        "no node: nothing else",
			failJenkins: map[string]error{"CreateNode": errUnavailable},
			wantJenkins: []string{"CreateNode maven"},
			wantKube:    []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, kube, jc := newTestController(t)
			for k, v := range tt.failJenkins {
				jc.fail[k] = v
			}
			if tt.refusePod != nil {
				kube.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, tt.refusePod })
			}
			c.exp.expect("maven-x", "maven")
			if err := c.step(context.Background(), Action{Kind: ActCreate, Agent: "maven-x", Template: "maven", Spec: spec, QueuedAt: t0.Add(-time.Second)}); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantJenkins, jc.Calls()); diff != "" {
				t.Errorf("Jenkins calls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantKube, kubeWrites(kube)); diff != "" {
				t.Errorf("Kubernetes writes (-want +got):\n%s", diff)
			}
			var kinds []ReasonKind
			for _, o := range c.act.drainOutcomes() {
				kinds = append(kinds, o.Reason.Kind)
			}
			if tt.wantOutcome != "" && (len(kinds) != 1 || kinds[0] != tt.wantOutcome) {
				t.Errorf("outcomes %v, want one %s", kinds, tt.wantOutcome)
			}
			if counted := len(c.exp.list(t0)) == 1; counted != tt.wantCounted {
				t.Errorf("creation still counted: %v, want %v (a failed step ends its expectation)", counted, tt.wantCounted)
			}
		})
	}
}

func TestRefusalKinds(t *testing.T) {
	gr := schema.GroupResource{Resource: "pods"}
	tests := map[ReasonKind]error{
		KindQuotaExceeded: apierrors.NewForbidden(gr, "p", errors.New("exceeded quota: q")),
		KindForbidden:     apierrors.NewForbidden(gr, "p", errors.New("denied by webhook")),
		KindThrottled:     apierrors.NewTooManyRequests("slow down", 1),
		KindConflict:      apierrors.NewAlreadyExists(gr, "p"),
		KindInvalid:       apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "p", nil),
		KindRefused:       apierrors.NewBadRequest("no"),
	}
	for want, err := range tests {
		if got := refusal(err); got.Kind != want || !got.Refusal() {
			t.Errorf("refusal(%v) = %+v, want kind %s", err, got, want)
		}
	}
}

// The creation expectation lives as long as its step, and until the informer shows the pod.
func TestExpectations(t *testing.T) {
	names := func(e *expectations, now time.Time) []string {
		out := []string{}
		for _, c := range e.list(now) {
			out = append(out, c.Name)
		}
		return out
	}
	e := newExpectations()
	e.expect("a", "maven")
	e.expect("b", "maven")
	e.expect("c", "maven")
	e.expect("d", "maven")
	e.observed("a") // the informer saw a's pod before its step ended (its Secret was being made)
	e.ended("a", true, t0)
	e.ended("b", false, t0) // failed
	e.ended("c", true, t0)  // created, not yet observed
	if diff := cmp.Diff([]string{"c", "d"}, names(e, t0.Add(30*time.Second))); diff != "" {
		t.Errorf("counted (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"d"}, names(e, t0.Add(2*time.Minute))); diff != "" {
		t.Errorf("after the informer never showed c (-want +got):\n%s", diff)
	}
	e.observed("d")
	if diff := cmp.Diff([]string{"d"}, names(e, t0.Add(time.Hour))); diff != "" {
		t.Errorf("a step in flight stops counting (-want +got):\n%s", diff)
	}
	e.ended("d", true, t0)
	e.ended("unknown", true, t0)
	e.observed("unknown")
	if diff := cmp.Diff([]string{}, names(e, t0)); diff != "" {
		t.Errorf("after d's step ended (-want +got):\n%s", diff)
	}
}

// act runs one action per agent at a time, retries transient errors with backoff, and drops the rest.
func TestActor(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	release := make(chan struct{})
	run := func(_ context.Context, a Action) error {
		mu.Lock()
		calls[a.Agent]++
		n := calls[a.Agent]
		mu.Unlock()
		switch a.Agent {
		case "blocked":
			<-release
		case "flaky":
			if n < 3 {
				return errUnavailable
			}
		case "broken":
			return errors.New("permanent")
		case "always-down":
			return errUnavailable
		}
		return nil
	}
	q := newActor(zaptest.NewLogger(t), run)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.work(ctx, 2, 1); close(done) }()

	if !q.submit(Action{Kind: ActFinish, Agent: "blocked"}) {
		t.Fatal("first action refused")
	}
	for _, a := range []string{"flaky", "broken", "always-down"} {
		q.submit(Action{Kind: ActMarkBusy, Agent: a})
	}
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return calls["blocked"] == 1 })
	if q.submit(Action{Kind: ActFinish, Agent: "blocked"}) {
		t.Error("a second action for an agent with one running was queued")
	}
	close(release)
	waitFor(t, func() bool {
		return !q.busy("blocked") && !q.busy("flaky") && !q.busy("broken") && !q.busy("always-down")
	})
	mu.Lock()
	got := map[string]int{"blocked": calls["blocked"], "flaky": calls["flaky"], "broken": calls["broken"], "always-down": calls["always-down"]}
	mu.Unlock()
	want := map[string]int{"blocked": 1, "flaky": 3, "broken": 1, "always-down": maxRetries + 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("runs per agent (-want +got):\n%s", diff)
	}
	cancel()
	<-done
}

// A queued action whose turn comes after shutdown does nothing.
func TestActorRunsNothingAfterShutdown(t *testing.T) {
	var ran atomic.Int32
	q := newActor(zaptest.NewLogger(t), func(context.Context, Action) error { ran.Add(1); return nil })
	q.submit(Action{Kind: ActFinish, Agent: "a"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	q.work(ctx, 1, 1)
	if ran.Load() != 0 {
		t.Errorf("%d actions ran after the context ended", ran.Load())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 5*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return cond(), nil
	})
	if err != nil {
		t.Fatalf("condition not met: %v", err)
	}
}
