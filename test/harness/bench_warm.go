package harness

import (
	"context"
	"encoding/csv"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins/jenkinstest"
	"github.com/jenkins-agent-provisioner/provisioner/internal/nodesim"
	"github.com/jenkins-agent-provisioner/provisioner/internal/waitfor"
)

// WarmScale sizes the ready-agent scenario (issue 13): Poisson arrivals on two templates, builds of
// BuildDuration, every pod starting in StartUp, once cold (no warm block) and once warm.
type WarmScale struct {
	Builds        int           `json:"builds"`
	Rate          float64       `json:"arrivalsPerSecond"` // over both templates
	BuildDuration time.Duration `json:"buildDuration"`
	StartUp       time.Duration `json:"startUp"`
	// Drain is how long the warm run waits after the last build for the ready agents to go.
	Drain time.Duration `json:"drain"`
	Warm  string        `json:"warm"` // the warm block of both templates in the warm run
}

// DefaultWarmScale is the issue's: builds of about 20 s, 8 s start-up, five minutes of arrivals
// at 1 build/s (four per start-up per template). A maxIdleTime of 2 minutes lets the drain show the
// ready agents going within it instead of waiting out the estimate's 10-minute window.
var DefaultWarmScale = WarmScale{Builds: 300, Rate: 1, BuildDuration: 20 * time.Second, StartUp: 8 * time.Second,
	Drain: 4 * time.Minute, Warm: "{adaptive: true, maxIdle: 20, maxIdleTime: 2m}"}

// SmokeWarmScale is what the smoke scale runs: seconds, not minutes (its drain is too short for the
// estimate to decay, which the report then says).
var SmokeWarmScale = WarmScale{Builds: 6, Rate: 2, BuildDuration: time.Second, StartUp: time.Second, Drain: 5 * time.Second,
	Warm: "{adaptive: true, maxIdle: 5}"}

// WarmRun is one side of the comparison.
type WarmRun struct {
	Warm            bool        `json:"warm"`
	Builds          int         `json:"builds"`
	QueuedToStarted Percentiles `json:"queuedToBuildStarted"`
	// QueuedToStartedSteady counts only the builds queued SteadyAfter or later after the first
	// arrival: by then a start-up has been measured and the rate is known, so it is the warm
	// figure; the first builds of new demand start cold unless idle or a schedule covers them.
	QueuedToStartedSteady Percentiles `json:"queuedToBuildStartedSteady"`
	// ReadyIdlePodSeconds is the time agents spent connected without a build (ready headroom, or a
	// cold agent between connecting and its build starting), summed over pods.
	ReadyIdlePodSeconds float64 `json:"readyIdlePodSeconds"`
	WastePerBuild       float64 `json:"wastePodSecondsPerBuild"`
	// WasteDuringArrivals counts only the idle time while builds arrived (the drain after the last
	// arrival, which the estimate's window sets, is left out), per build.
	WasteDuringArrivals float64 `json:"wastePodSecondsPerBuildDuringArrivals"`
	// WasteSteady is the idle time from SteadyAfter to the last arrival, per build queued then.
	WasteSteady float64 `json:"wastePodSecondsPerBuildSteady"`
	// LowerBound is Little's law: arrival rate × start-up time, per second of the arrivals, times
	// their span, per build: the idle ready pod-seconds no forecast can go below and still start
	// every build at once.
	LowerBoundPerBuild float64 `json:"lowerBoundPodSecondsPerBuild"`
	StartUpMedian      float64 `json:"startUpMedianSeconds"`
	ArrivalSeconds     float64 `json:"arrivalSeconds"`
	PodsMade           int     `json:"podsMade"`
	// ZeroAfterStop is how long after the last build ended the last ready agent went (-1: not
	// within Drain).
	ZeroAfterStop float64    `json:"readyZeroSecondsAfterLastBuild"`
	Invariants    Invariants `json:"invariants"`
}

// SteadyAfter is when, after the first arrival, the steady-state figures begin: the estimate's
// MinWindow, by which the rate is taken over a full minute and start-ups have been measured.
const SteadyAfter = time.Minute

// WarmFigures compare cold and warm.
type WarmFigures struct {
	Scale WarmScale `json:"scale"`
	Cold  WarmRun   `json:"cold"`
	Warm  WarmRun   `json:"warm"`
}

// BenchWarm runs the ready-agent comparison, cold first, then warm, with the same arrival seed.
func (p *Plane) BenchWarm(ctx context.Context, o BenchOptions, sc WarmScale) (WarmFigures, error) {
	f := WarmFigures{Scale: sc}
	var err error
	if f.Cold, err = p.warmRun(ctx, o, sc, false); err != nil {
		return f, fmt.Errorf("cold run: %w", err)
	}
	if f.Warm, err = p.warmRun(ctx, o, sc, true); err != nil {
		return f, fmt.Errorf("warm run: %w", err)
	}
	return f, nil
}

func (p *Plane) warmRun(ctx context.Context, o BenchOptions, sc WarmScale, warmOn bool) (WarmRun, error) {
	labels := []string{"alpha", "beta"}
	var ts []Template
	for _, l := range labels {
		t := Template{Name: l, Labels: []string{l}, MaxAgents: 200}
		if warmOn {
			t.Warm = sc.Warm
		}
		ts = append(ts, t)
	}
	// The start-up split as a cluster spends it: a quarter scheduling, half starting the
	// containers, a quarter the agent connecting.
	su := nodesim.StartUp{Schedule: sc.StartUp / 4, Start: sc.StartUp / 2, Connect: sc.StartUp / 4}
	name := "cold"
	if warmOn {
		name = "warm"
	}
	w, err := p.NewWorld(ctx, WorldOptions{Name: name, Templates: ts, MaxAgents: 400, Env: o.env(), StartUp: su})
	if err != nil {
		return WarmRun{}, err
	}
	defer w.Close()
	if _, err := w.StartReadyProvisioner(ctx); err != nil {
		return WarmRun{}, err
	}
	builds := w.NewJobs(sc.Builds, labels, sc.BuildDuration)
	// Shuffle the labels so the two templates' arrivals are independent Poisson streams.
	rng := rand.New(rand.NewPCG(o.Seed, 13))
	rng.Shuffle(len(builds), func(i, j int) { builds[i], builds[j] = builds[j], builds[i] })
	p.Log.Info("bench: ready agents", zap.String("run", name), zap.Int("builds", sc.Builds))
	begin := time.Now()
	if err := w.arrive(ctx, builds, sc.Rate, rng); err != nil {
		return WarmRun{}, err
	}
	arrivalSpan := time.Since(begin)
	if err := w.WaitBuilds(ctx, builds, waitFor(len(builds), sc.Rate)); err != nil {
		return WarmRun{}, err
	}
	lastEnd := time.Time{}
	for _, b := range w.Jenkins.Builds() {
		if b.Finished.After(lastEnd) {
			lastEnd = b.Finished
		}
	}
	run := WarmRun{Warm: warmOn, Builds: len(builds), ArrivalSeconds: round4(arrivalSpan.Seconds()), ZeroAfterStop: -1}
	// The ready agents go once the estimate decays: one window after the last arrival, or the
	// warm block's maxIdleTime if that is shorter.
	drain := time.Minute
	if warmOn {
		drain = sc.Drain
	}
	deadline := time.Now().Add(drain)
	for w.Pods.Live() > 0 && time.Now().Before(deadline) {
		if !waitfor.Duration(ctx, time.Second) {
			return run, ctx.Err()
		}
	}
	if w.Pods.Live() == 0 {
		run.ZeroAfterStop = round4(time.Since(lastEnd).Seconds())
	}
	run.Invariants = w.Check(ctx, builds, time.Minute)

	online := w.AgentOnline()
	started := map[string]time.Time{}
	var toStart, steadyToStart, startUps []time.Duration
	steadyFrom := begin.Add(SteadyAfter)
	for _, b := range w.Jenkins.Builds() {
		if !b.Done || b.Node == "" {
			continue
		}
		toStart = append(toStart, b.Started.Sub(b.Queued))
		if !b.Queued.Before(steadyFrom) {
			steadyToStart = append(steadyToStart, b.Started.Sub(b.Queued))
		}
		started[b.Node] = b.Started
	}
	end := time.Now()
	idle, during, steady := 0.0, 0.0, 0.0
	arrivalsEnd := begin.Add(arrivalSpan)
	// overlap is the seconds of [from, to] within [lo, hi].
	overlap := func(from, to, lo, hi time.Time) float64 {
		if from.Before(lo) {
			from = lo
		}
		if to.After(hi) {
			to = hi
		}
		return math.Max(to.Sub(from).Seconds(), 0)
	}
	made, _ := w.Pods.Created()
	for pod, on := range online {
		pt, ok := w.Pods.Get(pod)
		if !ok {
			continue
		}
		startUps = append(startUps, on.Sub(pt.Added))
		until := end
		if s, ok := started[pod]; ok {
			until = s
		} else if !pt.Gone.IsZero() {
			until = pt.Gone
		}
		idle += math.Max(until.Sub(on).Seconds(), 0)
		during += overlap(on, until, begin, arrivalsEnd)
		steady += overlap(on, until, steadyFrom, arrivalsEnd)
	}
	if err := writeBuildTrace(filepath.Join(w.Dir, "builds.csv"), begin, w.Jenkins.Builds(), online, w.Pods); err != nil {
		p.Log.Warn("bench: build trace", zap.Error(err))
	}
	sort.Slice(startUps, func(i, j int) bool { return startUps[i] < startUps[j] })
	run.PodsMade = made
	run.QueuedToStarted = percentiles(toStart)
	run.QueuedToStartedSteady = percentiles(steadyToStart)
	run.ReadyIdlePodSeconds = round4(idle)
	if len(startUps) > 0 {
		run.StartUpMedian = round4(startUps[len(startUps)/2].Seconds())
	}
	if n := len(toStart); n > 0 {
		run.WastePerBuild = round4(idle / float64(n))
		run.WasteDuringArrivals = round4(during / float64(n))
		if m := len(steadyToStart); m > 0 {
			run.WasteSteady = round4(steady / float64(m))
		}
		rate := float64(n) / arrivalSpan.Seconds()
		run.LowerBoundPerBuild = round4(rate * run.StartUpMedian * arrivalSpan.Seconds() / float64(n))
	}
	return run, nil
}

// Markdown is the comparison as a table, with the targets.
func (f WarmFigures) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Ready agents: cold vs warm\n\n%d builds of %s on two templates, Poisson arrivals at %.2f/s, start-up %s, warm block `%s`.\n\n",
		f.Scale.Builds, f.Scale.BuildDuration, f.Scale.Rate, f.Scale.StartUp, f.Scale.Warm)
	fmt.Fprintf(&b, "Steady: builds queued %s or more after the first arrival (the first builds of new demand start cold).\n\n", SteadyAfter)
	b.WriteString("| | queued → build started p50 | p99 | max | steady p50 | steady p99 | idle pod-s per build (arrivals) | (steady) | (whole run) | Little's-law lower bound per build | waste ÷ bound (steady) | pods | ready agents at 0 after last build | invariants |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range []WarmRun{f.Cold, f.Warm} {
		name := "cold"
		if r.Warm {
			name = "warm (adaptive)"
		}
		zero := "not within the drain"
		if r.ZeroAfterStop >= 0 {
			zero = fmt.Sprintf("%.0f s", r.ZeroAfterStop)
		}
		ratio := 0.0
		if r.LowerBoundPerBuild > 0 {
			ratio = r.WasteSteady / r.LowerBoundPerBuild
		}
		fmt.Fprintf(&b, "| %s | %.2f s | %.2f s | %.2f s | %.2f s | %.2f s | %.1f | %.1f | %.1f | %.1f | %.2f | %d | %s | %s |\n", name,
			r.QueuedToStarted.P50/1000, r.QueuedToStarted.P99/1000, r.QueuedToStarted.Max/1000,
			r.QueuedToStartedSteady.P50/1000, r.QueuedToStartedSteady.P99/1000,
			r.WasteDuringArrivals, r.WasteSteady, r.WastePerBuild, r.LowerBoundPerBuild, ratio, r.PodsMade, zero, invariantsWord(r.Invariants))
	}
	return b.String()
}

// writeBuildTrace writes one row per build, times in seconds from the first arrival, so a run's
// slow builds can be looked at after the fact: when they were queued, how long they waited, and
// when the pod they ran on was made and came online.
func writeBuildTrace(path string, begin time.Time, builds []jenkinstest.BuildRecord, online map[string]time.Time, pods *PodTracker) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	cw := csv.NewWriter(f)
	at := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return strconv.FormatFloat(t.Sub(begin).Seconds(), 'f', 3, 64)
	}
	_ = cw.Write([]string{"job", "queued", "waited", "node", "podCreated", "agentOnline"})
	sort.Slice(builds, func(i, j int) bool { return builds[i].Queued.Before(builds[j].Queued) })
	for _, b := range builds {
		var created time.Time
		if pt, ok := pods.Get(b.Node); ok {
			created = pt.Added
		}
		_ = cw.Write([]string{b.Job, at(b.Queued), strconv.FormatFloat(b.Started.Sub(b.Queued).Seconds(), 'f', 3, 64), b.Node, at(created), at(online[b.Node])})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
