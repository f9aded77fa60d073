package warm

import (
	"math"
	"slices"
	"time"
)

// The adaptive estimate's parameters.
const (
	// Window is how far back arrivals count. It is a sliding window, not an exponential decay, so
	// the estimate is exactly zero one Window after the last arrival: ready agents kept for demand
	// that stopped go well within the default maxIdleTime.
	Window = 10 * time.Minute
	// MinWindow is the shortest span a rate is taken over. While demand has run for less than
	// Window (it just began, or the provisioner just started), the rate is arrivals over the time
	// since the first of them, so the estimate rises within a minute of a load instead of ten; the
	// floor keeps the first arrival from reading as an infinite rate.
	MinWindow = time.Minute
	// SilenceLevel caps the rate by the silence since the last arrival: a Poisson stream of rate λ
	// stays silent for g with probability e^(−λg), so after a silence g no rate above
	// ln(1/SilenceLevel)/g is plausible. When demand stops, the estimate follows within seconds
	// instead of waiting for the window to empty; in steady demand the cap binds in 1% of gaps.
	SilenceLevel = 0.01
	// ServiceZ is the margin for the randomness of arrivals: the builds arriving during one
	// start-up are close to Poisson with mean L, so L + z·√L ready agents (normal approximation)
	// rarely run out. z = 3 rather than the 2.33 of a 99% normal quantile, because the Poisson tail
	// is heavier for small L and the rate itself is an estimate; on the decide-loop model
	// (TestAdaptiveSizingModel) 2.33 missed a 2 s p99 in 8 of 20 runs at 0.5 builds/s, 3 in 1.
	ServiceZ = 3

	bucketWidth    = 30 * time.Second
	buckets        = int(Window / bucketWidth)
	startupSamples = 16
)

// Estimator holds a template's recent arrivals and start-up times. It is a small value: its
// methods return an updated copy and never change the receiver, so the controller can keep one per
// template and replace it after each observation. The zero Estimator has seen nothing. It lives
// only in memory: after a restart it starts from zero and refills from the demand it observes.
type Estimator struct {
	counts  [buckets]uint32 // arrivals per 30 s bucket; bucket b lives at counts[b % buckets]
	head    int64           // number of the newest bucket (Unix time / bucketWidth); valid when total > 0
	total   int             // sum of counts
	since   time.Time       // first arrival of the current run of demand (the window was empty before it)
	last    time.Time       // latest arrival
	startup [startupSamples]time.Duration
	nStart  int // start-up samples recorded; the newest is at (nStart-1) % startupSamples
}

// Estimate is the adaptive count and what it is made of, for the desired-count metric.
type Estimate struct {
	Rate    float64       // builds arriving per second, over the window
	Startup time.Duration // median of the recent start-up times (created → agent online); 0 until one is measured
	Mean    float64       // Rate × Startup: builds that arrive while one agent starts (Little's law)
	Count   int           // ready agents to keep: ⌈Mean + ServiceZ·√Mean⌉, 0 when Mean is 0
	Last    time.Time     // the latest arrival in the window; zero when there is none
}

func bucketOf(t time.Time) int64 { return t.UnixNano() / int64(bucketWidth) }

// slot is bucket b's place in the ring (b is negative only for times before 1970).
func slot(b int64) int { return int(((b % int64(buckets)) + int64(buckets)) % int64(buckets)) }

// advance drops the buckets that fall out of the window ending in bucket b.
func (e *Estimator) advance(b int64) {
	if e.total == 0 || b <= e.head {
		if e.total == 0 {
			e.head = b
		}
		return
	}
	if b-e.head >= int64(buckets) {
		e.counts, e.total, e.head = [buckets]uint32{}, 0, b
		return
	}
	for x := e.head + 1; x <= b; x++ {
		i := slot(x)
		e.total -= int(e.counts[i])
		e.counts[i] = 0
	}
	e.head = b
}

// Arrived records a build for the template first seen at at (the controller's clock, the same one
// that gives Estimate its now). An arrival older than the window is ignored.
func (e Estimator) Arrived(at time.Time) Estimator {
	b := bucketOf(at)
	if e.total > 0 && b <= e.head-int64(buckets) {
		return e
	}
	e.advance(b)
	if e.total == 0 || at.Before(e.since) {
		e.since = at
	}
	if e.total == 0 || at.After(e.last) {
		e.last = at
	}
	if i := slot(b); e.counts[i] < math.MaxUint32 {
		e.counts[i]++
		e.total++
	}
	return e
}

// Started records one agent's measured start-up time: from its creation (Queued) to its agent
// being online in Jenkins. Non-positive durations are ignored.
func (e Estimator) Started(d time.Duration) Estimator {
	if d <= 0 {
		return e
	}
	e.startup[e.nStart%startupSamples] = d
	e.nStart++
	return e
}

// Estimate is the adaptive count at now. Until a start-up time has been measured it is zero: the
// first agents for new demand are started cold and measure it.
func (e Estimator) Estimate(now time.Time) Estimate {
	e.advance(bucketOf(now))
	var est Estimate
	if n := min(e.nStart, startupSamples); n > 0 {
		s := slices.Clone(e.startup[:n])
		slices.Sort(s)
		est.Startup = s[n/2]
		if n%2 == 0 {
			est.Startup = (s[n/2-1] + s[n/2]) / 2
		}
	}
	if e.total == 0 {
		return est
	}
	est.Last = e.last
	// The window's buckets cover from the start of the oldest one to now; while demand is younger
	// than that, only since it began.
	span := now.Sub(time.Unix(0, (e.head-int64(buckets)+1)*int64(bucketWidth)))
	span = max(min(span, now.Sub(e.since)), MinWindow)
	est.Rate = float64(e.total) / span.Seconds()
	if gap := now.Sub(e.last).Seconds(); gap > 0 {
		est.Rate = min(est.Rate, math.Log(1/SilenceLevel)/gap)
	}
	est.Mean = est.Rate * est.Startup.Seconds()
	if est.Mean > 0 {
		// The small tolerance keeps float noise (4.000000001) from adding an agent.
		est.Count = int(math.Ceil(est.Mean + ServiceZ*math.Sqrt(est.Mean) - 1e-9))
	}
	return est
}
