package harness

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
	"github.com/jenkins-agent-provisioner/provisioner/internal/waitfor"
)

// BenchScale sizes the bench scenarios. Full is the issue's; Smoke is what CI runs in seconds.
type BenchScale struct {
	Name            string        `json:"name"`
	Reps            int           `json:"repetitions"`
	LatencyBuilds   int           `json:"latencyBuilds"`
	LatencyRate     float64       `json:"latencyArrivalsPerSecond"`
	LatencyDuration time.Duration `json:"latencyBuildDuration"`
	BurstBuilds     int           `json:"burstBuilds"`
	CostQueued      []int         `json:"costQueued"`
	CostAgents      []int         `json:"costAgents"`
	CostWindow      time.Duration `json:"costWindow"`
	IdleWindow      time.Duration `json:"idleWindow"`
}

// BenchScales are the named scales of `-scale`.
var BenchScales = map[string]BenchScale{
	"full": {Name: "full", Reps: 3, LatencyBuilds: 300, LatencyRate: 3, LatencyDuration: 3 * time.Second, BurstBuilds: 1000,
		CostQueued: []int{100, 1000}, CostAgents: []int{100, 1000}, CostWindow: 5 * time.Second, IdleWindow: 20 * time.Second},
	"medium": {Name: "medium", Reps: 3, LatencyBuilds: 150, LatencyRate: 3, LatencyDuration: 3 * time.Second, BurstBuilds: 300,
		CostQueued: []int{100, 300}, CostAgents: []int{100, 300}, CostWindow: 5 * time.Second, IdleWindow: 15 * time.Second},
	"smoke": {Name: "smoke", Reps: 1, LatencyBuilds: 12, LatencyRate: 4, LatencyDuration: time.Second, BurstBuilds: 20,
		CostQueued: []int{10, 40}, CostAgents: []int{10}, CostWindow: 2 * time.Second, IdleWindow: 3 * time.Second},
}

// BenchOptions are the provisioner settings the bench runs with.
type BenchOptions struct {
	Scale        BenchScale
	PollInterval time.Duration // PROVISIONER_POLL_INTERVAL
	KubeQPS      float64       // PROVISIONER_KUBE_QPS, also the baseline client's
	KubeBurst    int           // PROVISIONER_KUBE_BURST, also the baseline client's
	Seed         uint64
	// Only, when not empty, limits the run to these scenarios: latency, burst, cost, warm.
	Only map[string]bool `json:",omitempty"`
	// Warm sizes the ready-agent scenario; zero: DefaultWarmScale.
	Warm WarmScale `json:",omitzero"`
}

func (o BenchOptions) runs(scenario string) bool { return len(o.Only) == 0 || o.Only[scenario] }

// BenchReport holds every bench figure.
type BenchReport struct {
	Header
	Scale     BenchScale     `json:"scale"`
	Settings  BenchOptions   `json:"settings"`
	Latency   LatencyFigures `json:"latency"`
	Burst     BurstFigures   `json:"burst"`
	Cost      CostFigures    `json:"jenkinsCost"`
	Footprint Footprint      `json:"footprint"`
	Warm      *WarmFigures   `json:"readyAgents,omitempty"`
	Targets   []Target       `json:"targets"`
	Errors    []string       `json:"errors,omitempty"`
}

// LatencyFigures are the medians over repetitions of each run's percentiles, plus waste.
type LatencyFigures struct {
	QueuedToPodCreated    Percentiles  `json:"queuedToPodCreated"`
	QueuedToAgentOnline   Percentiles  `json:"queuedToAgentOnline"`
	FinishedToDeleteAsked Percentiles  `json:"finishedToPodDeletionRequested"`
	FinishedToPodGone     Percentiles  `json:"finishedToPodGone"`
	WastePerBuild         Percentiles  `json:"wastePerBuild"`
	WasteMeanSeconds      float64      `json:"wasteMeanSeconds"`
	Runs                  []LatencyRun `json:"runs"`
}

// LatencyRun is one repetition.
type LatencyRun struct {
	QueuedToPodCreated    Percentiles `json:"queuedToPodCreated"`
	QueuedToAgentOnline   Percentiles `json:"queuedToAgentOnline"`
	FinishedToDeleteAsked Percentiles `json:"finishedToPodDeletionRequested"`
	FinishedToPodGone     Percentiles `json:"finishedToPodGone"`
	WastePerBuild         Percentiles `json:"wastePerBuild"`
	WasteMeanSeconds      float64     `json:"wasteMeanSeconds"`
	Seconds               float64     `json:"seconds"`
	Invariants            Invariants  `json:"invariants"`
}

// BurstFigures compare the provisioner with a plain client-go loop, run by run.
type BurstFigures struct {
	Builds          int        `json:"builds"`
	ProvisionerSecs float64    `json:"provisionerSecondsMedian"`
	BaselineSecs    float64    `json:"baselineSecondsMedian"`
	Ratio           float64    `json:"ratioMedian"`
	Runs            []BurstRun `json:"runs"`
}

// BurstRun is one repetition, both sides measured back to back on the same apiserver.
type BurstRun struct {
	ProvisionerSecs float64 `json:"provisionerSeconds"`
	ScheduleSecs    float64 `json:"scheduleSeconds"` // time the emulator took to accept the N builds (inside ProvisionerSecs)
	BaselineSecs    float64 `json:"baselineSeconds"`
	Ratio           float64 `json:"ratio"`
	MaxLive         int     `json:"maxLive"`
}

// CostCell is Jenkins traffic per poll in one steady state.
type CostCell struct {
	Queued          int              `json:"queued"`
	Agents          int              `json:"agents"`
	RequestsPerPoll float64          `json:"requestsPerPoll"`
	BytesPerPoll    float64          `json:"bytesPerPoll"`
	ByEndpoint      map[string]int64 `json:"requestsByEndpoint"` // over the last window
	Polls           float64          `json:"pollsMeasured"`
}

// CostFigures are the cells measured.
type CostFigures struct {
	Cells []CostCell `json:"cells"`
	// BytesPerQueuedBuild and BytesPerAgent are the growth of bytes per poll per item between the
	// cells, which must stay flat: the provisioner reads each item once per poll and nothing else.
	BytesPerQueuedBuild []float64 `json:"bytesPerQueuedBuild"`
	BytesPerAgent       []float64 `json:"bytesPerAgent"`
}

// Footprint is the provisioner process's own cost.
type Footprint struct {
	Agents         int     `json:"agents"`
	RSSMiBAtAgents float64 `json:"rssMiBAtAgents"`
	CPUAtAgents    float64 `json:"cpuCoresAtAgents"`
	RSSMiBIdle     float64 `json:"rssMiBIdle"`
	CPUIdle        float64 `json:"cpuCoresIdle"`
	IdleWindowSecs float64 `json:"idleWindowSeconds"`
}

func (o BenchOptions) env() map[string]string {
	return map[string]string{
		"PROVISIONER_POLL_INTERVAL": o.PollInterval.String(),
		"PROVISIONER_KUBE_QPS":      fmt.Sprint(o.KubeQPS),
		"PROVISIONER_KUBE_BURST":    fmt.Sprint(o.KubeBurst),
	}
}

// Bench runs every bench scenario and returns the report; a scenario that cannot run is recorded
// in Errors and the others still run.
func (p *Plane) Bench(ctx context.Context, o BenchOptions) *BenchReport {
	r := &BenchReport{Header: NewHeader(), Scale: o.Scale, Settings: o}
	fail := func(what string, err error) {
		r.Errors = append(r.Errors, fmt.Sprintf("%s: %v", what, err))
		p.Log.Error(what, zap.Error(err))
	}
	for i := range o.Scale.Reps * b2i(o.runs("latency")) {
		p.Log.Info("bench: latency", zap.Int("rep", i+1), zap.Int("builds", o.Scale.LatencyBuilds))
		run, err := p.latencyRun(ctx, o, uint64(i)+o.Seed)
		if err != nil {
			fail(fmt.Sprintf("latency run %d", i+1), err)
			continue
		}
		r.Latency.Runs = append(r.Latency.Runs, run)
	}
	r.Latency.summarise()
	for i := range o.Scale.Reps * b2i(o.runs("burst")) {
		p.Log.Info("bench: burst", zap.Int("rep", i+1), zap.Int("builds", o.Scale.BurstBuilds))
		run, err := p.burstRun(ctx, o, i%2 == 1)
		if err != nil {
			fail(fmt.Sprintf("burst run %d", i+1), err)
			continue
		}
		r.Burst.Runs = append(r.Burst.Runs, run)
	}
	r.Burst.summarise(o.Scale.BurstBuilds)
	if o.runs("cost") {
		p.Log.Info("bench: Jenkins cost and footprint")
		if err := p.costRun(ctx, o, r); err != nil {
			fail("Jenkins cost and footprint", err)
		}
	}
	if o.runs("warm") {
		sc := o.Warm
		if sc.Builds == 0 {
			sc = DefaultWarmScale
			if o.Scale.Name == "smoke" {
				sc = SmokeWarmScale
			}
		}
		p.Log.Info("bench: ready agents, cold vs warm")
		f, err := p.BenchWarm(ctx, o, sc)
		if err != nil {
			fail("ready agents", err)
		} else {
			r.Warm = &f
		}
	}
	r.Targets = r.targets()
	return r
}

func (l *LatencyFigures) summarise() {
	var a, b, c, d, e []Percentiles
	var waste []float64
	for _, r := range l.Runs {
		a, b, c, d, e = append(a, r.QueuedToPodCreated), append(b, r.QueuedToAgentOnline), append(c, r.FinishedToDeleteAsked), append(d, r.FinishedToPodGone), append(e, r.WastePerBuild)
		waste = append(waste, r.WasteMeanSeconds)
	}
	l.QueuedToPodCreated, l.QueuedToAgentOnline, l.FinishedToDeleteAsked, l.FinishedToPodGone, l.WastePerBuild =
		medianPercentiles(a), medianPercentiles(b), medianPercentiles(c), medianPercentiles(d), medianPercentiles(e)
	l.WasteMeanSeconds = median(waste)
}

func (b *BurstFigures) summarise(n int) {
	b.Builds = n
	var p, q, r []float64
	for _, run := range b.Runs {
		p, q, r = append(p, run.ProvisionerSecs), append(q, run.BaselineSecs), append(r, run.Ratio)
	}
	b.ProvisionerSecs, b.BaselineSecs, b.Ratio = median(p), median(q), median(r)
}

// latencyRun: builds over three labels arriving as a Poisson process; each build's latencies are
// taken from the pod it actually ran on.
func (p *Plane) latencyRun(ctx context.Context, o BenchOptions, seed uint64) (LatencyRun, error) {
	sc := o.Scale
	labels := []string{"alpha", "beta", "gamma"}
	var ts []Template
	for _, l := range labels {
		ts = append(ts, Template{Name: l, Labels: []string{l}, MaxAgents: 1000})
	}
	w, err := p.NewWorld(ctx, WorldOptions{Name: "latency", Templates: ts, MaxAgents: 1000, Env: o.env()})
	if err != nil {
		return LatencyRun{}, err
	}
	defer w.Close()
	if _, err := w.StartReadyProvisioner(ctx); err != nil {
		return LatencyRun{}, err
	}
	builds := w.NewJobs(sc.LatencyBuilds, labels, sc.LatencyDuration)
	rng := rand.New(rand.NewPCG(seed, 7))
	begin := time.Now()
	if err := w.arrive(ctx, builds, sc.LatencyRate, rng); err != nil {
		return LatencyRun{}, err
	}
	if err := w.WaitBuilds(ctx, builds, waitFor(len(builds), sc.LatencyRate)); err != nil {
		return LatencyRun{}, err
	}
	run := LatencyRun{Seconds: time.Since(begin).Seconds()}
	run.Invariants = w.Check(ctx, builds, time.Minute)
	online := w.AgentOnline()
	var toPod, toOnline, toAsk, toGone, waste []time.Duration
	var wasteSum time.Duration
	for _, b := range w.Jenkins.Builds() {
		pod, ok := w.Pods.Get(b.Node)
		if !ok || !b.Done {
			continue
		}
		toPod = append(toPod, pod.Added.Sub(b.Queued))
		if t, ok := online[b.Node]; ok {
			toOnline = append(toOnline, t.Sub(b.Queued))
			if !pod.Gone.IsZero() {
				// Pod time beyond start-up (created → agent online) and the build itself.
				wst := b.Started.Sub(t) + pod.Gone.Sub(b.Finished)
				waste = append(waste, wst)
				wasteSum += wst
			}
		}
		if !pod.DeleteRequested.IsZero() {
			toAsk = append(toAsk, pod.DeleteRequested.Sub(b.Finished))
		}
		if !pod.Gone.IsZero() {
			toGone = append(toGone, pod.Gone.Sub(b.Finished))
		}
	}
	run.QueuedToPodCreated, run.QueuedToAgentOnline = percentiles(toPod), percentiles(toOnline)
	run.FinishedToDeleteAsked, run.FinishedToPodGone, run.WastePerBuild = percentiles(toAsk), percentiles(toGone), percentiles(waste)
	if len(waste) > 0 {
		run.WasteMeanSeconds = math.Round(wasteSum.Seconds()/float64(len(waste))*1000) / 1000
	}
	return run, nil
}

// waitFor is a generous bound for n builds arriving at rate per second on a loaded 2-core machine.
func waitFor(n int, rate float64) time.Duration {
	return time.Duration(float64(n)/rate*float64(time.Second)) + 5*time.Minute
}

// arrive schedules the builds as a Poisson process of the given rate.
func (w *World) arrive(ctx context.Context, builds []Build, rate float64, rng *rand.Rand) error {
	for i := range builds {
		if err := w.Schedule(&builds[i]); err != nil {
			return err
		}
		if !waitfor.Duration(ctx, time.Duration(rng.ExpFloat64()/rate*float64(time.Second))) {
			return ctx.Err()
		}
	}
	return nil
}

// burstRun queues N builds at once and times until N agent pods exist; side by side, a plain
// client-go loop with the same QPS and burst creates N equivalent pods in a fresh namespace. The
// node simulator is off for both, so the apiserver carries only the writes being compared.
func (p *Plane) burstRun(ctx context.Context, o BenchOptions, provisionerFirst bool) (BurstRun, error) {
	var run BurstRun
	n := o.Scale.BurstBuilds
	provisioner := func() error {
		w, err := p.NewWorld(ctx, WorldOptions{Name: "burst", Templates: []Template{{Name: "burst", Labels: []string{"burst"}, MaxAgents: n}},
			MaxAgents: n, Env: o.env(), NoSimulator: true})
		if err != nil {
			return err
		}
		defer w.Close()
		builds := w.NewJobs(n, []string{"burst"}, time.Minute)
		if _, err := w.StartReadyProvisioner(ctx); err != nil {
			return err
		}
		begin := time.Now()
		for i := range builds {
			if err := w.Schedule(&builds[i]); err != nil {
				return err
			}
		}
		run.ScheduleSecs = time.Since(begin).Seconds()
		deadline := time.Now().Add(20 * time.Minute)
		for {
			got, last := w.Pods.Created()
			if got >= n {
				run.ProvisionerSecs = last.Sub(begin).Seconds()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%d of %d agent pods after 20m", got, n)
			}
			if !waitfor.Duration(ctx, 50*time.Millisecond) {
				return ctx.Err()
			}
		}
		run.MaxLive, _ = w.Pods.Max()
		return nil
	}
	baseline := func() error {
		secs, err := p.baseline(ctx, o, n)
		run.BaselineSecs = secs
		return err
	}
	order := []func() error{baseline, provisioner}
	if provisionerFirst {
		order = []func() error{provisioner, baseline}
	}
	for _, f := range order {
		if err := f(); err != nil {
			return run, err
		}
	}
	run.Ratio = math.Round(run.ProvisionerSecs/run.BaselineSecs*100) / 100
	return run, nil
}

// baseline creates n pods rendered from the same template as the provisioner's (without their
// Secrets) with a plain client-go loop, and times until the watch shows all of them.
func (p *Plane) baseline(ctx context.Context, o BenchOptions, n int) (float64, error) {
	ns := fmt.Sprintf("baseline-%d-%d", time.Now().Unix()%100000, worldSeq.Add(1))
	if _, err := p.Env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return 0, fmt.Errorf("baseline namespace: %w", err)
	}
	path := filepath.Join(p.Dir, ns+"-templates.yaml")
	if err := os.WriteFile(path, []byte(templatesYAML([]Template{{Name: "burst", Labels: []string{"burst"}, MaxAgents: n}})), 0o644); err != nil {
		return 0, fmt.Errorf("baseline template: %w", err)
	}
	set, err := podtemplate.Load(path)
	if err != nil {
		return 0, fmt.Errorf("baseline template: %w", err)
	}
	t, _ := set.Get("burst")
	pods := make([]*corev1.Pod, 0, n)
	for range n {
		pod, _, err := podtemplate.Render(t, podtemplate.Identity{Name: podtemplate.NewAgentName("burst"), Namespace: ns,
			Secret: strings.Repeat("0", 64), JenkinsURL: "http://jenkins.invalid/"})
		if err != nil {
			return 0, fmt.Errorf("baseline render: %w", err)
		}
		pods = append(pods, pod)
	}
	cfg := rest.CopyConfig(p.Env.Config)
	cfg.QPS, cfg.Burst = float32(o.KubeQPS), o.KubeBurst
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return 0, fmt.Errorf("baseline client: %w", err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tracker, err := TrackPods(wctx, p.Env.Client, ns, "")
	if err != nil {
		return 0, err
	}
	begin := time.Now()
	for _, pod := range pods {
		if _, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			return 0, fmt.Errorf("baseline create: %w", err)
		}
	}
	for {
		got, last := tracker.Created()
		if got >= n {
			return last.Sub(begin).Seconds(), nil
		}
		if !waitfor.Duration(ctx, 20*time.Millisecond) {
			return 0, ctx.Err()
		}
	}
}

// costRun measures Jenkins traffic per poll in steady states (nothing, queued builds no template
// serves, live agents running long builds) and the provisioner's footprint idle and at the most
// agents.
func (p *Plane) costRun(ctx context.Context, o BenchOptions, r *BenchReport) error {
	sc := o.Scale
	maxAgents := 0
	for _, a := range sc.CostAgents {
		maxAgents = max(maxAgents, a)
	}
	maxQueued := 0
	for _, q := range sc.CostQueued {
		maxQueued = max(maxQueued, q)
	}
	w, err := p.NewWorld(ctx, WorldOptions{Name: "cost", Templates: []Template{{Name: "cost", Labels: []string{"cost"}, MaxAgents: maxAgents}},
		MaxAgents: maxAgents, Env: o.env()})
	if err != nil {
		return err
	}
	defer w.Close()
	unserved := w.NewJobs(maxQueued, []string{"nobody-serves-this"}, time.Second)
	agents := w.NewJobs(maxAgents, []string{"cost"}, time.Hour)
	proc, err := w.StartReadyProvisioner(ctx)
	if err != nil {
		return err
	}
	settle := func() { waitfor.Duration(ctx, 3*o.PollInterval) }
	settle()

	// Idle: nothing queued, no agents.
	rss0, cpu0, err := proc.Usage()
	if err != nil {
		return err
	}
	begin := time.Now()
	waitfor.Duration(ctx, sc.IdleWindow)
	rss1, cpu1, err := proc.Usage()
	if err != nil {
		return err
	}
	r.Footprint.IdleWindowSecs = time.Since(begin).Seconds()
	r.Footprint.CPUIdle = round4((cpu1 - cpu0) / r.Footprint.IdleWindowSecs)
	r.Footprint.RSSMiBIdle = mib(max(rss0, rss1))
	cell, err := w.costCell(ctx, proc, 0, 0, sc.CostWindow)
	if err != nil {
		return err
	}
	r.Cost.Cells = append(r.Cost.Cells, cell)

	for _, q := range sc.CostQueued {
		for i := range q {
			if err := w.Schedule(&unserved[i]); err != nil {
				return err
			}
		}
		settle()
		cell, err := w.costCell(ctx, proc, q, 0, sc.CostWindow)
		if err != nil {
			return err
		}
		r.Cost.Cells = append(r.Cost.Cells, cell)
		for i := range q {
			if err := w.Jenkins.Cancel(unserved[i].QueueID); err != nil {
				return err
			}
		}
		settle()
	}

	started := 0
	for _, a := range sc.CostAgents {
		for i := started; i < a; i++ {
			if err := w.Schedule(&agents[i]); err != nil {
				return err
			}
		}
		started = a
		if err := w.WaitStarted(ctx, agents[:a], a, 20*time.Minute); err != nil {
			return err
		}
		// Measure the steady state only: every agent busy and marked temporarily offline, so the
		// marking requests and the busy watch's extra computer reads have stopped.
		if err := w.waitMarked(ctx, a, 10*time.Minute); err != nil {
			return err
		}
		settle()
		cell, err := w.costCell(ctx, proc, 0, a, sc.CostWindow)
		if err != nil {
			return err
		}
		r.Cost.Cells = append(r.Cost.Cells, cell)
		if a == maxAgents {
			_, c0, err := proc.Usage()
			if err != nil {
				return err
			}
			var peak int64
			begin := time.Now()
			for time.Since(begin) < sc.IdleWindow {
				rss, _, err := proc.Usage()
				if err != nil {
					return err
				}
				peak = max(peak, rss)
				waitfor.Duration(ctx, 250*time.Millisecond)
			}
			_, c1, err := proc.Usage()
			if err != nil {
				return err
			}
			r.Footprint.Agents = a
			r.Footprint.RSSMiBAtAgents = mib(peak)
			r.Footprint.CPUAtAgents = round4((c1 - c0) / time.Since(begin).Seconds())
		}
	}
	r.Cost.growth()
	return nil
}

// waitMarked waits until n agents are busy and marked temporarily offline in Jenkins.
func (w *World) waitMarked(ctx context.Context, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		marked := 0
		for _, node := range w.Jenkins.Nodes() {
			if node.Busy && node.TemporarilyOffline {
				marked++
			}
		}
		if marked >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d agents busy and marked after %s", marked, n, timeout)
		}
		if !waitfor.Duration(ctx, 250*time.Millisecond) {
			return ctx.Err()
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func round4(x float64) float64 { return math.Round(x*10000) / 10000 }

// costCell measures three windows and keeps the median requests and bytes per poll. Everything
// the emulator served except the agents' own connections (wsagents) was asked by the provisioner.
func (w *World) costCell(ctx context.Context, proc *Proc, queued, agents int, window time.Duration) (CostCell, error) {
	cell := CostCell{Queued: queued, Agents: agents}
	var reqs, bytes []float64
	for range 3 {
		m0, err := proc.Metrics(ctx)
		if err != nil {
			return cell, err
		}
		s0 := w.Jenkins.Stats()
		waitfor.Duration(ctx, window)
		m1, err := proc.Metrics(ctx)
		if err != nil {
			return cell, err
		}
		s1 := w.Jenkins.Stats()
		polls := m1.Sum("provisioner_poll_duration_seconds_count") - m0.Sum("provisioner_poll_duration_seconds_count")
		if polls < 1 {
			return cell, fmt.Errorf("no poll completed in a %s window (queued %d, agents %d)", window, queued, agents)
		}
		var nreq, nbytes int64
		by := map[string]int64{}
		for name, e1 := range s1.Endpoints {
			if name == "wsagents" {
				continue
			}
			e0 := s0.Endpoints[name]
			if d := e1.Requests - e0.Requests; d > 0 {
				by[name] = d
				nreq += d
				nbytes += e1.Bytes - e0.Bytes
			}
		}
		reqs = append(reqs, float64(nreq)/polls)
		bytes = append(bytes, float64(nbytes)/polls)
		cell.ByEndpoint, cell.Polls = by, polls
	}
	cell.RequestsPerPoll = math.Round(median(reqs)*100) / 100
	cell.BytesPerPoll = math.Round(median(bytes))
	return cell, nil
}

// growth computes bytes per poll per queued build and per agent between consecutive cells of
// each axis.
func (c *CostFigures) growth() {
	var q, a []CostCell
	for _, cell := range c.Cells {
		if cell.Agents == 0 {
			q = append(q, cell)
		}
		if cell.Queued == 0 {
			a = append(a, cell)
		}
	}
	slope := func(cells []CostCell, x func(CostCell) int) []float64 {
		sort.Slice(cells, func(i, j int) bool { return x(cells[i]) < x(cells[j]) })
		var out []float64
		for i := 1; i < len(cells); i++ {
			if dx := x(cells[i]) - x(cells[i-1]); dx > 0 {
				out = append(out, math.Round((cells[i].BytesPerPoll-cells[i-1].BytesPerPoll)/float64(dx)))
			}
		}
		return out
	}
	c.BytesPerQueuedBuild = slope(q, func(c CostCell) int { return c.Queued })
	c.BytesPerAgent = slope(a, func(c CostCell) int { return c.Agents })
}

// targets states each of the goals against what was measured; a scenario left out with
// -only has no targets in the report (and one that failed shows as missed, with its error listed).
func (r *BenchReport) targets() []Target {
	poll := r.Settings.PollInterval
	limit := ms(poll + 250*time.Millisecond)
	o := r.Settings
	var ts []Target
	if o.runs("latency") {
		ts = append(ts, Target{Name: "queued → pod created p99", Goal: fmt.Sprintf("≤ %.0f ms (poll + 250 ms)", limit),
			Measured: fmt.Sprintf("%.0f ms", r.Latency.QueuedToPodCreated.P99), Met: len(r.Latency.Runs) > 0 && r.Latency.QueuedToPodCreated.P99 <= limit})
		ts = append(ts, Target{Name: "build finished → pod deletion requested p99", Goal: fmt.Sprintf("≤ %.0f ms (poll + 250 ms)", limit),
			Measured: fmt.Sprintf("%.0f ms", r.Latency.FinishedToDeleteAsked.P99), Met: len(r.Latency.Runs) > 0 && r.Latency.FinishedToDeleteAsked.P99 <= limit})
	}
	if o.runs("burst") {
		ts = append(ts, Target{Name: fmt.Sprintf("burst of %d: provisioner time ÷ client-go loop time", r.Burst.Builds), Goal: "≤ 1.25",
			Measured: fmt.Sprintf("%.2f (%.1f s vs %.1f s)", r.Burst.Ratio, r.Burst.ProvisionerSecs, r.Burst.BaselineSecs), Met: len(r.Burst.Runs) > 0 && r.Burst.Ratio <= 1.25})
	}
	if o.runs("cost") {
		constant := len(r.Cost.Cells) > 0
		var per []string
		for _, c := range r.Cost.Cells {
			per = append(per, fmt.Sprintf("%.2f", c.RequestsPerPoll))
			if math.Abs(c.RequestsPerPoll-2) > 0.05 {
				constant = false
			}
		}
		ts = append(ts, Target{Name: "Jenkins requests per poll, every cell", Goal: "2, constant", Measured: strings.Join(per, ", "), Met: constant})
		flat := func(xs []float64) bool {
			if len(xs) < 2 {
				return len(xs) == 1
			}
			lo, hi := xs[0], xs[0]
			for _, x := range xs {
				lo, hi = min(lo, x), max(hi, x)
			}
			return lo > 0 && hi <= lo*1.25
		}
		ts = append(ts, Target{Name: "Jenkins bytes per poll grow only with what is read", Goal: "constant bytes per queued build and per agent (within 25%)",
			Measured: fmt.Sprintf("per queued build %v B, per agent %v B", r.Cost.BytesPerQueuedBuild, r.Cost.BytesPerAgent),
			Met:      flat(r.Cost.BytesPerQueuedBuild) && (len(r.Cost.BytesPerAgent) == 0 || flat(r.Cost.BytesPerAgent))})
		ts = append(ts, Target{Name: fmt.Sprintf("RSS at %d live agents", r.Footprint.Agents), Goal: "≤ 100 MiB",
			Measured: fmt.Sprintf("%.1f MiB", r.Footprint.RSSMiBAtAgents), Met: r.Footprint.Agents > 0 && r.Footprint.RSSMiBAtAgents <= 100})
		ts = append(ts, Target{Name: "idle CPU", Goal: "< 1% of a core",
			Measured: fmt.Sprintf("%.2f%% of a core", r.Footprint.CPUIdle*100), Met: r.Footprint.IdleWindowSecs > 0 && r.Footprint.CPUIdle < 0.01})
	}
	if o.runs("latency") {
		wasteGoal := poll.Seconds() + 0.5
		ts = append(ts, Target{Name: "waste: idle pod-seconds per build beyond start-up (mean)", Goal: fmt.Sprintf("≤ %.2f s (poll + 0.5 s)", wasteGoal),
			Measured: fmt.Sprintf("%.3f s (p95 %.0f ms)", r.Latency.WasteMeanSeconds, r.Latency.WastePerBuild.P95), Met: len(r.Latency.Runs) > 0 && r.Latency.WasteMeanSeconds <= wasteGoal})
	}
	return ts
}

// Markdown renders the report.
func (r *BenchReport) Markdown() string {
	var b strings.Builder
	b.WriteString(r.Header.Markdown("Bench report"))
	fmt.Fprintf(&b, "Scale `%s` (%d repetition(s); every figure is the median over repetitions), poll interval %s, Kubernetes client QPS %g / burst %d. "+
		"Real kube-apiserver, etcd and garbage collector, the Jenkins emulator, the node simulator, and the provisioner binary as a separate process.\n\n",
		r.Scale.Name, r.Scale.Reps, r.Settings.PollInterval, r.Settings.KubeQPS, r.Settings.KubeBurst)
	b.WriteString("## Targets\n\n")
	targetsTable(&b, r.Targets)
	if len(r.Errors) > 0 {
		b.WriteString("\n## Errors (scenarios that could not complete)\n\n")
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "- %s\n", e)
		}
	}
	l := r.Latency
	if r.Settings.runs("latency") {
		fmt.Fprintf(&b, "\n## 1. Latency\n\n%d builds per run over 3 labels, Poisson arrivals at %g/s, each build %s; each build measured against the pod it ran on.\n\n",
			r.Scale.LatencyBuilds, r.Scale.LatencyRate, r.Scale.LatencyDuration)
		b.WriteString("| Interval | p50 ms | p95 ms | p99 ms | max ms |\n|---|---|---|---|---|\n")
		row := func(name string, p Percentiles) {
			fmt.Fprintf(&b, "| %s | %.0f | %.0f | %.0f | %.0f |\n", name, p.P50, p.P95, p.P99, p.Max)
		}
		row("queued → pod created", l.QueuedToPodCreated)
		row("queued → agent online", l.QueuedToAgentOnline)
		row("build finished → pod deletion requested", l.FinishedToDeleteAsked)
		row("build finished → pod gone", l.FinishedToPodGone)
		row("waste: idle pod time per build beyond start-up", l.WastePerBuild)
		for i, run := range l.Runs {
			fmt.Fprintf(&b, "\nRun %d: %.0f s, invariants %s.", i+1, run.Seconds, invariantsWord(run.Invariants))
		}
		b.WriteString("\n")
	}
	if r.Settings.runs("burst") {
		fmt.Fprintf(&b, "\n## 2. Burst\n\n%d builds queued at once, caps at %d, node simulator off on both sides. Time until all pods exist; "+
			"the baseline is a plain client-go loop creating %d pods rendered from the same template (no Secrets), same QPS and burst, same apiserver, same run.\n\n",
			r.Burst.Builds, r.Burst.Builds, r.Burst.Builds)
		b.WriteString("| Run | provisioner s | (of which scheduling in the emulator) s | client-go loop s | ratio |\n|---|---|---|---|---|\n")
		for i, run := range r.Burst.Runs {
			fmt.Fprintf(&b, "| %d | %.1f | %.1f | %.1f | %.2f |\n", i+1, run.ProvisionerSecs, run.ScheduleSecs, run.BaselineSecs, run.Ratio)
		}
		fmt.Fprintf(&b, "| median | %.1f | | %.1f | %.2f |\n", r.Burst.ProvisionerSecs, r.Burst.BaselineSecs, r.Burst.Ratio)
		b.WriteString("\nEach agent costs the provisioner three Kubernetes writes (Secret, pod, the Secret's ownerReference) plus an Event, against the loop's one pod; " +
			"with client-side rate limiting binding, the ratio is set by that count.\n")
	}
	if r.Settings.runs("cost") {
		b.WriteString("\n## 3. Jenkins cost\n\nSteady states: builds queued for a label no template serves, and live agents running builds. Median of three windows.\n\n")
		b.WriteString("| queued | live agents | requests/poll | bytes/poll | requests by endpoint (last window) |\n|---|---|---|---|---|\n")
		for _, c := range r.Cost.Cells {
			fmt.Fprintf(&b, "| %d | %d | %.2f | %.0f | %v |\n", c.Queued, c.Agents, c.RequestsPerPoll, c.BytesPerPoll, c.ByEndpoint)
		}
		fmt.Fprintf(&b, "\nBytes per poll per queued build between cells: %v; per agent: %v.\n", r.Cost.BytesPerQueuedBuild, r.Cost.BytesPerAgent)
		f := r.Footprint
		fmt.Fprintf(&b, "\n## 4. Footprint\n\n| State | RSS MiB | CPU (cores) |\n|---|---|---|\n| idle, nothing queued (%.0f s window) | %.1f | %.4f |\n| %d live agents, builds running | %.1f | %.4f |\n",
			f.IdleWindowSecs, f.RSSMiBIdle, f.CPUIdle, f.Agents, f.RSSMiBAtAgents, f.CPUAtAgents)
	}
	if r.Settings.runs("latency") {
		fmt.Fprintf(&b, "\n## 5. Waste\n\nIdle pod time per build beyond start-up = (build started − agent online) + (pod gone − build finished), from the latency runs: "+
			"mean %.3f s, p50 %.0f ms, p95 %.0f ms.\n", l.WasteMeanSeconds, l.WastePerBuild.P50, l.WastePerBuild.P95)
	}
	if r.Warm != nil {
		b.WriteString("\n" + r.Warm.Markdown())
	}
	return b.String()
}

func invariantsWord(v Invariants) string {
	if v.OK() {
		return "all held"
	}
	return fmt.Sprintf("**%d violation(s)**: %v %v %v %v %v %v", v.Count(), v.NotExactlyOnce, v.NotOwnAgent, v.DeletedWhileRunning, v.PipelinesLost, v.Leftovers, v.CapsExceeded)
}
