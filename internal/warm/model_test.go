package warm

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// modelSeed fixes the arrivals, so the model is the same every run.
const modelSeed = 13

// modelRun is what one simulated run of the sizing loop measured.
type modelRun struct {
	builds        int
	p50, p99      float64 // queue → agent, seconds, builds arriving after the first minute
	p99All        float64 // the same over every build, the first minute's included
	waste         float64 // ready-agent idle pod-seconds while arrivals last
	lowerBound    float64 // arrival rate × start-up time × seconds of arrivals (Little's law)
	zeroAfterStop time.Duration
}

// runModel plays the decide loop the controller will run, on a virtual clock: Poisson arrivals for
// a template at lambda per second for six minutes, every agent taking startup to come online, one
// decision per second with Desired and Fit (no caps), each build taking a ready agent as soon as
// one is online (Jenkins hands a waiting build to an idle agent at once), surplus agents released
// once they have been surplus for the release grace. adaptive false is today's cold start.
func runModel(t *testing.T, seed uint64, lambda float64, startup time.Duration, adaptive bool) modelRun {
	t.Helper()
	// releaseGrace is PROVISIONER_RELEASE_GRACE's default.
	const step, poll, releaseGrace = 100 * time.Millisecond, time.Second, 10 * time.Second
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	stop := t0.Add(6 * time.Minute)
	rng := rand.New(rand.NewPCG(seed, uint64(lambda*1000)))
	var arrivals []time.Time
	for at := t0; at.Before(stop); at = at.Add(time.Duration(rng.ExpFloat64() / lambda * float64(time.Second))) {
		arrivals = append(arrivals, at)
	}
	spec := &Spec{MaxIdle: 1000, MaxIdleTime: DefaultMaxIdleTime, Adaptive: adaptive}
	var (
		est     Estimator
		agents  []time.Time // online times of agents with no build yet, soonest first
		waiting []time.Time // arrival times of builds waiting
		waits   []float64
		all     []float64
		run     = modelRun{builds: len(arrivals), lowerBound: lambda * startup.Seconds() * stop.Sub(t0).Seconds(), zeroAfterStop: -1}
		next    int
		// surplusSince is when the agents began to outnumber the waiting builds and the headroom.
		surplusSince time.Time
	)
	for now := t0; now.Before(stop.Add(Window + time.Minute)); now = now.Add(step) {
		for ; next < len(arrivals) && !arrivals[next].After(now); next++ {
			waiting = append(waiting, arrivals[next])
			est = est.Arrived(now)
		}
		for len(waiting) > 0 && len(agents) > 0 && !agents[0].After(now) {
			all = append(all, now.Sub(waiting[0]).Seconds())
			if waiting[0].Sub(t0) >= time.Minute {
				waits = append(waits, now.Sub(waiting[0]).Seconds())
			}
			waiting, agents = waiting[1:], agents[1:]
		}
		for _, online := range agents {
			if !online.After(now) && now.Before(stop) {
				run.waste += step.Seconds()
			}
		}
		if now.Sub(t0)%poll != 0 {
			continue
		}
		e := est.Estimate(now)
		if !now.Before(stop) && e.Count == 0 && run.zeroAfterStop < 0 {
			run.zeroAfterStop = now.Sub(stop)
		}
		n, _ := Desired(spec, now, e)
		p := Fit([]Load{{Name: "t", Waiting: len(waiting), Free: len(agents), Ready: n}}, Capacity{})[0]
		// Surplus goes once it has lasted releaseGrace, as the controller's release does; the
		// youngest go, so the ones online soonest stay.
		switch keep := len(waiting) + p.Keep; {
		case len(agents) <= keep:
			surplusSince = time.Time{}
		case surplusSince.IsZero():
			surplusSince = now
		case now.Sub(surplusSince) >= releaseGrace:
			agents, surplusSince = agents[:keep], time.Time{}
		}
		for range p.Demand + p.Headroom {
			agents = append(agents, now.Add(startup))
			est = est.Started(startup) // measured when it comes online; the value is the same
		}
		slices.SortFunc(agents, func(a, b time.Time) int { return a.Compare(b) })
	}
	slices.Sort(waits)
	run.p50, run.p99 = waits[len(waits)/2], waits[len(waits)*99/100]
	slices.Sort(all)
	run.p99All = all[len(all)*99/100]
	return run
}

// TestAdaptiveSizingModel checks the adaptive policy against the targets on the model of
// the decide loop: with 8 s start-ups, cold builds wait the start-up; warm builds (after the first
// minute, once a start-up has been measured and the rate is known) wait ≤ 1 s at p50 and ≤ 2 s at
// p99, the idle pod-seconds of ready agents stay within 1.5 × Little's lower bound once several
// builds arrive per start-up, and the estimate is zero within Window after arrivals stop.
func TestAdaptiveSizingModel(t *testing.T) {
	const startup = 8 * time.Second
	for _, tt := range []struct {
		lambda   float64
		maxWaste float64 // × the lower bound; a low rate cannot meet 1.5 (a ready agent waits long between builds)
	}{
		{0.25, 2.5},
		{0.5, 1.5},
		{1, 1.5},
	} {
		cold := runModel(t, modelSeed, tt.lambda, startup, false)
		warm := runModel(t, modelSeed, tt.lambda, startup, true)
		t.Logf("λ=%.2f/s (%d builds): cold p50 %.1fs p99 %.1fs; warm p50 %.1fs p99 %.1fs (whole run %.1fs), waste %.0f pod-s = %.2f × lower bound %.0f, zero %s after the stop",
			tt.lambda, warm.builds, cold.p50, cold.p99, warm.p50, warm.p99, warm.p99All, warm.waste, warm.waste/warm.lowerBound, warm.lowerBound, warm.zeroAfterStop)
		if cold.p50 < startup.Seconds()-1 {
			t.Errorf("λ=%.2f: cold p50 %.1fs, want about the %s start-up (the model is broken)", tt.lambda, cold.p50, startup)
		}
		if warm.p50 > 1 || warm.p99 > 2 {
			t.Errorf("λ=%.2f: warm p50 %.1fs p99 %.1fs, want ≤ 1s and ≤ 2s", tt.lambda, warm.p50, warm.p99)
		}
		if r := warm.waste / warm.lowerBound; r > tt.maxWaste {
			t.Errorf("λ=%.2f: waste %.2f × the lower bound, want ≤ %.1f", tt.lambda, r, tt.maxWaste)
		}
		if warm.zeroAfterStop < 0 || warm.zeroAfterStop > Window {
			t.Errorf("λ=%.2f: estimate zero %s after arrivals stopped, want within %s", tt.lambda, warm.zeroAfterStop, Window)
		}
	}
}

// TestAdaptiveSizingOverSeeds runs the model with 30 arrival seeds per rate, so the targets hold
// for the policy and not for one lucky sequence. With L = λ × start-up builds arriving per start-up,
// the ready agents beyond the start-ups in flight are about ServiceZ·√L, so waste ÷ Little's bound
// is about ServiceZ/√L: the 1.5 is within reach from L ≈ 4 (0.5 builds/s per template at an
// 8 s start-up). Below that, a 2 s p99 costs more than 1.5 × the bound, and with ~70 builds after
// the first minute one burst of arrivals decides a run's p99.
func TestAdaptiveSizingOverSeeds(t *testing.T) {
	const startup, seeds = 8 * time.Second, 30
	for _, tt := range []struct {
		lambda   float64
		maxMiss  int     // runs whose p99 may exceed 2 s
		maxWaste float64 // mean over the runs, × the lower bound
	}{
		{0.25, 6, 2.5},
		{0.5, 1, 1.5},
		{1, 1, 1.5},
		{2, 1, 1.5},
	} {
		miss, waste, worst := 0, 0.0, 0.0
		for seed := uint64(1); seed <= seeds; seed++ {
			r := runModel(t, seed, tt.lambda, startup, true)
			if r.p99 > 2 {
				miss++
			}
			waste += r.waste / r.lowerBound / seeds
			worst = max(worst, r.p99)
		}
		t.Logf("λ=%.2f/s: p99 > 2 s in %d of %d runs (worst %.1f s), waste %.2f × the lower bound", tt.lambda, miss, seeds, worst, waste)
		if miss > tt.maxMiss {
			t.Errorf("λ=%.2f: p99 > 2 s in %d of %d runs, want at most %d", tt.lambda, miss, seeds, tt.maxMiss)
		}
		if waste > tt.maxWaste {
			t.Errorf("λ=%.2f: waste %.2f × the lower bound, want ≤ %.1f", tt.lambda, waste, tt.maxWaste)
		}
	}
}
