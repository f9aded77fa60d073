package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jenkins-agent-provisioner/provisioner/internal/waitfor"
)

// ChaosScale sizes the fault scenarios.
type ChaosScale struct {
	Name string `json:"name"`
	// Only names the scenarios to run (kill, faults, apiserver, quota, leader, restart); empty: all.
	Only         []string      `json:"only,omitempty"`
	KillBuilds   int           `json:"killBuilds"`
	Kills        int           `json:"kills"`
	FaultBuilds  int           `json:"faultBuilds"`
	Outage       time.Duration `json:"outage"`
	RestartBuild int           `json:"apiserverRestartBuilds"`
	QuotaBuilds  int           `json:"quotaBuilds"`
	QuotaPods    int           `json:"quotaPods"`
	LeaderBuilds int           `json:"leaderBuilds"`
	LeaderKills  int           `json:"leaderKills"`
	// JenkinsRestartBuilds builds, half of them pipelines, see JenkinsRestarts restarts of Jenkins.
	JenkinsRestartBuilds int           `json:"jenkinsRestartBuilds"`
	JenkinsRestarts      int           `json:"jenkinsRestarts"`
	FuzzTime             time.Duration `json:"fuzzTime"` // 0: fuzzing skipped
	Rate                 float64       `json:"arrivalsPerSecond"`
	Duration             time.Duration `json:"buildDuration"`
	PerTemplate          int           `json:"maxAgentsPerTemplate"`
	Global               int           `json:"maxAgents"`
}

// ChaosScales are the named scales of `-scale`. Builds last 12 s: longer than the blind windows
// the faults cause on purpose (a restart after SIGKILL, a 4 s lease expiring after the leader
// dies, a Jenkins request that hangs until the client's 10 s per-attempt timeout). An agent whose
// build starts and ends while no provisioner is watching is free to take a second build: that is
// a limit of watching Jenkins from outside, and shorter builds would measure it rather than the
// recovery. The full scale's 30 s Jenkins outage is longer than a build, as the issue asks.
var ChaosScales = map[string]ChaosScale{
	"full": {Name: "full", KillBuilds: 200, Kills: 20, FaultBuilds: 100, Outage: 30 * time.Second, RestartBuild: 100,
		QuotaBuilds: 40, QuotaPods: 5, LeaderBuilds: 100, LeaderKills: 5, JenkinsRestartBuilds: 100, JenkinsRestarts: 3, FuzzTime: 20 * time.Second,
		Rate: 2, Duration: 12 * time.Second, PerTemplate: 8, Global: 20},
	"smoke": {Name: "smoke", KillBuilds: 6, Kills: 1, FaultBuilds: 6, Outage: 3 * time.Second, RestartBuild: 6,
		QuotaBuilds: 4, QuotaPods: 2, LeaderBuilds: 6, LeaderKills: 1, JenkinsRestartBuilds: 6, JenkinsRestarts: 1, Rate: 4, Duration: 12 * time.Second, PerTemplate: 3, Global: 6},
}

// ChaosReport holds every fault run's outcome.
type ChaosReport struct {
	Header
	Scale ChaosScale   `json:"scale"`
	Runs  []ChaosRun   `json:"runs"`
	Fuzz  []FuzzResult `json:"fuzz"`
}

// ChaosRun is one scenario's outcome.
type ChaosRun struct {
	Scenario   string             `json:"scenario"`
	Builds     int                `json:"builds"`
	Seconds    float64            `json:"seconds"`
	Invariants Invariants         `json:"invariants"`
	Facts      map[string]float64 `json:"facts"` // what the faults did: kills, restarts, refusals, faults injected
	Notes      []string           `json:"notes,omitempty"`
	Error      string             `json:"error,omitempty"`
}

// OK says whether the run completed with every invariant held.
func (r ChaosRun) OK() bool { return r.Error == "" && r.Invariants.OK() }

// FuzzResult is one fuzz target's run.
type FuzzResult struct {
	Package string  `json:"package"`
	Target  string  `json:"target"`
	Seconds float64 `json:"seconds"`
	Execs   string  `json:"execs"`
	OK      bool    `json:"ok"`
	Output  string  `json:"outputTail,omitempty"`
}

// chaosTemplates are three templates with caps low enough to bind during the runs.
func chaosTemplates(sc ChaosScale) ([]Template, []string) {
	labels := []string{"red", "green", "blue"}
	var ts []Template
	for _, l := range labels {
		ts = append(ts, Template{Name: l, Labels: []string{l}, MaxAgents: sc.PerTemplate})
	}
	return ts, labels
}

// chaosEnv shortens the provisioner's graces so a run's aftermath is cleaned up in seconds.
func chaosEnv() map[string]string {
	return map[string]string{
		"PROVISIONER_POLL_INTERVAL": "1s",
		"PROVISIONER_RELEASE_GRACE": "2s",
		"PROVISIONER_ORPHAN_GRACE":  "5s",
		"PROVISIONER_BACKOFF_BASE":  "1s",
		"PROVISIONER_BACKOFF_MAX":   "4s",
	}
}

// Chaos runs every fault scenario.
func (p *Plane) Chaos(ctx context.Context, sc ChaosScale, seed uint64) *ChaosReport {
	r := &ChaosReport{Header: NewHeader(), Scale: sc}
	scenarios := []struct {
		key, name string
		run       func(context.Context, ChaosScale, *rand.Rand, *ChaosRun) error
	}{
		{"kill", "SIGKILL the provisioner", p.chaosKill},
		{"faults", "Jenkins faults and outage", p.chaosJenkins},
		{"apiserver", "apiserver restarted", p.chaosAPIServer},
		{"quota", "ResourceQuota", p.chaosQuota},
		{"leader", "leader election, leader killed", p.chaosLeader},
		{"restart", "Jenkins restarted", p.chaosRestart},
	}
	for i, s := range scenarios {
		if len(sc.Only) > 0 && !slices.Contains(sc.Only, s.key) {
			continue
		}
		p.Log.Info("chaos: "+s.name, zap.Int("scenario", i+1))
		run := ChaosRun{Scenario: s.name, Facts: map[string]float64{}}
		begin := time.Now()
		if err := s.run(ctx, sc, rand.New(rand.NewPCG(seed, uint64(i))), &run); err != nil {
			run.Error = err.Error()
			p.Log.Error("chaos scenario", zap.String("scenario", s.name), zap.Error(err))
		}
		run.Seconds = time.Since(begin).Seconds()
		r.Runs = append(r.Runs, run)
	}
	if sc.FuzzTime > 0 {
		r.Fuzz = fuzzAll(ctx, sc.FuzzTime, p.Log)
	}
	return r
}

// replica keeps one provisioner process running as a Deployment would: whatever ends it (a kill,
// a lost lease), it is started again.
type replica struct {
	w        *World
	name     string
	env      map[string]string
	fresh    bool // each restart gets a new POD_NAME
	mu       sync.Mutex
	proc     *Proc
	restarts atomic.Int64
}

func (w *World) supervise(ctx context.Context, name string, env map[string]string, fresh bool) (*replica, error) {
	r := &replica{w: w, name: name, env: env, fresh: fresh}
	proc, err := w.StartProvisioner(name, env)
	if err != nil {
		return nil, err
	}
	r.proc = proc
	go func() {
		for {
			r.mu.Lock()
			cur := r.proc
			r.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-cur.done:
			}
			if ctx.Err() != nil {
				return
			}
			if r.fresh {
				// A replacement pod, not a container restart: a new name, hence a new identity.
				env = maps.Clone(env)
				env["POD_NAME"] = fmt.Sprintf("%s-%d", name, r.restarts.Load()+1)
			}
			next, err := w.StartProvisioner(name, env)
			if err != nil {
				w.P.Log.Error("restarting provisioner", zap.String("replica", name), zap.Error(err))
				return
			}
			r.restarts.Add(1)
			r.mu.Lock()
			r.proc = next
			r.mu.Unlock()
		}
	}()
	return r, nil
}

func (r *replica) current() *Proc {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proc
}

// kill SIGKILLs the current process and waits until its successor is ready.
func (r *replica) kill(ctx context.Context) error {
	old := r.current()
	old.Kill()
	deadline := time.Now().Add(30 * time.Second)
	for r.current() == old {
		if time.Now().After(deadline) || !waitfor.Duration(ctx, 20*time.Millisecond) {
			return fmt.Errorf("%s was not restarted", r.name)
		}
	}
	return nil
}

// runBuilds queues n builds as a Poisson process while during runs at the given offsets, then
// waits for every build and checks the invariants.
func (w *World) runBuilds(ctx context.Context, sc ChaosScale, n int, rng *rand.Rand, run *ChaosRun, during func(arrivals time.Duration) error) error {
	_, labels := chaosTemplates(sc)
	builds := w.NewJobs(n, labels, sc.Duration)
	run.Builds = n
	arrivals := time.Duration(float64(n) / sc.Rate * float64(time.Second))
	errc := make(chan error, 1)
	go func() { errc <- w.arrive(ctx, builds, sc.Rate, rand.New(rand.NewPCG(rng.Uint64(), 1))) }()
	if during != nil {
		if err := during(arrivals); err != nil {
			return err
		}
	}
	if err := <-errc; err != nil {
		return err
	}
	if err := w.WaitBuilds(ctx, builds, waitFor(n, sc.Rate)); err != nil {
		return err
	}
	run.Invariants = w.Check(ctx, builds, 2*time.Minute)
	return nil
}

// randomMoments returns k sorted offsets spread uniformly at random over d.
func randomMoments(rng *rand.Rand, k int, d time.Duration) []time.Duration {
	out := make([]time.Duration, k)
	for i := range out {
		out[i] = time.Duration(rng.Int64N(int64(d)))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// waitUntil sleeps until offset since begin.
func waitUntil(ctx context.Context, begin time.Time, offset time.Duration) bool {
	return waitfor.Duration(ctx, time.Until(begin.Add(offset)))
}

func (p *Plane) chaosWorld(ctx context.Context, name string, sc ChaosScale, opts WorldOptions) (*World, error) {
	ts, _ := chaosTemplates(sc)
	opts.Name, opts.Templates, opts.MaxAgents = name, ts, sc.Global
	if opts.Env == nil {
		opts.Env = map[string]string{}
	}
	for k, v := range chaosEnv() {
		if _, set := opts.Env[k]; !set {
			opts.Env[k] = v
		}
	}
	return p.NewWorld(ctx, opts)
}

// chaosKill: SIGKILL the provisioner at random moments of the run, restarting it each time.
func (p *Plane) chaosKill(ctx context.Context, sc ChaosScale, rng *rand.Rand, run *ChaosRun) error {
	w, err := p.chaosWorld(ctx, "kill", sc, WorldOptions{})
	if err != nil {
		return err
	}
	defer w.Close()
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	rep, err := w.supervise(sctx, "provisioner", map[string]string{}, false)
	if err != nil {
		return err
	}
	if err := rep.current().WaitReady(ctx, 2*time.Minute); err != nil {
		return err
	}
	kills := 0
	err = w.runBuilds(ctx, sc, sc.KillBuilds, rng, run, func(arrivals time.Duration) error {
		begin := time.Now()
		for _, at := range randomMoments(rng, sc.Kills, arrivals) {
			if !waitUntil(ctx, begin, at) {
				return ctx.Err()
			}
			if err := rep.kill(ctx); err != nil {
				return err
			}
			kills++
		}
		return nil
	})
	run.Facts["sigkills"] = float64(kills)
	run.Facts["restarts"] = float64(rep.restarts.Load())
	return err
}

// faultProxy stands between the provisioner and the emulator and makes a fraction of requests
// time out: it holds them until the client gives up. The emulator injects the other faults itself.
type faultProxy struct {
	rate     float64
	mu       sync.Mutex
	rng      *rand.Rand
	timeouts atomic.Int64
	proxy    *httputil.ReverseProxy
	srv      *http.Server
	on       atomic.Bool
}

func (f *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	hit := f.rng.Float64() < f.rate
	f.mu.Unlock()
	if hit && f.on.Load() {
		f.timeouts.Add(1)
		select {
		case <-r.Context().Done():
		case <-time.After(time.Minute):
		}
		return
	}
	f.proxy.ServeHTTP(w, r)
}

// chaosJenkins: 20% of the provisioner's requests fail (HTML 5xx pages, resets, time-outs) and
// Jenkins is entirely unavailable for a while in the middle of the run.
func (p *Plane) chaosJenkins(ctx context.Context, sc ChaosScale, rng *rand.Rand, run *ChaosRun) error {
	fp := &faultProxy{rate: 0.04, rng: rand.New(rand.NewPCG(rng.Uint64(), 2))}
	w, err := p.chaosWorld(ctx, "faults", sc, WorldOptions{JenkinsURL: func(emulator string) string {
		u, _ := url.Parse(emulator)
		fp.proxy = httputil.NewSingleHostReverseProxy(u)
		// A reset the emulator injects reaches the provisioner as a reset, not as the proxy's 502.
		fp.proxy.ErrorHandler = func(http.ResponseWriter, *http.Request, error) { panic(http.ErrAbortHandler) }
		addr, err := freeAddr()
		if err != nil {
			panic(err) // a machine without a free loopback port cannot run any of this
		}
		fp.srv = &http.Server{Addr: addr, Handler: fp, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
		go func() { _ = fp.srv.ListenAndServe() }()
		return "http://" + addr + "/"
	}})
	if err != nil {
		return err
	}
	defer w.Close()
	defer fp.srv.Close()
	if _, err := w.StartReadyProvisioner(ctx); err != nil {
		return err
	}
	// The provisioner's requests only: the agents' own connections are the agents' business, and
	// an agent refused with -noReconnect exits, which is a different scenario (agent failure).
	f := w.Jenkins.Faults()
	f.Seed(rng.Uint64())
	f.Only("root", "queue", "queueItem", "cancelItem", "computers", "computer", "createNode", "deleteNode", "disconnect",
		"toggleOffline", "changeOfflineCause", "jnlp", "crumb", "job", "build", "run", "label", "page", "other")
	f.SetErrorRate(0.10)
	f.SetResetRate(0.06)
	fp.on.Store(true)
	err = w.runBuilds(ctx, sc, sc.FaultBuilds, rng, run, func(arrivals time.Duration) error {
		if !waitfor.Duration(ctx, arrivals/2) {
			return ctx.Err()
		}
		f.OutageFor(sc.Outage)
		return nil
	})
	c := f.Counts()
	run.Facts["errorPages5xx"], run.Facts["resets"], run.Facts["outageRequests"] = float64(c.Errors), float64(c.Resets), float64(c.Outage)
	run.Facts["timeouts"] = float64(fp.timeouts.Load())
	run.Facts["outageSeconds"] = sc.Outage.Seconds()
	run.Notes = append(run.Notes, "Faults stay on until every build has finished and through the clean-up check; they hit the provisioner's requests, not the agents' connections.")
	return err
}

// chaosRestart: Jenkins restarts (down 2 s, starting 3 s) at random moments of a mixed run. Jenkins
// aborts the freestyle builds running then; every pipeline build must resume on its own agent and
// succeed, no agent may take a second build, and nothing may be left.
func (p *Plane) chaosRestart(ctx context.Context, sc ChaosScale, rng *rand.Rand, run *ChaosRun) error {
	w, err := p.chaosWorld(ctx, "restart", sc, WorldOptions{})
	if err != nil {
		return err
	}
	defer w.Close()
	proc, err := w.StartReadyProvisioner(ctx)
	if err != nil {
		return err
	}
	_, labels := chaosTemplates(sc)
	builds := w.NewMixedJobs(sc.JenkinsRestartBuilds, labels, sc.Duration)
	run.Builds = len(builds)
	arrivals := time.Duration(float64(len(builds)) / sc.Rate * float64(time.Second))
	errc := make(chan error, 1)
	go func() { errc <- w.arrive(ctx, builds, sc.Rate, rand.New(rand.NewPCG(rng.Uint64(), 1))) }()
	begin := time.Now()
	// Restarts while builds arrive and run: the last one no later than the arrivals' end plus a
	// build's length, so it meets running builds.
	for _, at := range randomMoments(rng, sc.JenkinsRestarts, arrivals+sc.Duration/2) {
		if !waitUntil(ctx, begin, at) {
			return ctx.Err()
		}
		if err := w.RestartJenkins(ctx, 2*time.Second, 3*time.Second); err != nil {
			return err
		}
		run.Facts["jenkinsRestarts"]++
	}
	if err := <-errc; err != nil {
		return err
	}
	if err := w.WaitBuilds(ctx, builds, waitFor(len(builds), sc.Rate)+2*time.Minute); err != nil {
		return err
	}
	run.Invariants = w.Check(ctx, builds, 2*time.Minute)
	pipelines, resumed := 0, 0
	for _, b := range w.Jenkins.Builds() {
		if b.PlaceholderQueueID != 0 {
			pipelines++
			if b.ResumedQueueID != 0 {
				resumed++
			}
		}
	}
	run.Facts["pipelineBuilds"], run.Facts["pipelinesResumed"] = float64(pipelines), float64(resumed)
	run.Facts["freestyleAbortedByRestart"] = float64(run.Invariants.AbortedByRestart)
	run.Notes = append(run.Notes, "Freestyle builds running at a restart end ABORTED, as in Jenkins; they are counted, not violations. Pipeline builds must all succeed.")
	if proc.Exited() {
		return fmt.Errorf("the provisioner exited during the Jenkins restarts")
	}
	return nil
}

// chaosAPIServer: the apiserver goes away and comes back mid-run.
func (p *Plane) chaosAPIServer(ctx context.Context, sc ChaosScale, rng *rand.Rand, run *ChaosRun) error {
	w, err := p.chaosWorld(ctx, "apiserver", sc, WorldOptions{})
	if err != nil {
		return err
	}
	defer w.Close()
	proc, err := w.StartReadyProvisioner(ctx)
	if err != nil {
		return err
	}
	return w.runBuilds(ctx, sc, sc.RestartBuild, rng, run, func(arrivals time.Duration) error {
		if !waitfor.Duration(ctx, arrivals/2) {
			return ctx.Err()
		}
		begin := time.Now()
		if err := p.Env.RestartAPIServer(); err != nil {
			return err
		}
		run.Facts["apiserverDownSeconds"] = time.Since(begin).Seconds()
		if proc.Exited() {
			return fmt.Errorf("the provisioner exited during the apiserver restart")
		}
		return nil
	})
}

// chaosQuota: a ResourceQuota admits only a few agent pods while many builds wait. The control
// plane's kube-controller-manager runs the quota controller, which fills in the quota's status
// (admission refuses pods until it has) and refunds deleted pods, as in a cluster.
func (p *Plane) chaosQuota(ctx context.Context, sc ChaosScale, rng *rand.Rand, run *ChaosRun) error {
	big := sc
	big.PerTemplate, big.Global = sc.QuotaBuilds, sc.QuotaBuilds
	w, err := p.chaosWorld(ctx, "quota", big, WorldOptions{})
	if err != nil {
		return err
	}
	defer w.Close()
	quotas := p.Env.Client.CoreV1().ResourceQuotas(w.NS)
	hard := corev1.ResourceList{corev1.ResourcePods: *resource.NewQuantity(int64(sc.QuotaPods), resource.DecimalSI)}
	if _, err := quotas.Create(ctx, &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "agents"}, Spec: corev1.ResourceQuotaSpec{Hard: hard}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating the quota: %w", err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		q, err := quotas.Get(ctx, "agents", metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("reading the quota: %w", err)
		}
		if _, ok := q.Status.Used[corev1.ResourcePods]; ok {
			break
		}
		if time.Now().After(deadline) || !waitfor.Duration(ctx, 100*time.Millisecond) {
			return fmt.Errorf("the quota controller did not fill in the quota's status within a minute")
		}
	}
	proc, err := w.StartReadyProvisioner(ctx)
	if err != nil {
		return err
	}
	// The builds all wait at once, as in the issue: queue them in one go.
	fast := sc
	fast.Rate = 1000
	if err := w.runBuilds(ctx, fast, sc.QuotaBuilds, rng, run, nil); err != nil {
		return err
	}
	m, err := proc.Metrics(ctx)
	if err != nil {
		return err
	}
	run.Facts["quotaPods"] = float64(sc.QuotaPods)
	run.Facts["creationsRefusedQuotaExceeded"] = m.Sum("provisioner_agents_failed_total", `reason="quota_exceeded"`)
	run.Facts["podCreateErrors403"] = m.Sum("provisioner_kube_api_errors_total", `verb="create"`, `resource="pods"`, `code="403"`)
	maxLive, _ := w.Pods.Max()
	run.Facts["maxPodsAlive"] = float64(maxLive)
	events, err := p.Env.Client.CoreV1().Events(w.NS).List(ctx, metav1.ListOptions{FieldSelector: "reason=ProvisioningRefused"})
	if err != nil {
		return err
	}
	said := 0
	for _, e := range events.Items {
		if strings.Contains(e.Message, "quota exceeded") {
			said += int(max(e.Count, 1))
		}
	}
	run.Facts["quotaExceededEvents"] = float64(said)
	if maxLive > sc.QuotaPods {
		add(&run.Invariants.CapsExceeded, "%d pods alive at once, quota %d", maxLive, sc.QuotaPods)
	}
	if run.Facts["creationsRefusedQuotaExceeded"] == 0 || said == 0 {
		run.Notes = append(run.Notes, "the quota never refused a creation: the scenario did not test what it should")
		run.Error = "no quota refusal observed"
	}
	return nil
}

// chaosLeader: two replicas with leader election; the leader is SIGKILLed repeatedly and started
// again as a follower, as its Deployment would.
func (p *Plane) chaosLeader(ctx context.Context, sc ChaosScale, rng *rand.Rand, run *ChaosRun) error {
	w, err := p.chaosWorld(ctx, "leader", sc, WorldOptions{Env: map[string]string{
		"PROVISIONER_LEADER_ELECT": "true", "PROVISIONER_LEASE_DURATION": "4s",
	}})
	if err != nil {
		return err
	}
	defer w.Close()
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	replicas := map[string]*replica{}
	for _, name := range []string{"replica-a", "replica-b"} {
		// A killed leader comes back under a new name, as a replacement pod would: with its old
		// identity it would find the lease still its own and simply carry on leading, and the
		// other replica's takeover would never be exercised.
		rep, err := w.supervise(sctx, name, map[string]string{"POD_NAME": name}, true)
		if err != nil {
			return err
		}
		replicas[name] = rep
	}
	leases := p.Env.Client.CoordinationV1().Leases(w.NS)
	leader := func() string {
		l, err := leases.Get(ctx, "jenkins-agent-provisioner", metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return ""
		}
		return *l.Spec.HolderIdentity
	}
	// replicaOf maps an identity (replica-a, replica-a-2, …) to its replica.
	replicaOf := func(identity string) (*replica, bool) {
		for name, rep := range replicas {
			if identity == name || strings.HasPrefix(identity, name+"-") {
				return rep, true
			}
		}
		return nil, false
	}
	waitLeader := func(not string) (string, error) {
		deadline := time.Now().Add(time.Minute)
		for {
			if l := leader(); l != "" && l != not {
				if rep, ok := replicaOf(l); ok && rep.current().WaitReady(ctx, time.Minute) == nil {
					return l, nil
				}
			}
			if time.Now().After(deadline) || !waitfor.Duration(ctx, 100*time.Millisecond) {
				return "", fmt.Errorf("no new leader within a minute (lease holder %q)", leader())
			}
		}
	}
	if _, err := waitLeader(""); err != nil {
		return err
	}
	kills := 0
	var takeovers []time.Duration
	err = w.runBuilds(ctx, sc, sc.LeaderBuilds, rng, run, func(arrivals time.Duration) error {
		begin := time.Now()
		for i := range sc.LeaderKills {
			if !waitUntil(ctx, begin, arrivals*time.Duration(i+1)/time.Duration(sc.LeaderKills+1)) {
				return ctx.Err()
			}
			l := leader()
			rep, ok := replicaOf(l)
			if !ok {
				return fmt.Errorf("lease held by %q, not a replica", l)
			}
			killed := time.Now()
			if err := rep.kill(ctx); err != nil {
				return err
			}
			kills++
			if _, err := waitLeader(l); err != nil {
				return err
			}
			takeovers = append(takeovers, time.Since(killed))
		}
		return nil
	})
	run.Facts["leaderKills"] = float64(kills)
	var restarts int64
	for _, rep := range replicas {
		restarts += rep.restarts.Load()
	}
	run.Facts["replicaRestarts"] = float64(restarts)
	if len(takeovers) > 0 {
		var ds []float64
		for _, d := range takeovers {
			ds = append(ds, d.Seconds())
		}
		run.Facts["takeoverSecondsMedian"] = median(ds)
	}
	run.Notes = append(run.Notes, "Lease duration 4 s; a killed leader's lease is not released, so the follower takes over once it expires.")
	return err
}

// fuzzTargets are the parsers the issue names, with the package that fuzzes each.
var fuzzTargets = []struct{ pkg, target string }{
	{"./internal/jenkins", "FuzzParseWhy"},
	{"./internal/labelexpr", "FuzzParse"},
	{"./internal/podtemplate", "FuzzParse"},
	{"./internal/jenkins", "FuzzParseJNLP"},
}

var execsRe = regexp.MustCompile(`execs: (\d+)`)

// fuzzAll runs each fuzz target for d with `go test -fuzz`.
func fuzzAll(ctx context.Context, d time.Duration, log *zap.Logger) []FuzzResult {
	root, err := moduleRoot()
	if err != nil {
		return []FuzzResult{{Output: err.Error()}}
	}
	var out []FuzzResult
	for _, ft := range fuzzTargets {
		log.Info("chaos: fuzzing", zap.String("package", ft.pkg), zap.String("target", ft.target), zap.Duration("for", d))
		cmd := exec.CommandContext(ctx, "go", "test", ft.pkg, "-run", "^$", "-fuzz", "^"+ft.target+"$", "-fuzztime", d.String())
		cmd.Dir = root
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		begin := time.Now()
		err := cmd.Run()
		res := FuzzResult{Package: ft.pkg, Target: ft.target, Seconds: time.Since(begin).Seconds(), OK: err == nil}
		if m := execsRe.FindAllStringSubmatch(buf.String(), -1); len(m) > 0 {
			res.Execs = m[len(m)-1][1]
		}
		if !res.OK {
			s := buf.String()
			res.Output = s[max(0, len(s)-2000):]
		}
		out = append(out, res)
	}
	return out
}

// Markdown renders the report.
func (r *ChaosReport) Markdown() string {
	var b strings.Builder
	b.WriteString(r.Header.Markdown("Chaos report"))
	fmt.Fprintf(&b, "Scale `%s`: builds arrive as a Poisson process at %g/s, each lasting %s; "+
		"three templates capped at %d agents each, MAX_AGENTS %d. Every run ends by checking that every build ran exactly once on its own agent, "+
		"no agent was deleted while its build ran, no pod, Secret or Jenkins node of ours is left (the placeholder node excepted), and no cap was exceeded.\n\n",
		r.Scale.Name, r.Scale.Rate, r.Scale.Duration, r.Scale.PerTemplate, r.Scale.Global)
	b.WriteString("| Scenario | Builds | Seconds | Result | Facts |\n|---|---|---|---|---|\n")
	for _, run := range r.Runs {
		res := "all invariants held"
		if run.Error != "" {
			res = "**ERROR**: " + run.Error
		} else if !run.Invariants.OK() {
			res = invariantsWord(run.Invariants)
		}
		keys := make([]string, 0, len(run.Facts))
		for k := range run.Facts {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var facts []string
		for _, k := range keys {
			facts = append(facts, fmt.Sprintf("%s %g", k, run.Facts[k]))
		}
		fmt.Fprintf(&b, "| %s | %d | %.0f | %s | %s |\n", run.Scenario, run.Builds, run.Seconds, res, strings.Join(facts, ", "))
	}
	for _, run := range r.Runs {
		for _, n := range run.Notes {
			fmt.Fprintf(&b, "\n- %s: %s", run.Scenario, n)
		}
	}
	b.WriteString("\n\n## Fuzzing\n\n")
	if len(r.Fuzz) == 0 {
		b.WriteString("Not run at this scale (`go test ./...` runs every fuzz target's seed corpus).\n")
	} else {
		b.WriteString("| Package | Target | Seconds | Execs | Result |\n|---|---|---|---|---|\n")
		for _, f := range r.Fuzz {
			res := "no crash"
			if !f.OK {
				res = "**FAILED**"
			}
			fmt.Fprintf(&b, "| %s | %s | %.0f | %s | %s |\n", f.Package, f.Target, f.Seconds, f.Execs, res)
		}
	}
	var failed []string
	for _, run := range r.Runs {
		if !run.OK() {
			failed = append(failed, run.Scenario)
		}
	}
	for _, f := range r.Fuzz {
		if !f.OK {
			failed = append(failed, "fuzz "+f.Target)
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(&b, "\n**Failed: %s.**\n", strings.Join(failed, ", "))
	} else {
		b.WriteString("\nEvery scenario passed.\n")
	}
	return b.String()
}

// OK says whether every scenario passed.
func (r *ChaosReport) OK() bool {
	for _, run := range r.Runs {
		if !run.OK() {
			return false
		}
	}
	for _, f := range r.Fuzz {
		if !f.OK {
			return false
		}
	}
	return true
}
