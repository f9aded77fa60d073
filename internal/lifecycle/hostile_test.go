package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins"
	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
)

// Objects that look like ours but that this installation did not make (issue 12 item 1).

// otherInstallation is a second provisioner on the same Jenkins, in a namespace of the same name.
var otherInstallation = Identity{Namespace: "ci", ID: "other-installation", Key: []byte("fedcba9876543210")}

func withRecord(record string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		if record == "" {
			delete(p.Annotations, annotationCreatedBy)
			return
		}
		p.Annotations[annotationCreatedBy] = record
	}
}

func described(desc string) func(*jenkins.Computer) {
	return func(c *jenkins.Computer) { c.Description = desc }
}

func TestForeignObjectsAreLeftAloneReportedOnceAndNotCounted(t *testing.T) {
	hour := time.Hour
	tests := []struct {
		name        string
		world       *testWorld
		wantForeign map[string]int
	}{
		{
			name: "a labelled pod named after the Jenkins token Secret, without a creation record",
			world: newTestWorld().pod("jenkins-token", "maven", hour, withRecord("")).
				secret("jenkins-token", hour, nil),
			wantForeign: map[string]int{"pod": 1},
		},
		{
			name:        "a pod whose record is another installation's",
			world:       newTestWorld().pod("maven-x", "maven", hour, withRecord(otherInstallation.creationRecord("maven-x"))),
			wantForeign: map[string]int{"pod": 1},
		},
		{
			name:        "a pod with our record copied from another pod (the proof covers the name)",
			world:       newTestWorld().pod("maven-x", "maven", hour, withRecord(testID.creationRecord("maven-real"))),
			wantForeign: map[string]int{"pod": 1},
		},
		{
			name: "a failed pod of another installation beside its node",
			world: newTestWorld().pod("maven-y", "maven", hour, withRecord(otherInstallation.creationRecord("maven-y")), func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodFailed
			}).node("maven-y", "maven", hour, described(nodeDescription(otherInstallation, "maven-y", "maven", t0.Add(-hour)))),
			wantForeign: map[string]int{"pod": 1, "node": 1},
		},
		{
			name: "nodes without pods: another namespace, another installation, a copied description, a forged proof, garbage after the marker, the old format",
			world: newTestWorld().
				node("n-ns", "maven", hour, described(nodeDescription(Identity{Namespace: "prod", ID: testID.ID, Key: testID.Key}, "n-ns", "maven", t0.Add(-hour)))).
				node("n-inst", "maven", hour, described(nodeDescription(otherInstallation, "n-inst", "maven", t0.Add(-hour)))).
				node("n-copy", "maven", hour, described(nodeDescription(testID, "maven-real", "maven", t0.Add(-hour)))).
				node("n-forged", "maven", hour, described("[jenkins-agent-provisioner] template=maven created=2026-11-25T11:00:00Z namespace=ci installation=test-installation proof=00112233445566778899aabbccddeeff: x")).
				node("n-garbage", "maven", hour, described("[jenkins-agent-provisioner] template=Maven created=yesterday")).
				node("n-legacy", "maven", hour, described("[jenkins-agent-provisioner] template=maven created=2026-11-25T11:00:00Z namespace=ci: single-use Kubernetes agent")),
			wantForeign: map[string]int{"node": 6},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testDecideConfig
			d := Decide(tt.world.snap, NewMemory(), cfg, t0)
			if diff := cmp.Diff([]string{}, actions(d)); diff != "" {
				t.Errorf("actions on foreign objects (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantForeign, d.Foreign); diff != "" {
				t.Errorf("foreign counts (-want +got):\n%s", diff)
			}
			reported := 0
			for _, n := range d.Notices {
				if n.Kind == NoticeForeign {
					reported++
				}
			}
			if want := tt.wantForeign["pod"] + tt.wantForeign["node"]; reported != want {
				t.Errorf("%d foreign notices, want %d", reported, want)
			}
			if len(d.Status.Agents) != 0 {
				t.Errorf("foreign objects shown as agents: %+v", d.Status.Agents)
			}
			again := Decide(tt.world.snap, d.Memory, cfg, t0.Add(time.Second))
			for _, n := range again.Notices {
				if n.Kind == NoticeForeign {
					t.Errorf("reported again on the next poll: %+v", n)
				}
			}
			if diff := cmp.Diff(busyUnmarked(testID, tt.world.snap.Computers), []Action(nil)); diff != "" {
				t.Errorf("busy watch marks foreign nodes:\n%s", diff)
			}
		})
	}
}

// Foreign pods do not take the room of the agents builds wait for.
func TestForeignPodsDoNotCountAgainstCaps(t *testing.T) {
	w := newTestWorld().
		pod("maven-f1", "maven", time.Hour, withRecord("")).
		pod("maven-f2", "maven", time.Hour, withRecord(otherInstallation.creationRecord("maven-f2"))).
		pod("maven-f3", "maven", time.Hour, withRecord("")).
		build(1, "maven", time.Second).build(2, "maven", time.Second)
	cfg := testDecideConfig
	cfg.MaxAgents = 2
	got := actions(Decide(w.snap, NewMemory(), cfg, t0))
	if diff := cmp.Diff([]string{"Create maven queued-1s", "Create maven queued-1s"}, got); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
}

// Agents made before installation ids: an old-format node of this namespace with a labelled pod
// beside it is one agent of ours and is served as such (here: its agent exited before a build, so it
// is failed and removed).
func TestLegacyAgentIsAdoptedWithItsPod(t *testing.T) {
	legacy := "[jenkins-agent-provisioner] template=maven created=2026-11-25T11:00:00Z namespace=ci: single-use Kubernetes agent"
	w := newTestWorld().pod("maven-old", "maven", time.Hour, withRecord(""), func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodSucceeded
	}).node("maven-old", "maven", time.Hour, described(legacy))
	d := Decide(w.snap, NewMemory(), testDecideConfig, t0)
	if diff := cmp.Diff([]string{"Fail maven-old AgentExited"}, actions(d)); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
	if len(d.Foreign) != 0 {
		t.Errorf("legacy agent counted foreign: %v", d.Foreign)
	}
}

// Through the whole poll: a pod named after the Jenkins token Secret, with our labels and no record,
// gets nothing deleted; the metric and the Event say so.
func TestPollLeavesAPodNamedAfterASecretAndItsSecretAlone(t *testing.T) {
	hostile := newTestWorld().pod("jenkins-token", "maven", time.Hour, withRecord("")).snap.Pods[0]
	c, kube, _ := newTestController(t, hostile)
	reg := prometheus.NewRegistry()
	c.metrics = NewMetrics(reg)
	token := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "jenkins-token", Namespace: "ci", UID: "uid-token"}}
	if err := kube.Tracker().Add(token); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	stepped := []string{}
	c.act = newActor(c.log, func(ctx context.Context, a Action) error {
		mu.Lock()
		stepped = append(stepped, string(a.Kind)+" "+a.Agent)
		mu.Unlock()
		return c.step(ctx, a)
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.act.work(ctx, 2, 1); close(done) }()
	for range 3 {
		if err := c.poll(ctx); err != nil {
			t.Fatal(err)
		}
		// Any action a poll queued for the pod is pending from submit until its step ends.
		waitFor(t, func() bool { return !c.act.busy("jenkins-token") })
	}
	cancel()
	mu.Lock()
	if diff := cmp.Diff([]string{}, stepped); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	mu.Unlock()
	<-done
	if diff := cmp.Diff([]string{}, kubeWrites(kube)); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
	if _, err := kube.CoreV1().Secrets("ci").Get(context.Background(), "jenkins-token", metav1.GetOptions{}); err != nil {
		t.Errorf("token Secret: %v", err)
	}
	if diff := cmp.Diff([]string{"kind=node 0", "kind=pod 1"}, series(t, reg, "provisioner_foreign_objects")); diff != "" {
		t.Errorf("provisioner_foreign_objects (-want +got):\n%s", diff)
	}
}

// A queued build whose why holds 1 MB of "(" is an unreadable item: reported, shown, and the rest of
// the queue served (items 1 and 2 with i12rest's Demand.Err).
func TestUnreadableDemandIsReportedAndTheRestServed(t *testing.T) {
	hostile := jenkins.ParseWhy("Waiting for next available executor on ‘" + strings.Repeat("(", 1<<20) + "’")
	if hostile.Err == nil {
		t.Fatal("ParseWhy gave no error for 1 MB of '(': the test no longer tries what it means to")
	}
	w := newTestWorld().demand(jenkins.Demand{QueueID: 7, Kind: jenkins.KindPipeline, InQueueSince: t0.Add(-time.Second), Err: hostile.Err}).
		build(8, "maven", time.Second)
	d := Decide(w.snap, NewMemory(), testDecideConfig, t0)
	if diff := cmp.Diff([]string{"Create maven queued-1s"}, actions(d)); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
	var bad []int64
	for _, n := range d.Notices {
		if n.Kind == NoticeBadDemand {
			bad = append(bad, n.QueueID)
			if len(n.Reason.Detail) > 1000 {
				t.Errorf("notice detail of %d bytes carries the hostile text", len(n.Reason.Detail))
			}
		}
	}
	if diff := cmp.Diff([]int64{7}, bad); diff != "" {
		t.Errorf("unreadable items reported (-want +got):\n%s", diff)
	}
	var rows []string
	for _, s := range d.Status.Waiting {
		rows = append(rows, s.Label+" "+string(s.Why.Kind))
	}
	if !cmp.Equal(rows, []string{"maven AgentStarting", unreadableLabel + " " + string(WaitUnreadable)}) &&
		!cmp.Equal(rows, []string{unreadableLabel + " " + string(WaitUnreadable), "maven AgentStarting"}) {
		t.Errorf("waiting rows %q, want the maven build starting and the unreadable one shown", rows)
	}
	again := Decide(w.snap, d.Memory, testDecideConfig, t0.Add(time.Second))
	for _, n := range again.Notices {
		if n.Kind == NoticeBadDemand {
			t.Errorf("reported again: %+v", n)
		}
	}
}

// hangingJenkins holds every CreateNode until its context ends: a Jenkins that accepts the
// connection and never answers.
type hangingJenkins struct {
	*fakeJenkins
	mu      sync.Mutex
	entered int
}

func (h *hangingJenkins) CreateNode(ctx context.Context, n jenkins.NodeSpec) error {
	h.mu.Lock()
	h.entered++
	h.mu.Unlock()
	<-ctx.Done()
	return ctx.Err()
}

func (h *hangingJenkins) creates() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.entered
}

// Caps hold by construction (item 4): provisioning steps that hang far past the minute after which
// an unobserved creation is forgotten still count, so no poll plans more than maxAgents.
func TestCapsHoldWhileProvisioningHangs(t *testing.T) {
	c, kube, jc := newTestController(t)
	hang := &hangingJenkins{fakeJenkins: jc}
	c.jenkins = hang
	c.cfg.MaxAgents = 2
	now := t0
	c.now = func() time.Time { return now }
	for i := range 5 {
		jc.queue = append(jc.queue, jenkins.Demand{QueueID: int64(i + 1), Label: "docker", Kind: jenkins.KindFreestyle, InQueueSince: t0.Add(-time.Second)})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.act.work(ctx, 8, 1); close(done) }()
	defer func() { cancel(); <-done }()
	if err := c.poll(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return hang.creates() == 2 })
	for _, later := range []time.Duration{30 * time.Second, 61 * time.Second, 5 * time.Minute, time.Hour} {
		now = t0.Add(later)
		snap, err := c.observe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		d := Decide(snap, c.mem, c.cfg.decideConfig(), now)
		live := len(snap.Creating) + len(snap.Pods)
		for _, a := range d.Actions {
			if a.Kind == ActCreate {
				live++
			}
		}
		if live > c.cfg.MaxAgents {
			t.Errorf("%s into two hung creations: %d agents live or planned, maxAgents %d", later, live, c.cfg.MaxAgents)
		}
	}
	if w := kubeWrites(kube); len(w) != 0 {
		t.Errorf("kube writes while Jenkins hangs: %v", w)
	}
}

// Agent Secrets in the informer cache carry no data (item 6).
func TestCachedSecretsCarryNoData(t *testing.T) {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "maven-a", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "x"}}},
		Data: map[string][]byte{"secret": []byte("agent-secret")}, StringData: map[string]string{"secret": "agent-secret"}}
	got, err := trimForCache(s)
	if err != nil {
		t.Fatal(err)
	}
	sec := got.(*corev1.Secret)
	if sec.Data != nil || sec.StringData != nil || sec.ManagedFields != nil {
		t.Errorf("cached Secret keeps %v %v %v", sec.Data, sec.StringData, sec.ManagedFields)
	}
}

// The installation identity is made once and read back the same by every later provisioner.
func TestEnsureIdentity(t *testing.T) {
	kube := fake.NewClientset()
	ctx := context.Background()
	first, err := EnsureIdentity(ctx, kube, "ci", "")
	if err != nil {
		t.Fatal(err)
	}
	second, err := EnsureIdentity(ctx, kube, "ci", "")
	if err != nil {
		t.Fatal(err)
	}
	if first.ID == "" || len(first.Key) < 16 || !cmp.Equal(first, second) {
		t.Errorf("identities %+v and %+v, want one stable identity", first, second)
	}
	s, err := kube.CoreV1().Secrets("ci").Get(ctx, InstallationSecretName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Labels[podtemplate.LabelManagedBy] != "" {
		t.Errorf("installation Secret carries the agent label %s: the agent caches would hold it", podtemplate.LabelManagedBy)
	}
	named, err := EnsureIdentity(ctx, kube, "ci", "team-a")
	if err != nil || named.ID != "team-a" || !cmp.Equal(named.Key, first.Key) {
		t.Errorf("PROVISIONER_INSTALLATION_ID=team-a: %+v, %v", named, err)
	}
	if _, err := EnsureIdentity(ctx, kube, "ci", "Team A"); err == nil || !strings.Contains(err.Error(), "installation id") {
		t.Errorf("bad installation id: %v, want an error naming it", err)
	}
}

// unauthorizedJenkins answers 401 to every read, counting them like *jenkins.Client does.
type unauthorizedJenkins struct {
	*fakeJenkins
	mu sync.Mutex
	n  int
}

func (u *unauthorizedJenkins) Computers(context.Context) ([]jenkins.Computer, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.n++
	return nil, fmt.Errorf("jenkins GET /computer/api/json: %w", jenkins.ErrUnauthorized)
}

func (u *unauthorizedJenkins) ConsecutiveUnauthorized() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.n
}

// After MaxUnauthorized 401s in a row Run returns, saying why, so that a leader gives up its Lease
// (item 6).
func TestRunGivesUpAfterConsecutiveUnauthorized(t *testing.T) {
	jc := &unauthorizedJenkins{fakeJenkins: &fakeJenkins{fail: map[string]error{}, jobLabels: map[string]string{}}}
	c, err := New(zaptest.NewLogger(t), jc, fake.NewClientset(), staticTemplates{testTemplates()}, nil,
		Config{Namespace: "ci", PollInterval: 10 * time.Millisecond, Identity: testID, MaxUnauthorized: 3})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(context.Background()) }()
	select {
	case err := <-done:
		if !errors.Is(err, jenkins.ErrUnauthorized) || !strings.Contains(err.Error(), "3 requests in a row") {
			t.Errorf("Run = %v, want the 401s named", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run still leads after 401s in a row")
	}
	if n := jc.ConsecutiveUnauthorized(); n != 3 {
		t.Errorf("%d reads before giving up, want 3", n)
	}
}
