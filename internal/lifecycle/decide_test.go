package lifecycle

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins"
)

// Every rule of decide, as a snapshot in and actions (and why builds wait) out.
func TestDecide(t *testing.T) {
	busyMarked := func(c *jenkins.Computer) { building(c); marked(busyMark("http://j/job/a/1/"))(c) }
	const jobURL = "http://j/job/legacy/"
	tests := []decideCase{
		// Demand per template.
		{
			name:  "each build goes to the first template in file order whose labels match",
			world: newTestWorld().build(1, "linux", 30*time.Second).build(2, "docker", 20*time.Second).build(3, "", 10*time.Second),
			want:  []string{"Create maven queued-30s", "Create docker queued-20s", "Create any queued-10s"},
			waits: []string{"linux→maven: 1 AgentStarting", "docker→docker: 1 AgentStarting", "→any: 1 AgentStarting"},
		},
		{
			name:  "one agent per waiting build, the longest-waiting build's first",
			world: newTestWorld().build(1, "maven", 5*time.Second).build(2, "maven", 50*time.Second),
			want:  []string{"Create maven queued-50s", "Create maven queued-5s"},
			waits: []string{"maven→maven: 2 AgentStarting"},
		},
		{
			name:  "a starting agent serves a waiting build",
			world: newTestWorld().agent("maven-a", "maven", 10*time.Second).build(1, "maven", time.Second),
			want:  []string{},
			waits: []string{"maven→maven: 1 AgentStarting"},
			check: func(t *testing.T, d Decision) {
				if d.Exposed != 1 {
					t.Errorf("exposed = %d, want 1 (a starting agent may take a build any moment)", d.Exposed)
				}
			},
		},
		{
			name: "a pipeline build that names no label goes to the mode normal template",
			world: newTestWorld().demand(jenkins.Demand{QueueID: 1, Kind: jenkins.KindPipeline, TaskURL: "http://j/job/p/1/", Ambiguous: true,
				InQueueSince: t0.Add(-time.Second)}),
			want: []string{"Create any queued-1s"},
		},
		{
			name: "a freestyle build's label is the one observe read from its job",
			world: func() *testWorld {
				w := newTestWorld().demand(jenkins.Demand{QueueID: 1, Kind: jenkins.KindFreestyle, TaskURL: jobURL, Ambiguous: true, InQueueSince: t0.Add(-time.Second)})
				w.snap.JobLabels[jobURL] = JobLabel{Expr: "docker"}
				return w
			}(),
			want:  []string{"Create docker queued-1s"},
			waits: []string{"docker→docker: 1 AgentStarting"},
		},
		{
			name: "a freestyle build whose job could not be read waits, saying so",
			world: func() *testWorld {
				w := newTestWorld().demand(jenkins.Demand{QueueID: 1, Kind: jenkins.KindFreestyle, TaskURL: jobURL, Ambiguous: true, InQueueSince: t0.Add(-time.Second)})
				w.snap.JobLabels[jobURL] = JobLabel{Failed: true, Detail: "jenkins: unavailable"}
				return w
			}(),
			want:  []string{},
			waits: []string{"unknown→: 1 LabelUnknown (jenkins: unavailable)"},
		},
		{
			name:    "no template serves the label: nothing is made, and that is said once",
			world:   newTestWorld().build(1, "gpu", time.Second).build(2, "gpu", 2*time.Second),
			want:    []string{},
			waits:   []string{"gpu→: 2 NoTemplate"},
			notices: []string{"Unserved gpu"},
		},
		{
			name:    "a label no template serves is logged at most once a minute",
			world:   newTestWorld().build(1, "gpu", time.Second),
			mem:     func(m *Memory) { m.Seen["unserved/gpu"] = t0.Add(-30 * time.Second) },
			want:    []string{},
			notices: []string{},
		},
		// Node-named demand.
		{
			name:  "a build waiting for one node of ours waits for that agent's template",
			world: newTestWorld().agent("maven-a", "maven", time.Minute, busyMarked).demand(jenkins.Demand{QueueID: 1, Node: "maven-a", InQueueSince: t0.Add(-time.Second)}),
			want:  []string{"Create maven queued-1s"},
			waits: []string{"node maven-a→maven: 1 AgentStarting"},
		},
		{
			name:  "a build waiting for a node that is not ours is not served",
			world: newTestWorld().demand(jenkins.Demand{QueueID: 1, Node: "static-1", InQueueSince: t0.Add(-time.Second)}),
			want:  []string{},
			waits: []string{"node:static-1→: 1 NoTemplate"},
		},
		// Caps.
		{
			name: "busy agents serve no new build but count against the template's cap",
			world: newTestWorld().agent("maven-a", "maven", time.Minute, busyMarked).agent("maven-b", "maven", time.Minute, busyMarked).
				build(1, "maven", time.Second).build(2, "maven", time.Second),
			want:  []string{"Create maven queued-1s"},
			waits: []string{"maven→maven: 2 TemplateCap"},
		},
		{
			name: "the template's cap reached: builds wait for it",
			world: newTestWorld().agent("maven-a", "maven", time.Minute, busyMarked).agent("maven-b", "maven", time.Minute, busyMarked).
				agent("maven-c", "maven", time.Minute, busyMarked).build(1, "maven", time.Second),
			want:  []string{},
			waits: []string{"maven→maven: 1 TemplateCap"},
		},
		{
			name:  "the global cap goes to the longest-waiting template first",
			world: newTestWorld().build(1, "docker", 10*time.Second).build(2, "docker", 10*time.Second).build(3, "maven", time.Minute).build(4, "maven", time.Minute),
			cfg:   func(c *DecideConfig) { c.MaxAgents = 3 },
			want:  []string{"Create maven queued-1m0s", "Create maven queued-1m0s", "Create docker queued-10s"},
			waits: []string{"maven→maven: 2 AgentStarting", "docker→docker: 2 GlobalCap"},
		},
		{
			name:  "every pod of ours counts against the global cap, whatever its template",
			world: newTestWorld().agent("old-a", "removed-template", time.Minute, busyMarked).build(1, "maven", time.Second),
			cfg:   func(c *DecideConfig) { c.MaxAgents = 1 },
			want:  []string{},
			waits: []string{"maven→maven: 1 GlobalCap"},
		},
		// Expectations.
		{
			name:  "a creation in flight serves a waiting build before its pod is seen",
			world: newTestWorld().creating("maven-new", "maven").build(1, "maven", time.Second),
			want:  []string{},
			waits: []string{"maven→maven: 1 AgentStarting"},
		},
		{
			name:  "creations in flight count against the template's cap",
			world: newTestWorld().creating("maven-1", "maven").creating("maven-2", "maven").creating("maven-3", "maven").build(1, "maven", time.Second).build(2, "maven", time.Second).build(3, "maven", time.Second).build(4, "maven", time.Second),
			want:  []string{},
			waits: []string{"maven→maven: 4 TemplateCap"},
		},
		{
			name:  "creations in flight count against the global cap",
			world: newTestWorld().creating("docker-1", "docker").build(1, "maven", time.Second),
			cfg:   func(c *DecideConfig) { c.MaxAgents = 1 },
			want:  []string{},
			waits: []string{"maven→maven: 1 GlobalCap"},
		},
		{
			name:  "a creation whose pod the cache shows counts once",
			world: newTestWorld().creating("maven-a", "maven").agent("maven-a", "maven", time.Second).build(1, "maven", time.Second).build(2, "maven", time.Second),
			want:  []string{"Create maven queued-1s"},
		},
		// Backoff and probing.
		{
			name:  "a backed-off template makes nothing and says until when, after what",
			world: newTestWorld().build(1, "maven", time.Second),
			mem: func(m *Memory) {
				m.Backoff["maven"] = Backoff{Failures: 1, Until: t0.Add(5 * time.Second), Last: Reason{KindImagePull, "ErrImagePull (container jnlp)"}}
			},
			want:  []string{},
			waits: []string{"maven→maven: 1 Backoff (ErrImagePull (container jnlp)) until t0+5s"},
		},
		{
			name:  "a template the API server refused waits with the refusal",
			world: newTestWorld().build(1, "maven", time.Second),
			mem: func(m *Memory) {
				m.Backoff["maven"] = Backoff{Failures: 1, Until: t0.Add(5 * time.Second), Last: Reason{KindQuotaExceeded, "quota exceeded: pods"}}
			},
			want:  []string{},
			waits: []string{"maven→maven: 1 Refused (quota exceeded: pods) until t0+5s"},
		},
		{
			name:  "after the backoff one agent probes whether the cause is gone",
			world: newTestWorld().build(1, "docker", time.Second).build(2, "docker", time.Second).build(3, "docker", time.Second),
			mem: func(m *Memory) {
				m.Backoff["docker"] = Backoff{Failures: 1, Until: t0.Add(-time.Second), Last: Reason{KindCrash, "Error (container jnlp)"}}
			},
			want:  []string{"Create docker queued-1s"},
			waits: []string{"docker→docker: 3 Probing (Error (container jnlp))"},
		},
		{
			name:  "a probe on its way is enough",
			world: newTestWorld().agent("docker-a", "docker", time.Second).build(1, "docker", time.Second).build(2, "docker", time.Second),
			mem:   func(m *Memory) { m.Backoff["docker"] = Backoff{Failures: 1, Until: t0.Add(-time.Second)} },
			want:  []string{},
			waits: []string{"docker→docker: 2 Probing"},
		},
		{
			name: "a refused creation backs its template off at once",
			world: func() *testWorld {
				w := newTestWorld().build(1, "maven", time.Second)
				w.snap.Outcomes = []Outcome{{At: t0.Add(-time.Second), Agent: "maven-x", Template: "maven", Reason: Reason{KindQuotaExceeded, "quota exceeded: pods"}, Code: "403"}}
				return w
			}(),
			want:    []string{},
			waits:   []string{"maven→maven: 1 Refused (quota exceeded: pods) until t0+4s"},
			notices: []string{"ProvisioningRefused maven-x backoff=5s"},
			check: func(t *testing.T, d Decision) {
				want := []FailureRecord{{At: t0.Add(-time.Second), Agent: "maven-x", Template: "maven", Reason: "quota exceeded: pods", Kind: KindQuotaExceeded}}
				if diff := cmp.Diff(want, d.Status.Failures); diff != "" {
					t.Errorf("failures (-want +got):\n%s", diff)
				}
			},
		},
		{
			name:    "an agent coming online ends its template's backoff",
			world:   newTestWorld().agent("maven-a", "maven", time.Minute, online).build(1, "maven", time.Second).build(2, "maven", time.Second),
			mem:     func(m *Memory) { m.Backoff["maven"] = Backoff{Failures: 3, Until: t0.Add(time.Minute)} },
			want:    []string{"Create maven queued-1s"},
			notices: []string{"AgentOnline maven-a"},
		},
		// Failures.
		{
			name: "a failed agent is removed, counted once, and backs its template off before the plan replaces it",
			world: newTestWorld().pod("maven-a", "maven", 10*time.Second, waiting("ErrImagePull", "no such image")).node("maven-a", "maven", 10*time.Second).
				build(1, "maven", time.Second),
			want:    []string{"Fail maven-a ImagePull"},
			waits:   []string{"maven→maven: 1 Backoff (ErrImagePull (container jnlp): no such image) until t0+5s"},
			notices: []string{"AgentFailed maven-a backoff=5s"},
		},
		{
			name:    "a failure already counted is not counted again",
			world:   newTestWorld().pod("maven-a", "maven", 10*time.Second, waiting("ErrImagePull", "")).node("maven-a", "maven", 10*time.Second, marked(reasonFailed+"x")),
			mem:     func(m *Memory) { m.Seen["failed/maven-a"] = t0.Add(-time.Second) },
			want:    []string{"Fail maven-a Other"},
			notices: []string{},
			check: func(t *testing.T, d Decision) {
				if !d.Actions[0].NodeMarkedFailed {
					t.Error("a node that already says why it failed is marked again")
				}
			},
		},
		{
			name:  "a failed agent whose template keeps failures is retained",
			world: newTestWorld().pod("maven-a", "maven", 10*time.Second, withAnnotation(annotationPodRetention, "onFailure"), waiting("ErrImagePull", "")).node("maven-a", "maven", 10*time.Second),
			want:  []string{"Fail maven-a retain ImagePull"},
		},
		// Busy, done, released.
		{
			name:    "a busy agent is marked so no second build lands on it",
			world:   newTestWorld().agent("maven-a", "maven", time.Minute, building),
			want:    []string{"MarkBusy maven-a build=http://j/job/a/1/"},
			notices: []string{"AgentOnline maven-a", "BuildStarted maven-a"},
		},
		{
			name:  "a busy agent already marked is left to its build",
			world: newTestWorld().agent("maven-a", "maven", time.Minute, busyMarked),
			mem:   func(m *Memory) { m.Seen["online/maven-a"], m.Seen["busy/maven-a"] = t0, t0 },
			want:  []string{}, notices: []string{},
		},
		{
			name: "a done agent goes: node, pod and the Secret it owns",
			world: func() *testWorld {
				w := newTestWorld().agent("maven-a", "maven", time.Minute, marked(busyMark("http://j/job/a/1/")))
				return w.secret("maven-a", time.Minute, w.podNamed("maven-a"))
			}(),
			want: []string{"Finish maven-a +secret"},
		},
		{
			name: "a Secret that only shares the pod's name is not deleted with it",
			world: func() *testWorld {
				w := newTestWorld().agent("maven-a", "maven", time.Minute, marked(reasonBusy))
				other := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "maven-a", UID: "uid-of-an-earlier-pod"}}
				return w.secret("maven-a", time.Minute, other)
			}(),
			want: []string{"Finish maven-a"},
		},
		{
			name:  "a done agent whose template keeps every pod is retained",
			world: newTestWorld().pod("maven-a", "maven", time.Minute, withAnnotation(annotationPodRetention, "always")).node("maven-a", "maven", time.Minute, marked(reasonBusy)),
			want:  []string{"Finish maven-a retain"},
		},
		{
			name:  "a released agent goes",
			world: newTestWorld().agent("maven-a", "maven", time.Minute, marked(reasonReleased)),
			want:  []string{"Finish maven-a"},
		},
		// Release grace.
		{
			name:  "surplus agents wait for the release grace",
			world: newTestWorld().agent("maven-a", "maven", time.Minute, online),
			mem:   func(m *Memory) { m.Seen["online/maven-a"] = t0 },
			want:  []string{},
			check: func(t *testing.T, d Decision) {
				if got := d.Memory.SurplusSince["maven"]; !got.Equal(t0) {
					t.Errorf("surplus since %v, want %v", got, t0)
				}
			},
		},
		{
			name:  "surplus past the grace releases the youngest agents first",
			world: newTestWorld().agent("maven-old", "maven", time.Minute, online).agent("maven-new", "maven", 20*time.Second, online).agent("maven-mid", "maven", 40*time.Second, online).build(1, "maven", time.Second),
			mem: func(m *Memory) {
				m.SurplusSince["maven"] = t0.Add(-11 * time.Second)
				m.Seen["online/maven-old"], m.Seen["online/maven-new"], m.Seen["online/maven-mid"] = t0, t0, t0
			},
			want: []string{"Release maven-new", "Release maven-mid"},
		},
		{
			name:  "demand back ends the surplus",
			world: newTestWorld().agent("maven-a", "maven", time.Minute, online).build(1, "maven", time.Second),
			mem: func(m *Memory) {
				m.SurplusSince["maven"] = t0.Add(-time.Hour)
				m.Seen["online/maven-a"] = t0
			},
			want: []string{},
			check: func(t *testing.T, d Decision) {
				if _, ok := d.Memory.SurplusSince["maven"]; ok {
					t.Error("surplus still remembered while every agent has a build to serve")
				}
			},
		},
		// Orphans, on both sides.
		{
			name:  "a node without a pod within the grace is left alone",
			world: newTestWorld().node("maven-a", "maven", 30*time.Second),
			want:  []string{},
		},
		{
			name:  "a node without a pod past the grace is removed",
			world: newTestWorld().node("maven-a", "maven", 2*time.Minute),
			want:  []string{"RemoveOrphan maven-a NodeWithoutPod"},
		},
		{
			name:  "an agent still being created is never an orphan",
			world: newTestWorld().node("maven-a", "maven", 2*time.Minute).creating("maven-a", "maven"),
			want:  []string{},
		},
		{
			name:  "a pod without a node past the grace is removed",
			world: newTestWorld().pod("maven-a", "maven", 2*time.Minute, pending),
			want:  []string{"RemoveOrphan maven-a PodWithoutNode"},
		},
		{
			name:  "a terminating pod's node is deleted",
			world: newTestWorld().pod("maven-a", "maven", time.Minute, func(p *corev1.Pod) { now := metav1.NewTime(t0); p.DeletionTimestamp = &now }).node("maven-a", "maven", time.Minute),
			want:  []string{"DeleteNode maven-a"},
		},
		{
			name:  "a terminating pod without a node needs nothing",
			world: newTestWorld().pod("maven-a", "maven", time.Minute, func(p *corev1.Pod) { now := metav1.NewTime(t0); p.DeletionTimestamp = &now }),
			want:  []string{},
		},
		// Retention.
		{
			name:  "a retained pod stays until its retention ends",
			world: newTestWorld().pod("maven-a", "maven", time.Hour, withAnnotation(annotationRetainUntil, t0.Add(time.Minute).Format(time.RFC3339))),
			want:  []string{},
		},
		{
			name:  "a retained pod goes when its retention ends",
			world: newTestWorld().pod("maven-a", "maven", time.Hour, withAnnotation(annotationRetainUntil, t0.Add(-time.Second).Format(time.RFC3339))),
			want:  []string{"Expire maven-a RetentionExpired"},
		},
		// Secrets.
		{
			name:  "a Secret whose pod is gone is deleted past the grace",
			world: newTestWorld().secret("maven-z", 2*time.Minute, nil),
			want:  []string{"DeleteSecret maven-z"},
		},
		{
			name:  "a young Secret without a pod is left alone (its pod may be on its way)",
			world: newTestWorld().secret("maven-z", 10*time.Second, nil),
			want:  []string{},
		},
		{
			name:  "a Secret of a creation in flight is left alone",
			world: newTestWorld().secret("maven-z", 2*time.Minute, nil).creating("maven-z", "maven"),
			want:  []string{},
		},
		{
			name:  "a Secret whose node exists is left to the node's orphan handling",
			world: newTestWorld().secret("maven-z", 2*time.Minute, nil).node("maven-z", "maven", 30*time.Second),
			want:  []string{},
		},
		{
			name:  "a Secret a crash left without its owner gets its pod as owner",
			world: newTestWorld().agent("maven-a", "maven", 10*time.Second).secret("maven-a", 10*time.Second, nil),
			want:  []string{"OwnSecret maven-a"},
		},
		// Nodes that are not ours.
		{
			name: "the placeholder node and static agents are never agents of ours",
			world: func() *testWorld {
				w := newTestWorld()
				w.snap.Computers = []jenkins.Computer{
					{Name: PlaceholderNodeName, Description: placeholderDescription, Offline: true, TemporarilyOffline: true},
					{Name: "static-1", Description: "a static agent", Executors: []jenkins.Executor{{Build: &jenkins.Build{URL: "http://j/job/s/1/"}}}},
				}
				return w
			}(),
			want: []string{},
			check: func(t *testing.T, d Decision) {
				if len(d.Status.Agents) != 0 {
					t.Errorf("agents = %+v, want none", d.Status.Agents)
				}
			},
		},
		{
			name: "without templates agents are still looked after, and nothing is made",
			world: func() *testWorld {
				w := newTestWorld().agent("maven-a", "maven", time.Minute, marked(reasonBusy)).build(1, "maven", time.Second)
				w.snap.Templates = nil
				return w
			}(),
			want:  []string{"Finish maven-a"},
			waits: []string{},
		},
	}
	runDecideCases(t, testDecideConfig, tests)
}

// With Jenkins not read this poll, decide holds everything: no action, memory as it was but for
// when the outage began.
func TestDecideHoldsWithoutAFreshJenkinsView(t *testing.T) {
	w := newTestWorld().agent("maven-a", "maven", time.Minute, marked(reasonBusy)).node("orphan", "maven", time.Hour).build(1, "maven", time.Second)
	w.snap.JenkinsFresh = false
	mem := NewMemory()
	mem.Seen["x"] = t0
	d := Decide(w.snap, mem, testDecideConfig, t0)
	if !d.Hold || len(d.Actions) != 0 || len(d.Notices) != 0 {
		t.Errorf("decision = hold %v, %d actions, %d notices; want hold and nothing", d.Hold, len(d.Actions), len(d.Notices))
	}
	want := mem.clone()
	want.JenkinsDownSince = t0 // only the outage is remembered, so its length does not count against agents later
	if diff := cmp.Diff(want, d.Memory); diff != "" {
		t.Errorf("memory while holding (-want +got):\n%s", diff)
	}
}

// decide never changes the memory it is given: the caller keeps the previous one until it applies
// the decision.
func TestDecideLeavesItsInputsAlone(t *testing.T) {
	w := newTestWorld().pod("maven-a", "maven", 10*time.Second, waiting("ErrImagePull", "")).node("maven-a", "maven", 10*time.Second).
		agent("maven-b", "maven", time.Minute, online).build(1, "gpu", time.Second)
	mem := NewMemory()
	before := mem.clone()
	d := Decide(w.snap, mem, testDecideConfig, t0)
	if diff := cmp.Diff(before, mem); diff != "" {
		t.Errorf("input memory changed (-want +got):\n%s", diff)
	}
	// maven-b online ends the backoff maven-a's failure started (agents are judged in name order).
	if len(d.Memory.Seen) != 3 || len(d.Memory.Failures) != 1 || len(d.Memory.Backoff) != 0 {
		t.Errorf("next memory = %+v, want the failure and the one-shot keys", d.Memory)
	}
}

// The gauges' view: agents by template and state, waiting builds by label and reason.
func TestDecideMetricsView(t *testing.T) {
	w := newTestWorld().agent("maven-a", "maven", time.Minute, online).agent("maven-b", "maven", time.Minute, marked(reasonBusy)).
		build(1, "maven", time.Second).build(2, "maven", time.Second).build(3, "gpu", time.Second).build(4, "", time.Second)
	d := Decide(w.snap, NewMemory(), testDecideConfig, t0)
	wantAgents := map[AgentKey]int{{"maven", Idle}: 1, {"maven", Done}: 1}
	if diff := cmp.Diff(wantAgents, d.Agents); diff != "" {
		t.Errorf("agents (-want +got):\n%s", diff)
	}
	wantWaiting := map[WaitKey]int{{"maven", WaitStarting}: 2, {"gpu", WaitNoTemplate}: 1, {"(none)", WaitStarting}: 1}
	if diff := cmp.Diff(wantWaiting, d.Waiting); diff != "" {
		t.Errorf("waiting (-want +got):\n%s", diff)
	}
}

func TestTruncateLabel(t *testing.T) {
	long := ""
	for range 30 {
		long += "äbc "
	}
	got := truncateLabel(long)
	if n := len([]rune(got)); n != maxLabelValue {
		t.Errorf("truncated to %d runes, want %d", n, maxLabelValue)
	}
	if truncateLabel("maven") != "maven" {
		t.Error("a short label was changed")
	}
}
