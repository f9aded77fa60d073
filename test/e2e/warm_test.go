package e2e

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins/jenkinstest"
	"github.com/jenkins-agent-provisioner/provisioner/internal/lifecycle"
	"github.com/jenkins-agent-provisioner/provisioner/internal/nodesim"
	"github.com/jenkins-agent-provisioner/provisioner/internal/waitfor"
	"github.com/jenkins-agent-provisioner/provisioner/internal/warm"
)

// Ready agents (issue 13) on the real apiserver, the Jenkins emulator and the node simulator.

// readyMarkPrefix is how the provisioner's ready mark reads in Jenkins.
const readyMarkPrefix = "jenkins-agent-provisioner: ready since "

// readyAgents are the agent nodes of a template that carry the ready mark and are connected.
func readyAgents(j *jenkinstest.Server, template string) []string {
	var out []string
	for _, n := range j.Nodes() {
		if strings.HasPrefix(n.Description, "[jenkins-agent-provisioner] template="+template+" ") &&
			n.TemporarilyOffline && n.Connected && strings.HasPrefix(n.OfflineReason, readyMarkPrefix) {
			out = append(out, n.Name)
		}
	}
	sort.Strings(out)
	return out
}

// onePodPerBuild checks that every build ran on an agent pod the provisioner made, one build per pod.
func onePodPerBuild(t *testing.T, r *rig, builds []jenkinstest.BuildRecord) {
	t.Helper()
	pods := r.pods.createdNames()
	byNode := map[string][]string{}
	for _, b := range builds {
		id := fmt.Sprintf("%s #%d", b.Job, b.Number)
		if _, ok := pods[b.Node]; !ok {
			t.Errorf("%s ran on %q, not an agent pod of ours", id, b.Node)
		}
		byNode[b.Node] = append(byNode[b.Node], id)
	}
	for node, ids := range byNode {
		if len(ids) > 1 {
			t.Errorf("agent %s ran %d builds %v, want exactly one", node, len(ids), ids)
		}
	}
}

// idleTwoRig runs a rig whose one template, maven (maxAgents 6), keeps `idle: 2`, and returns it
// once its two ready agents are there, with their names.
func idleTwoRig(t *testing.T) (*rig, []string) {
	t.Helper()
	r := newRig(t, rigOptions{templates: `templates:
  - name: maven
    labels: [maven]
    maxAgents: 6
    warm: {idle: 2}
`})
	var ready []string
	eventually(t, time.Minute, func() (bool, string) {
		ready = readyAgents(r.jenkins, "maven")
		return len(ready) == 2, fmt.Sprintf("ready agents %v; pods %s", ready, r.pods.summary())
	})
	return r, ready
}

// `idle: 2` holds two ready agents; each takes exactly one build and is replaced by a fresh one.
func TestIdleTwoHoldsTwoReadyAgentsThatEachTakeOneBuild(t *testing.T) {
	r, first := idleTwoRig(t)
	// Still two a few polls later: no more are made.
	waitfor.Duration(r.ctx, time.Second)
	if got := r.pods.createdFor("maven"); got != 2 {
		t.Fatalf("%d maven pods made while two ready agents wait, want 2", got)
	}

	r.jenkins.CreateFreestyleJob("compile-a", "maven", 2*time.Second)
	r.jenkins.CreateFreestyleJob("compile-b", "maven", 2*time.Second)
	r.queue(2, "compile-a", "compile-b")
	builds := r.waitBuilds(2, time.Minute)
	onePodPerBuild(t, r, builds)
	ran := map[string]bool{}
	for _, b := range builds {
		ran[b.Node] = true
	}
	for _, name := range first {
		if !ran[name] {
			t.Errorf("ready agent %s took no build; builds ran on %v", name, ran)
		}
	}

	// Two fresh ready agents replace them, and the used ones are gone.
	eventually(t, time.Minute, func() (bool, string) {
		now := readyAgents(r.jenkins, "maven")
		fresh := 0
		for _, n := range now {
			if !ran[n] {
				fresh++
			}
		}
		stillLive := r.pods.liveCount()
		return len(now) == 2 && fresh == 2 && stillLive == 2, fmt.Sprintf("ready %v; pods %s", now, r.pods.summary())
	})
	if got := len(events(t, r.ns, "ReadyAgentTookBuild")); got != 2 {
		t.Errorf("%d ReadyAgentTookBuild events, want 2", got)
	}
}

// A schedule whose window contains the real now keeps its idle count ready; one whose window
// starts later keeps none. The cron fields are picked from the clock so no test sleeps for hours.
func TestScheduleActiveNowVersusNotActive(t *testing.T) {
	now := time.Now().UTC()
	startedMinute := (now.Minute() + 59) % 60 // started a minute ago, runs 30 min
	laterMinute := (now.Minute() + 10) % 60   // starts in 10 min, runs 2 min
	r := newRig(t, rigOptions{templates: fmt.Sprintf(`templates:
  - name: office
    labels: [office]
    maxAgents: 6
    warm:
      schedules:
        - {cron: "%d * * * *", duration: 30m, idle: 2}
  - name: night
    labels: [night]
    maxAgents: 6
    warm:
      schedules:
        - {cron: "%d * * * *", timezone: Europe/Berlin, duration: 2m, idle: 3}
`, startedMinute, laterMinute)})
	eventually(t, time.Minute, func() (bool, string) {
		got := readyAgents(r.jenkins, "office")
		return len(got) == 2, fmt.Sprintf("office ready %v; pods %s", got, r.pods.summary())
	})
	waitfor.Duration(r.ctx, time.Second) // a few more polls
	if got := r.pods.createdFor("night"); got != 0 {
		t.Errorf("%d night agents made while its schedule is not active, want 0", got)
	}
	if got := r.pods.createdFor("office"); got != 2 {
		t.Errorf("%d office agents made, want 2", got)
	}
}

// adaptive: true keeps ready agents while builds arrive, sized from measured demand, and none once
// the arrivals stop: the controller's clock is moved one estimate window on, so no test waits ten
// minutes.
func TestAdaptiveSizingRisesUnderLoadAndFallsToZero(t *testing.T) {
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	r := newRig(t, rigOptions{
		templates: `templates:
  - name: maven
    labels: [maven]
    maxAgents: 20
    warm: {adaptive: true, maxIdle: 10}
`,
		startUp: nodesim.StartUp{Schedule: 200 * time.Millisecond, Start: 300 * time.Millisecond, Connect: 500 * time.Millisecond},
		config:  func(c *lifecycle.Config) { c.Clock = clock },
	})
	const builds = 40
	for i := range builds {
		r.jenkins.CreateFreestyleJob(fmt.Sprintf("compile-%02d", i), "maven", time.Second)
	}
	// Two builds a second for 20 s, and the most ready agents seen meanwhile.
	var mu sync.Mutex
	maxReady := 0
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			n := len(readyAgents(r.jenkins, "maven"))
			mu.Lock()
			maxReady = max(maxReady, n)
			mu.Unlock()
		}
	}()
	for i := range builds {
		r.queue(1, fmt.Sprintf("compile-%02d", i))
		waitfor.Duration(r.ctx, 500*time.Millisecond)
	}
	done2 := r.waitBuilds(builds, 2*time.Minute)
	close(stop)
	<-done
	onePodPerBuild(t, r, done2)
	mu.Lock()
	peak := maxReady
	mu.Unlock()
	if peak < 1 {
		t.Errorf("no ready agent was kept under 2 builds/s; pods %s", r.pods.summary())
	}
	t.Logf("most ready agents at once under load: %d", peak)

	// One window after the last arrival the estimate is zero, and the ready agents go.
	offset.Store(int64(warm.Window + time.Minute))
	eventually(t, time.Minute, func() (bool, string) {
		got := readyAgents(r.jenkins, "maven")
		return len(got) == 0 && r.pods.liveCount() == 0, fmt.Sprintf("ready %v; pods %s", got, r.pods.summary())
	})
}

// Under a burst on another template, the global cap holds and waiting builds come before headroom:
// ready agents give up their capacity, every build runs on its own pod, and the headroom comes back.
func TestCapsAndDemandFirstUnderABurst(t *testing.T) {
	r := newRig(t, rigOptions{maxAgents: 4, templates: `templates:
  - name: maven
    labels: [maven]
    maxAgents: 6
    warm: {idle: 3, maxIdle: 3}
  - name: docker
    labels: [docker]
    maxAgents: 10
`})
	eventually(t, time.Minute, func() (bool, string) {
		got := readyAgents(r.jenkins, "maven")
		return len(got) == 3, fmt.Sprintf("ready %v; pods %s", got, r.pods.summary())
	})
	var jobs []string
	for i := range 8 {
		jobs = append(jobs, fmt.Sprintf("image-%02d", i))
		r.jenkins.CreateFreestyleJob(jobs[i], "docker", 2*time.Second)
	}
	r.queue(len(jobs), jobs...)
	builds := r.waitBuilds(len(jobs), 3*time.Minute)
	onePodPerBuild(t, r, builds)
	if got := r.pods.maxTotal; got > 4 {
		t.Errorf("%d agent pods alive at once, want at most MAX_AGENTS 4", got)
	}
	if got := r.pods.maxTemplate["maven"]; got > 3 {
		t.Errorf("%d maven pods alive at once, want at most maxIdle 3", got)
	}
	if got := r.pods.createdFor("docker"); got != len(jobs) {
		t.Errorf("%d docker agents made for %d builds", got, len(jobs))
	}
	// The headroom comes back once the burst is over.
	eventually(t, time.Minute, func() (bool, string) {
		got := readyAgents(r.jenkins, "maven")
		return len(got) == 3, fmt.Sprintf("ready %v; pods %s", got, r.pods.summary())
	})
}

// Twenty ready agents idle cost Jenkins what no agent costs: the ready mark keeps every one of them
// from taking a build unseen, so the busy watch stays off and only the regular poll reads Jenkins
// (queue and computer list, 2 requests a second at the default 1 s). The bound is 4.
func TestTwentyReadyAgentsCostOnlyThePoll(t *testing.T) {
	r := newRig(t, rigOptions{maxAgents: 20, templates: `templates:
  - name: maven
    labels: [maven]
    maxAgents: 20
    warm: {idle: 20}
`, config: func(c *lifecycle.Config) { c.PollInterval, c.BusyPollInterval = time.Second, 250*time.Millisecond }})
	eventually(t, 2*time.Minute, func() (bool, string) {
		got := readyAgents(r.jenkins, "maven")
		return len(got) == 20, fmt.Sprintf("%d ready; pods %s", len(got), r.pods.summary())
	})
	waitfor.Duration(r.ctx, 2*time.Second) // the last marks' polls
	total := func() int64 {
		var n int64
		for _, e := range r.jenkins.Stats().Endpoints {
			n += e.Requests
		}
		return n
	}
	const window = 10 * time.Second
	before, start := total(), time.Now()
	waitfor.Duration(r.ctx, window)
	rate := float64(total()-before) / time.Since(start).Seconds()
	t.Logf("Jenkins requests per second with 20 ready agents idle: %.2f (endpoints %+v)", rate, r.jenkins.Stats().Endpoints)
	if rate > 4 {
		t.Errorf("%.2f Jenkins requests/s with 20 ready agents idle, want at most 4", rate)
	}
}

// A restarted controller recognises the ready agents from their Jenkins marks (no Memory): it
// makes no new ones, and one still takes a waiting build.
func TestReadyAgentsSurviveARestart(t *testing.T) {
	r, before := idleTwoRig(t)
	r.stopController()
	r.startController()
	waitfor.Duration(r.ctx, 2*time.Second) // several polls of the new controller
	if got := readyAgents(r.jenkins, "maven"); strings.Join(got, ",") != strings.Join(before, ",") {
		t.Errorf("ready agents after the restart %v, want the same %v", got, before)
	}
	if got := r.pods.createdFor("maven"); got != 2 {
		t.Errorf("%d maven pods made across the restart, want 2", got)
	}
	r.jenkins.CreateFreestyleJob("compile-a", "maven", time.Second)
	r.queue(1, "compile-a")
	builds := r.waitBuilds(1, time.Minute)
	onePodPerBuild(t, r, builds)
	if b := builds[0]; b.Node != before[0] && b.Node != before[1] {
		t.Errorf("the build ran on %s, want one of the ready agents %v", b.Node, before)
	}
}
