package lifecycle

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
)

// gated is a pod Kueue has not admitted: its webhook's gate on it, Pending, PodScheduled=False
// SchedulingGated since creation (as the apiserver writes it), in LocalQueue team-a.
func gated(p *corev1.Pod) {
	p.Labels[podtemplate.LabelKueueQueue] = "team-a"
	p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: kueueAdmissionGate}}
	p.Status.Phase = corev1.PodPending
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
		Reason: corev1.PodReasonSchedulingGated, LastTransitionTime: p.CreationTimestamp}}
}

// admittedAgo is a pod Kueue queued and admitted d before t0: gate gone, scheduled at t0-d.
func admittedAgo(d time.Duration) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Labels[podtemplate.LabelKueueQueue] = "team-a"
		p.Status.Phase = corev1.PodPending
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue,
			LastTransitionTime: metav1.NewTime(t0.Add(-d))}}
	}
}

// evictedByKueue is a pod Kueue's pod controller stopped: TerminationTarget, then the delete.
func evictedByKueue(p *corev1.Pod) {
	now := metav1.NewTime(t0)
	p.DeletionTimestamp = &now
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: kueueTerminationTarget, Status: corev1.ConditionTrue,
		Reason: "WorkloadEvicted", Message: "Preempted to accommodate a workload due to reclamation within the cohort"})
}

func shortConnect(p *corev1.Pod) { p.Annotations[annotationConnectTimeout] = "15s" }

// Pods Kueue queues (issue 14): waiting for quota is a state of its own, never a failure; the
// connect timeout counts from admission; a wave of failures backs off once; evictions are told.
func TestDecideKueue(t *testing.T) {
	tests := []decideCase{
		{
			name: "a gated pod past its connect timeout is queued, not failed, and serves its build",
			world: newTestWorld().pod("maven-a", "maven", 10*time.Minute, gated, shortConnect).node("maven-a", "maven", 10*time.Minute).
				build(1, "maven", 10*time.Minute),
			want:    []string{},
			waits:   []string{"maven→maven: 1 WaitingForQuota (waiting for quota in Kueue LocalQueue team-a)"},
			notices: []string{},
			agents:  map[AgentKey]int{{"maven", Queued}: 1},
		},
		{
			name: "queued agents count against the template's cap",
			world: newTestWorld().pod("maven-a", "maven", time.Minute, gated).node("maven-a", "maven", time.Minute).
				pod("maven-b", "maven", time.Minute, gated).node("maven-b", "maven", time.Minute).
				pod("maven-c", "maven", time.Minute, gated).node("maven-c", "maven", time.Minute).
				build(1, "maven", time.Minute).build(2, "maven", time.Minute).build(3, "maven", time.Minute).build(4, "maven", time.Second),
			want:   []string{},
			waits:  []string{"maven→maven: 4 TemplateCap"},
			agents: map[AgentKey]int{{"maven", Queued}: 3},
		},
		{
			name: "the gate just went and no scheduler looked yet: still queued",
			world: newTestWorld().pod("maven-a", "maven", 10*time.Minute, gated, shortConnect, func(p *corev1.Pod) { p.Spec.SchedulingGates = nil }).
				node("maven-a", "maven", 10*time.Minute).build(1, "maven", 10*time.Minute),
			want:   []string{},
			agents: map[AgentKey]int{{"maven", Queued}: 1},
		},
		{
			name: "admitted 5 s ago after 10 min in the queue: the 15 s connect timeout has not run out",
			world: newTestWorld().pod("maven-a", "maven", 10*time.Minute, admittedAgo(5*time.Second), shortConnect).
				node("maven-a", "maven", 10*time.Minute).build(1, "maven", 10*time.Minute),
			want:   []string{},
			waits:  []string{"maven→maven: 1 AgentStarting"},
			agents: map[AgentKey]int{{"maven", Starting}: 1},
		},
		{
			name: "admitted 20 s ago and still not online: the connect timeout counts from admission",
			world: newTestWorld().pod("maven-a", "maven", 10*time.Minute, admittedAgo(20*time.Second), shortConnect).
				node("maven-a", "maven", 10*time.Minute),
			want:    []string{"Fail maven-a ConnectTimeout"},
			notices: []string{"AgentFailed maven-a backoff=5s"},
		},
		{
			name:  "a queued agent no build needs any more is released like a starting one",
			world: newTestWorld().pod("maven-a", "maven", time.Minute, gated).node("maven-a", "maven", time.Minute),
			mem:   func(m *Memory) { m.SurplusSince["maven"] = t0.Add(-time.Minute) },
			want:  []string{"Release maven-a"},
		},
		{
			name: "six agents failing for one cause in one poll back the template off once",
			world: func() *testWorld {
				w := newTestWorld()
				for _, n := range []string{"docker-a", "docker-b", "docker-c", "docker-d", "docker-e", "docker-f"} {
					w.pod(n, "docker", time.Minute, shortConnect).node(n, "docker", time.Minute)
				}
				return w
			}(),
			want: []string{"Fail docker-a ConnectTimeout", "Fail docker-b ConnectTimeout", "Fail docker-c ConnectTimeout",
				"Fail docker-d ConnectTimeout", "Fail docker-e ConnectTimeout", "Fail docker-f ConnectTimeout"},
			notices: []string{"AgentFailed docker-a backoff=5s", "AgentFailed docker-b backoff=5s", "AgentFailed docker-c backoff=5s",
				"AgentFailed docker-d backoff=5s", "AgentFailed docker-e backoff=5s", "AgentFailed docker-f backoff=5s"},
		},
		{
			name:  "an agent made after the backoff last doubled, failing again, doubles it",
			world: newTestWorld().pod("docker-a", "docker", 20*time.Second, shortConnect).node("docker-a", "docker", 20*time.Second),
			mem: func(m *Memory) {
				m.Backoff["docker"] = Backoff{Failures: 1, Until: t0.Add(-25 * time.Second), Raised: t0.Add(-30 * time.Second),
					Last: Reason{KindConnectTimeout, "agent not online within connectTimeout 15s"}}
			},
			want:    []string{"Fail docker-a ConnectTimeout"},
			notices: []string{"AgentFailed docker-a backoff=10s"},
		},
		{
			name:  "a failure of another kind in the same wave doubles it",
			world: newTestWorld().pod("docker-a", "docker", 20*time.Second, waiting("ErrImagePull", "")).node("docker-a", "docker", 20*time.Second),
			mem: func(m *Memory) {
				m.Backoff["docker"] = Backoff{Failures: 1, Until: t0.Add(5 * time.Second), Raised: t0,
					Last: Reason{KindConnectTimeout, "agent not online within connectTimeout 15s"}}
			},
			want:    []string{"Fail docker-a ImagePull"},
			notices: []string{"AgentFailed docker-a backoff=10s"},
		},
		{
			name:    "Kueue evicts a busy agent: node, pod and Secret go (the Lose step), and the lost build is told once in Kueue's words",
			world:   newTestWorld().pod("maven-a", "maven", time.Minute, evictedByKueue).node("maven-a", "maven", time.Minute, building),
			want:    []string{"Lose maven-a build=http://j/job/a/1/ KueueEvicted"},
			notices: []string{"AgentEvicted maven-a"},
		},
		{
			name: "an eviction only the watch saw (the pod already gone): the node goes without grace, told once",
			world: func() *testWorld {
				w := newTestWorld().node("maven-a", "maven", time.Minute)
				pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "maven-a", Labels: map[string]string{podtemplate.LabelTemplate: "maven"}}}
				evictedByKueue(pod)
				w.snap.Evicted = []Eviction{{Agent: "maven-a", Template: "maven", Reason: Reason{KindKueueEvicted, "evicted by Kueue"}, Pod: pod}}
				return w
			}(),
			mem:     func(m *Memory) { m.Builds["maven-a"] = "http://j/job/a/1/" },
			want:    []string{"RemoveOrphan maven-a NodeWithoutPod"},
			notices: []string{"AgentEvicted maven-a"},
		},
		{
			name:    "an eviction already told is not told again",
			world:   newTestWorld().pod("maven-a", "maven", time.Minute, evictedByKueue),
			mem:     func(m *Memory) { m.Seen["evicted/maven-a"] = t0.Add(-time.Second) },
			want:    []string{},
			notices: []string{},
		},
	}
	runDecideCases(t, testDecideConfig, tests)
}

// The eviction notice carries Kueue's reason and the build it took.
func TestDecideKueueEvictionNotice(t *testing.T) {
	w := newTestWorld().pod("maven-a", "maven", time.Minute, evictedByKueue).node("maven-a", "maven", time.Minute, building)
	d := Decide(w.snap, NewMemory(), testDecideConfig, t0)
	var got []Notice
	for _, n := range d.Notices {
		if n.Kind == NoticeEvicted {
			got = append(got, Notice{Kind: n.Kind, Agent: n.Agent, Template: n.Template, Build: n.Build, Reason: n.Reason})
		}
	}
	want := []Notice{{Kind: NoticeEvicted, Agent: "maven-a", Template: "maven", Build: "http://j/job/a/1/",
		Reason: Reason{KindKueueEvicted, "evicted by Kueue (WorkloadEvicted): Preempted to accommodate a workload due to reclamation within the cohort"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("eviction notices (-want +got):\n%s", diff)
	}
}

// The build an evicted agent ran is remembered from its busy polls: Jenkins no longer shows it once
// the agent is gone.
func TestDecideKueueEvictionRemembersTheBuild(t *testing.T) {
	w := newTestWorld().agent("maven-a", "maven", time.Minute, building)
	d := Decide(w.snap, NewMemory(), testDecideConfig, t0)
	if got := d.Memory.Builds["maven-a"]; got != "http://j/job/a/1/" {
		t.Fatalf("remembered build %q", got)
	}
	pod := w.podNamed("maven-a").DeepCopy()
	evictedByKueue(pod)
	gone := newTestWorld().node("maven-a", "maven", time.Minute)
	gone.snap.Evicted = []Eviction{{Agent: "maven-a", Template: "maven", Reason: Reason{KindKueueEvicted, "evicted by Kueue"}, Pod: pod}}
	d = Decide(gone.snap, d.Memory, testDecideConfig, t0.Add(time.Second))
	var builds []string
	for _, n := range d.Notices {
		if n.Kind == NoticeEvicted {
			builds = append(builds, n.Build)
		}
	}
	if diff := cmp.Diff([]string{"http://j/job/a/1/"}, builds); diff != "" {
		t.Errorf("evicted builds (-want +got):\n%s", diff)
	}
	gone.snap.Evicted = nil
	gone.snap.Computers = nil
	if d = Decide(gone.snap, d.Memory, testDecideConfig, t0.Add(2*time.Second)); len(d.Memory.Builds) != 0 {
		t.Errorf("builds of agents gone are kept: %v", d.Memory.Builds)
	}
}
