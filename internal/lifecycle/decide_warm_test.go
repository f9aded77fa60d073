package lifecycle

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins"
	"github.com/jenkins-agent-provisioner/provisioner/internal/warm"
)

// warmWorld is the test world with maven keeping spec's ready agents.
func warmWorld(spec *warm.Spec) *testWorld {
	w := newTestWorld()
	set := testTemplates()
	for i, t := range set.Templates {
		if t.Name == "maven" {
			c := *t
			c.Warm = spec
			set.Templates[i] = &c
		}
	}
	w.snap.Templates = set
	return w
}

// readyFor marks a connected agent ready since t0-age.
func readyFor(age time.Duration) func(*jenkins.Computer) {
	return func(c *jenkins.Computer) {
		marked(readyMark(t0.Add(-age)))(c)
		c.Connected = true
	}
}

func crashed(p *corev1.Pod) {
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "jnlp", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}}}}
}

func connectedIdle(c *jenkins.Computer) { online(c); c.Connected = true }

func TestDecideWarm(t *testing.T) {
	idle2 := &warm.Spec{Idle: 2, MaxIdle: 3, MaxIdleTime: 30 * time.Minute}
	surplusLong := func(m *Memory) { m.SurplusSince["maven"] = t0.Add(-time.Minute) }
	cases := []decideCase{
		{
			name:  "idle 2 and nothing there: two agents made as headroom",
			world: warmWorld(idle2),
			want:  []string{"Create maven", "Create maven"},
		},
		{
			name:  "idle 2 held by two ready agents: nothing to do",
			world: warmWorld(idle2).agent("maven-a", "maven", time.Minute, readyFor(time.Minute)).agent("maven-b", "maven", time.Minute, readyFor(time.Minute)),
			want:  []string{},
		},
		{
			name:  "a headroom agent that connected is marked ready; a starting one counts as headroom",
			world: warmWorld(idle2).agent("maven-a", "maven", time.Minute, connectedIdle).agent("maven-b", "maven", 5*time.Second),
			want:  []string{"MarkReady maven-a"},
		},
		{
			name: "a build waits: exactly one ready agent (the oldest) comes online, and a fresh one replaces it",
			world: warmWorld(idle2).agent("maven-a", "maven", time.Minute, readyFor(time.Minute)).agent("maven-b", "maven", 2*time.Minute, readyFor(2*time.Minute)).
				build(1, "maven", time.Second),
			want: []string{"Unready maven-b", "Create maven"},
		},
		{
			name: "a build a connected idle agent will take brings no ready agent online",
			world: warmWorld(idle2).agent("maven-a", "maven", time.Minute, readyFor(time.Minute)).agent("maven-b", "maven", time.Minute, connectedIdle).
				build(1, "maven", time.Second),
			want: []string{"Create maven"},
		},
		{
			name:  "a ready agent that waited maxIdleTime is released and replaced",
			world: warmWorld(idle2).agent("maven-a", "maven", 31*time.Minute, readyFor(30*time.Minute)).agent("maven-b", "maven", time.Minute, readyFor(time.Minute)),
			want:  []string{"Release maven-a Released", "Create maven"},
		},
		{
			name: "a build that landed as the ready mark did is marked busy",
			world: warmWorld(idle2).agent("maven-a", "maven", time.Minute, readyFor(time.Second), building).
				agent("maven-b", "maven", time.Minute, readyFor(time.Minute)),
			want: []string{"MarkBusy maven-a build=http://j/job/a/1/", "Create maven"},
		},
		{
			name:  "a ready agent whose container crashed fails and backs the template off: no replacement yet",
			world: warmWorld(idle2).pod("maven-a", "maven", time.Minute, crashed).node("maven-a", "maven", time.Minute, readyFor(time.Minute)),
			want:  []string{"Fail maven-a Crash"},
		},
		{
			name:  "a headroom agent that misses connectTimeout fails like any agent and backs the template off",
			world: warmWorld(idle2).agent("maven-a", "maven", 6*time.Minute).agent("maven-b", "maven", time.Minute, readyFor(time.Minute)),
			want:  []string{"Fail maven-a ConnectTimeout"},
		},
		{
			name:  "a ready agent that lost its connection is kept for it to reconnect, not failed (no backoff)",
			world: warmWorld(idle2).agent("maven-a", "maven", time.Minute, readyFor(time.Minute), func(c *jenkins.Computer) { c.Connected = false }),
			want:  []string{"Create maven", "Create maven"}, // it is live but not ready: fresh ones keep idle 2
		},
		{
			name:  "headroom above what is wanted is released after the grace (ready first by age: the youngest)",
			world: warmWorld(&warm.Spec{Idle: 1, MaxIdle: 3, MaxIdleTime: 30 * time.Minute}).agent("maven-a", "maven", 2*time.Minute, readyFor(time.Minute)).agent("maven-b", "maven", time.Minute, readyFor(time.Minute)),
			mem:   surplusLong,
			want:  []string{"Release maven-b"},
		},
		{
			name: "the template cap bounds headroom",
			world: warmWorld(&warm.Spec{Idle: 5, MaxIdle: 5, MaxIdleTime: 30 * time.Minute}).
				agent("maven-a", "maven", time.Minute, building, marked(busyMark("http://j/job/a/1/"))),
			want: []string{"Create maven", "Create maven"}, // maxAgents 3, one busy
		},
		{
			name: "demand first: another template's build that the global cap would refuse takes a ready agent's place",
			world: warmWorld(idle2).agent("maven-a", "maven", time.Minute, readyFor(time.Minute)).agent("maven-b", "maven", 2*time.Minute, readyFor(2*time.Minute)).
				build(1, "docker", time.Second),
			cfg:  func(c *DecideConfig) { c.MaxAgents = 2 },
			mem:  surplusLong,
			want: []string{"Release maven-a"},
		},
		{
			name:  "the global cap leaves room: headroom is shared one agent at a time",
			world: warmWorld(idle2).build(1, "docker", time.Second),
			cfg:   func(c *DecideConfig) { c.MaxAgents = 2 },
			want:  []string{"Create maven", "Create docker queued-1s"},
		},
		{
			name:  "without warm an idle agent is never marked ready",
			world: newTestWorld().agent("maven-a", "maven", time.Minute, connectedIdle),
			want:  []string{},
		},
		{
			name: "a ready agent of a template no longer warm is surplus",
			world: func() *testWorld {
				return newTestWorld().agent("maven-a", "maven", time.Minute, readyFor(time.Minute))
			}(),
			mem:  surplusLong,
			want: []string{"Release maven-a"},
		},
	}
	runDecideCases(t, testDecideConfig, cases)
}

// Ready agents are not exposed: with twenty of them the busy watch stays off.
func TestDecideReadyAgentsAreNotExposed(t *testing.T) {
	w := warmWorld(&warm.Spec{Idle: 20, MaxIdle: 20, MaxIdleTime: 30 * time.Minute})
	w.snap.Templates.Templates[0].MaxAgents = 20
	for i := range 20 {
		w.agent("maven-"+string(rune('a'+i)), "maven", time.Minute, readyFor(time.Minute))
	}
	d := Decide(w.snap, NewMemory(), testDecideConfig, t0)
	if got, want := d.Exposed, 0; got != want {
		t.Errorf("exposed = %d, want %d", got, want)
	}
	if got, want := d.Agents[AgentKey{"maven", Ready}], 20; got != want {
		t.Errorf("ready agents = %d, want %d", got, want)
	}
	if got, want := actions(d), []string{}; !cmp.Equal(got, want) {
		t.Errorf("actions = %v, want none", got)
	}
}

// The desired count and its source per warm template, and the Event a ready agent's build gets.
func TestDecideWarmStatusAndReadyFor(t *testing.T) {
	sched, err := warm.ParseSchedule("0 11 * * *", "UTC", 2*time.Hour, 3)
	if err != nil {
		t.Fatal(err)
	}
	w := warmWorld(&warm.Spec{Idle: 1, MaxIdle: 3, MaxIdleTime: 30 * time.Minute, Schedules: []warm.Schedule{sched}}).
		agent("maven-a", "maven", 4*time.Minute, building)
	mem := NewMemory()
	mem.Seen["ready/maven-a"] = t0.Add(-3*time.Minute - 12*time.Second)
	d := Decide(w.snap, mem, testDecideConfig, t0)
	if got, want := d.Warm, []WarmStatus{{Template: "maven", Desired: 3, Source: warm.SourceSchedule}}; !cmp.Equal(got, want, cmp.AllowUnexported(warm.Estimate{})) {
		t.Errorf("warm = %+v, want %+v", got, want)
	}
	var readyFor time.Duration
	for _, n := range d.Notices {
		if n.Kind == NoticeBuildStarted {
			readyFor = n.ReadyFor
		}
	}
	if got, want := readyFor, 3*time.Minute+12*time.Second; got != want {
		t.Errorf("ready for = %s, want %s", got, want)
	}
}

// The adaptive estimate learns from arrivals and start-ups across polls, and keeps ready agents.
func TestDecideAdaptiveLearns(t *testing.T) {
	spec := &warm.Spec{MaxIdle: 10, MaxIdleTime: 30 * time.Minute, Adaptive: true}
	mem := NewMemory()
	now := t0
	// A start-up of 8 s is measured, then one build a second arrives for a minute.
	w := warmWorld(spec).agent("maven-z", "maven", 8*time.Second, connectedIdle)
	mem = Decide(w.snap, mem, testDecideConfig, now).Memory
	for i := range 60 {
		now = t0.Add(time.Duration(i+1) * time.Second)
		w := warmWorld(spec).build(int64(i), "maven", 0)
		w.snap.At = now
		mem = Decide(w.snap, mem, testDecideConfig, now).Memory
	}
	w = warmWorld(spec)
	w.snap.At = now
	d := Decide(w.snap, mem, testDecideConfig, now)
	if len(d.Warm) != 1 || d.Warm[0].Source != warm.SourceAdaptive || d.Warm[0].Desired < 8 {
		t.Errorf("warm = %+v, want an adaptive count of at least rate 1/s × 8 s", d.Warm)
	}
	// Long after the arrivals stopped, the estimate is zero.
	later := now.Add(warm.Window + time.Minute)
	w.snap.At = later
	d = Decide(w.snap, mem, testDecideConfig, later)
	if len(d.Warm) != 1 || d.Warm[0].Desired != 0 {
		t.Errorf("warm after silence = %+v, want 0", d.Warm)
	}
}

// Builds that Jenkins hands to an idle agent between two polls are never seen queued; they are
// arrivals all the same. A build seen queued and then running counts once, and the running builds
// the first decision after a start finds arrived before it.
func TestDecideAdaptiveCountsBuildsNeverSeenQueued(t *testing.T) {
	spec := &warm.Spec{MaxIdle: 20, MaxIdleTime: 30 * time.Minute, Adaptive: true}
	runningOn := func(url string) func(*jenkins.Computer) {
		return func(c *jenkins.Computer) {
			building(c)
			c.Executors[0].Build.URL = url
		}
	}
	rateAfter := func(t *testing.T, polls func(i int) *testWorld) float64 {
		t.Helper()
		mem := NewMemory()
		var d Decision
		for i := range 60 {
			now := t0.Add(time.Duration(i) * time.Second)
			w := polls(i)
			w.snap.At = now
			d = Decide(w.snap, mem, testDecideConfig, now)
			mem = d.Memory
		}
		if len(d.Warm) != 1 {
			t.Fatalf("warm = %+v, want the maven template", d.Warm)
		}
		return d.Warm[0].Estimate.Rate
	}
	job := func(i int) string { return fmt.Sprintf("http://j/job/j%02d/", i) }
	tests := []struct {
		name  string
		polls func(i int) *testWorld
		want  float64 // builds per second
	}{
		{"every build seen only running", func(i int) *testWorld {
			return warmWorld(spec).agent(fmt.Sprintf("maven-%02d", i), "maven", 10*time.Second, runningOn(job(i)+"1/"))
		}, 59.0 / 60}, // the first poll's running build arrived before the provisioner looked
		{"every build seen queued, then running: counted once", func(i int) *testWorld {
			w := warmWorld(spec).demand(jenkins.Demand{QueueID: int64(i + 1), Label: "maven", Kind: jenkins.KindFreestyle, TaskURL: job(i), InQueueSince: t0})
			if i > 0 {
				w.agent(fmt.Sprintf("maven-%02d", i-1), "maven", 10*time.Second, runningOn(job(i-1)+"1/"))
			}
			return w
		}, 1},
		{"a pipeline's node block seen queued, then running on its run's URL: counted once", func(i int) *testWorld {
			run := job(i) + "7/"
			w := warmWorld(spec).demand(jenkins.Demand{QueueID: int64(i + 1), Label: "maven", Kind: jenkins.KindPipeline, TaskURL: run, InQueueSince: t0})
			if i > 0 {
				w.agent(fmt.Sprintf("maven-%02d", i-1), "maven", 10*time.Second, runningOn(job(i-1)+"7/"))
			}
			return w
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The estimator takes the rate over at least a minute, so 60 arrivals in 60 s are 1/s.
			if got := rateAfter(t, tt.polls); math.Abs(got-tt.want) > 0.02 {
				t.Errorf("arrival rate = %.3f/s, want %.3f/s", got, tt.want)
			}
		})
	}
}
