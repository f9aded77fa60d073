package lifecycle

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins"
)

// The rules for what builds survive: a Jenkins restart (marked agents disconnected, node blocks
// queued again bound to their node), a dropped connection, Jenkins down, a pod killed mid-build.
func TestDecideRestartsAndLosses(t *testing.T) {
	const run = "http://j/job/web/1/"
	markedRun := marked(busyMark(run))
	// resumedBlock is the item Jenkins queues on start-up for a node block that ran on node.
	resumedBlock := func(node string) jenkins.Demand {
		return jenkins.Demand{QueueID: 9, Node: node, TaskURL: run, TaskName: "part of web #1", Kind: jenkins.KindPipeline, InQueueSince: t0.Add(-time.Second)}
	}
	wasOnline := func(m *Memory) {
		m.Seen["online/nodejs-a"], m.Seen["busy/nodejs-a"] = t0.Add(-time.Minute), t0.Add(-time.Minute)
	}
	deleting := func(p *corev1.Pod) { ts := metav1.NewTime(t0); p.DeletionTimestamp = &ts }
	tests := []decideCase{
		{
			name:    "a marked agent that lost its connection is kept, pod and node",
			world:   newTestWorld().agent("nodejs-a", "maven", time.Minute, markedRun, disconnected),
			mem:     wasOnline,
			want:    []string{},
			notices: []string{"AgentSuspended nodejs-a backoff=5m0s"},
			check: func(t *testing.T, d Decision) {
				if got := d.Agents[AgentKey{"maven", Suspended}]; got != 1 {
					t.Errorf("suspended agents = %d, want 1", got)
				}
			},
		},
		{
			name:  "a suspended agent past the reconnect grace goes, saying why",
			world: newTestWorld().agent("nodejs-a", "maven", time.Minute, markedRun, disconnected),
			mem: func(m *Memory) {
				wasOnline(m)
				m.Seen["suspended/nodejs-a"] = t0.Add(-6 * time.Minute)
			},
			want: []string{"Finish nodejs-a build=" + run},
			check: func(t *testing.T, d Decision) {
				if a := d.Actions[0]; a.State != Suspended || a.Reason.Kind != KindReconnectTimeout {
					t.Errorf("finish %s with %q, want a suspended agent's ReconnectTimeout", a.State, a.Reason.Kind)
				}
			},
		},
		{
			name:  "a node block bound to a marked, connected agent gets exactly that agent back, and no new one is made",
			world: newTestWorld().agent("nodejs-a", "maven", time.Minute, markedRun).demand(resumedBlock("nodejs-a")),
			mem:   wasOnline,
			want:  []string{"Resume nodejs-a build=" + run},
			waits: []string{"node:nodejs-a→: 1 Resuming (bound to agent nodejs-a)"},
		},
		{
			name:  "while a build its template serves waits, the mark stays: that build gets an agent of its own first",
			world: newTestWorld().agent("nodejs-a", "maven", time.Minute, markedRun).demand(resumedBlock("nodejs-a")).build(1, "maven", time.Second),
			mem:   wasOnline,
			want:  []string{"Create maven queued-1s"},
		},
		{
			name: "another build naming the agent (its label has no other node) is no resumed block, even after one was",
			world: newTestWorld().agent("nodejs-a", "maven", time.Minute, markedRun).demand(resumedBlock("nodejs-a")).
				demand(jenkins.Demand{QueueID: 3, Node: "nodejs-a", TaskURL: "http://j/job/other/1/", Kind: jenkins.KindPipeline, InQueueSince: t0.Add(-time.Second)}),
			mem:  func(m *Memory) { wasOnline(m); m.Seen["resumed/nodejs-a"] = t0 },
			want: []string{"Create maven queued-1s"},
		},
		{
			name:    "a node block bound to a disconnected agent waits for it to reconnect",
			world:   newTestWorld().agent("nodejs-a", "maven", time.Minute, markedRun, disconnected).demand(resumedBlock("nodejs-a")),
			mem:     wasOnline,
			want:    []string{},
			waits:   []string{"node:nodejs-a→: 1 Resuming (bound to agent nodejs-a)"},
			notices: []string{"AgentSuspended nodejs-a backoff=5m0s"},
		},
		{
			name:    "brought online for its block, the agent waits for it with the busy watch armed",
			world:   newTestWorld().agent("nodejs-a", "maven", time.Minute, online).demand(resumedBlock("nodejs-a")),
			mem:     func(m *Memory) { wasOnline(m); m.Seen["resumed/nodejs-a"] = t0 },
			want:    []string{},
			exposed: exposing(1),
		},
		{
			name:  "its block started: marked again at once",
			world: newTestWorld().agent("nodejs-a", "maven", time.Minute, building),
			mem:   func(m *Memory) { wasOnline(m); m.Seen["resumed/nodejs-a"] = t0 },
			want:  []string{"MarkBusy nodejs-a build=http://j/job/a/1/"},
		},
		{
			name:  "its block over (or given up), an agent brought online for it is done, not idle",
			world: newTestWorld().agent("nodejs-a", "maven", time.Minute, online).build(1, "maven", time.Second),
			mem:   func(m *Memory) { wasOnline(m); m.Seen["resumed/nodejs-a"] = t0 },
			want:  []string{"Finish nodejs-a", "Create maven queued-1s"},
		},
		{
			name: "an item whose label only a marked agent carries is not its resumed block: that agent is done, a new one made",
			world: newTestWorld().agent("nodejs-a", "maven", time.Minute, markedRun).
				demand(jenkins.Demand{QueueID: 2, Node: "nodejs-a", TaskURL: "http://j/job/other/1/", Kind: jenkins.KindPipeline, InQueueSince: t0.Add(-time.Second)}),
			mem:  wasOnline,
			want: []string{"Finish nodejs-a", "Create maven queued-1s"},
		},
		{
			name:  "moments after Jenkins came back a reconnected marked agent is held: its block may not be queued yet",
			world: newTestWorld().agent("nodejs-a", "maven", time.Minute, markedRun),
			mem:   func(m *Memory) { wasOnline(m); m.JenkinsBack = t0.Add(-5 * time.Second) },
			want:  []string{},
		},
		{
			name:  "once Jenkins has settled a reconnected marked agent without a block is done",
			world: newTestWorld().agent("nodejs-a", "maven", time.Minute, markedRun),
			mem:   func(m *Memory) { wasOnline(m); m.JenkinsBack = t0.Add(-time.Minute) },
			want:  []string{"Finish nodejs-a"},
		},
		{
			name:    "an unmarked agent that was online and lost its connection is not a connect timeout",
			world:   newTestWorld().agent("nodejs-a", "maven", 10*time.Minute, disconnected),
			mem:     func(m *Memory) { m.Seen["online/nodejs-a"] = t0.Add(-9 * time.Minute) },
			want:    []string{},
			notices: []string{"AgentSuspended nodejs-a backoff=5m0s"},
			exposed: exposing(1),
			check: func(t *testing.T, d Decision) {
				if len(d.Memory.Backoff) != 0 || len(d.Memory.Failures) != 0 {
					t.Errorf("backoff %+v, failures %+v: want none", d.Memory.Backoff, d.Memory.Failures)
				}
			},
		},
		{
			name:    "the first view after an outage does not count the outage against a starting agent",
			world:   newTestWorld().agent("nodejs-a", "maven", 6*time.Minute),
			mem:     func(m *Memory) { m.JenkinsDownSince = t0.Add(-4 * time.Minute) },
			want:    []string{},
			exposed: exposing(1), // it may connect any moment
			check: func(t *testing.T, d Decision) {
				if !d.Memory.JenkinsDownSince.IsZero() || !d.Memory.JenkinsBack.Equal(t0) {
					t.Errorf("memory down since %v, back %v; want back at the view's time", d.Memory.JenkinsDownSince, d.Memory.JenkinsBack)
				}
			},
		},
		{
			name:  "a failed read or two is no outage: nothing is judged from it",
			world: newTestWorld().agent("nodejs-a", "maven", time.Minute, markedRun),
			mem:   func(m *Memory) { wasOnline(m); m.JenkinsDownSince = t0.Add(-3 * time.Second) },
			want:  []string{"Finish nodejs-a"},
			check: func(t *testing.T, d Decision) {
				if !d.Memory.JenkinsBack.IsZero() || !d.Memory.JenkinsDownSince.IsZero() {
					t.Errorf("memory back %v, down since %v; want neither", d.Memory.JenkinsBack, d.Memory.JenkinsDownSince)
				}
			},
		},
		{
			name:  "a short outage in which Jenkins showed its start-up page is a restart",
			world: newTestWorld().agent("nodejs-a", "maven", time.Minute, markedRun),
			mem: func(m *Memory) {
				wasOnline(m)
				m.JenkinsDownSince, m.JenkinsRestarting = t0.Add(-3*time.Second), true
			},
			want: []string{},
		},
		{
			name:    "a pod deleted by someone else under its build: node and pod go at once",
			world:   newTestWorld().pod("nodejs-a", "maven", time.Minute, deleting).node("nodejs-a", "maven", time.Minute, markedRun),
			want:    []string{"Lose nodejs-a build=" + run + " DeletedExternally"},
			notices: []string{"AgentLost nodejs-a"},
		},
		{
			name: "a pod evicted through the Eviction API (a drain) under its build",
			world: newTestWorld().pod("nodejs-a", "maven", time.Minute, deleting, func(p *corev1.Pod) {
				p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
					Reason: "EvictionByEvictionAPI", Message: "Eviction API: evicting"})
			}).node("nodejs-a", "maven", time.Minute, building, markedRun),
			want: []string{"Lose nodejs-a build=http://j/job/a/1/ Evicted"},
		},
		{
			name: "an agent OOM-killed under its build",
			world: newTestWorld().pod("nodejs-a", "maven", time.Minute, func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodFailed
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "jnlp", State: corev1.ContainerState{
					Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled"}}}}
			}).node("nodejs-a", "maven", time.Minute, building, markedRun),
			want: []string{"Lose nodejs-a build=http://j/job/a/1/ OOMKilled"},
		},
		{
			name: "a pod already gone: its final state says it was evicted",
			world: func() *testWorld {
				w := newTestWorld().node("nodejs-a", "maven", time.Minute, building, markedRun)
				w.snap.Gone = map[string]Reason{"nodejs-a": {KindEvicted, "Evicted (EvictionByEvictionAPI)"}}
				return w
			}(),
			want: []string{"Lose nodejs-a build=http://j/job/a/1/ Evicted"},
		},
		{
			// The cache may not show a pod whose watch an apiserver outage broke: without a deletion
			// seen, the orphan grace applies and the build keeps running (found by TestChaosSmoke's
			// apiserver restart: three builds were aborted 0.9 s after they started).
			name:  "a busy node whose pod the cache does not show, no deletion seen: not lost, the orphan grace applies",
			world: newTestWorld().node("nodejs-a", "maven", time.Minute, building, markedRun),
			want:  []string{},
		},
		{
			name:  "the same past the orphan grace goes as an orphan",
			world: newTestWorld().node("nodejs-a", "maven", time.Hour, building, markedRun),
			want:  []string{"RemoveOrphan nodejs-a NodeWithoutPod"},
		},
		{
			name:  "a starting agent's pod deleted is not a loss: only its node goes",
			world: newTestWorld().pod("nodejs-a", "maven", time.Minute, deleting).node("nodejs-a", "maven", time.Minute),
			want:  []string{"DeleteNode nodejs-a"},
		},
	}
	for i := range tests {
		if tests[i].exposed == nil {
			tests[i].exposed = exposing(0) // every row here says how many agents the busy watch watches
		}
	}
	cfg := testDecideConfig
	cfg.ReconnectGrace, cfg.ResumeSettle = 5*time.Minute, 30*time.Second
	runDecideCases(t, cfg, tests)
}
