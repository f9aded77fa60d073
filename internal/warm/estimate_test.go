package warm

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// steady records one arrival every gap from start until end (exclusive).
func steady(e Estimator, start, end time.Time, gap time.Duration) Estimator {
	for t := start; t.Before(end); t = t.Add(gap) {
		e = e.Arrived(t)
	}
	return e
}

func startups(e Estimator, ds ...time.Duration) Estimator {
	for _, d := range ds {
		e = e.Started(d)
	}
	return e
}

// count is the adaptive count for a mean, as the package doc states it.
func count(mean float64) int { return int(math.Ceil(mean + ServiceZ*math.Sqrt(mean) - 1e-9)) }

func TestEstimate(t *testing.T) {
	t0 := mustTime(t, "2026-12-01T10:00:00Z")
	eight := []time.Duration{8 * time.Second}
	tests := []struct {
		name string
		e    func() Estimator
		now  time.Time
		want Estimate
	}{
		{"nothing seen (and after a restart)", func() Estimator { return Estimator{} }, t0, Estimate{}},
		{"arrivals but no start-up measured yet", func() Estimator {
			return steady(Estimator{}, t0, t0.Add(20*time.Minute), 2*time.Second)
		}, t0.Add(20 * time.Minute), Estimate{Rate: 0.5}},
		{"start-up measured, no arrivals", func() Estimator { return startups(Estimator{}, eight...) }, t0, Estimate{Startup: 8 * time.Second}},
		{"steady 0.5/s × 8 s: Little's law gives 4", func() Estimator {
			return startups(steady(Estimator{}, t0, t0.Add(20*time.Minute), 2*time.Second), eight...)
		}, t0.Add(20 * time.Minute), Estimate{Rate: 0.5, Startup: 8 * time.Second, Mean: 4, Count: count(4)}},
		{"rises within a minute of a new load", func() Estimator {
			return startups(steady(Estimator{}, t0, t0.Add(90*time.Second), 2*time.Second), eight...)
		}, t0.Add(90 * time.Second), Estimate{Rate: 0.5, Startup: 8 * time.Second, Mean: 4, Count: count(4)}},
		{"one arrival is not an infinite rate", func() Estimator { return startups(Estimator{}.Arrived(t0), eight...) },
			t0.Add(time.Second), Estimate{Rate: 1.0 / 60, Startup: 8 * time.Second, Mean: 8.0 / 60, Count: count(8.0 / 60)}},
		// At 10:20:05 the window's buckets reach back to 10:10:30 (whole 30 s buckets, 9.5 to 10
		// minutes): arrivals every 2 s up to 10:19:58, 285, over 575 s; 7 s of silence do not
		// yet cap that (ln 100 / 7 s = 0.66/s).
		{"a short silence: the window's rate", func() Estimator {
			return startups(steady(Estimator{}, t0, t0.Add(20*time.Minute), 2*time.Second), eight...)
		}, t0.Add(20*time.Minute + 5*time.Second), Estimate{Rate: 285.0 / 575, Startup: 8 * time.Second, Mean: 8 * 285.0 / 575, Count: count(8 * 285.0 / 575)}},
		// A minute after the last arrival (10:19:58) a rate of 0.5/s is no longer plausible: the
		// silence caps it at ln(100)/62 s.
		{"demand stopped: the silence caps the rate", func() Estimator {
			return startups(steady(Estimator{}, t0, t0.Add(20*time.Minute), 2*time.Second), eight...)
		}, t0.Add(21 * time.Minute), Estimate{Rate: math.Log(100) / 62, Startup: 8 * time.Second, Mean: 8 * math.Log(100) / 62, Count: count(8 * math.Log(100) / 62)}},
		// At 10:25:00 the buckets reach back to 10:15:30: 4.5 minutes of arrivals, 135, over 570 s,
		// capped by the silence of 302 s.
		{"decays as the window slides: half the window left", func() Estimator {
			return startups(steady(Estimator{}, t0, t0.Add(20*time.Minute), 2*time.Second), eight...)
		}, t0.Add(25 * time.Minute), Estimate{Rate: math.Log(100) / 302, Startup: 8 * time.Second, Mean: 8 * math.Log(100) / 302, Count: count(8 * math.Log(100) / 302)}},
		{"zero one window after the last arrival", func() Estimator {
			return startups(steady(Estimator{}, t0, t0.Add(20*time.Minute), 2*time.Second), eight...)
		}, t0.Add(20*time.Minute + Window), Estimate{Startup: 8 * time.Second}},
		{"zero long after", func() Estimator {
			return startups(steady(Estimator{}, t0, t0.Add(20*time.Minute), 2*time.Second), eight...)
		}, t0.Add(48 * time.Hour), Estimate{Startup: 8 * time.Second}},
		{"demand that returns starts from its own beginning", func() Estimator {
			e := steady(Estimator{}, t0, t0.Add(5*time.Minute), 10*time.Second)
			return startups(steady(e, t0.Add(time.Hour), t0.Add(time.Hour+2*time.Minute), time.Second), eight...)
		}, t0.Add(time.Hour + 2*time.Minute), Estimate{Rate: 1, Startup: 8 * time.Second, Mean: 8, Count: count(8)}},
		{"start-up is the median: one slow image pull does not count", func() Estimator {
			return startups(steady(Estimator{}, t0, t0.Add(20*time.Minute), 2*time.Second), 7*time.Second, 9*time.Second, 3*time.Minute)
		}, t0.Add(20 * time.Minute), Estimate{Rate: 0.5, Startup: 9 * time.Second, Mean: 4.5, Count: count(4.5)}},
		{"start-up median of an even count", func() Estimator { return startups(Estimator{}, 6*time.Second, 10*time.Second) }, t0,
			Estimate{Startup: 8 * time.Second}},
		{"start-up keeps the recent samples only", func() Estimator {
			e := startups(Estimator{}, time.Minute, time.Minute, time.Minute)
			for range startupSamples {
				e = e.Started(8 * time.Second)
			}
			return e
		}, t0, Estimate{Startup: 8 * time.Second}},
		{"non-positive start-ups ignored", func() Estimator { return startups(Estimator{}, 0, -time.Second, 8*time.Second) }, t0,
			Estimate{Startup: 8 * time.Second}},
		{"an arrival older than the window is ignored", func() Estimator {
			e := startups(steady(Estimator{}, t0, t0.Add(20*time.Minute), 2*time.Second), eight...)
			return e.Arrived(t0)
		}, t0.Add(20 * time.Minute), Estimate{Rate: 0.5, Startup: 8 * time.Second, Mean: 4, Count: count(4)}},
		{"a late arrival within the window counts", func() Estimator {
			e := startups(steady(Estimator{}, t0, t0.Add(20*time.Minute), 2*time.Second), eight...)
			for range 60 {
				e = e.Arrived(t0.Add(15 * time.Minute))
			}
			return e
		}, t0.Add(20 * time.Minute), Estimate{Rate: 0.6, Startup: 8 * time.Second, Mean: 4.8, Count: count(4.8)}},
	}
	approx := cmpopts.EquateApprox(0.02, 1e-9)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.e().Estimate(tt.now)
			if diff := cmp.Diff(tt.want, got, approx, cmpopts.IgnoreFields(Estimate{}, "Last")); diff != "" {
				t.Errorf("Estimate (-want +got):\n%s", diff)
			}
		})
	}
}

// Last is the latest arrival while the window holds one, for Desired's maxIdleTime rule.
func TestEstimateLast(t *testing.T) {
	t0 := mustTime(t, "2026-12-01T10:00:00Z")
	e := steady(Estimator{}, t0, t0.Add(time.Minute), 2*time.Second)
	for _, tt := range []struct {
		name string
		now  time.Time
		want time.Time
	}{
		{"during arrivals", t0.Add(time.Minute), t0.Add(58 * time.Second)},
		{"in the silence after them", t0.Add(5 * time.Minute), t0.Add(58 * time.Second)},
		{"once the window is empty", t0.Add(time.Minute + Window), time.Time{}},
	} {
		if got := e.Estimate(tt.now).Last; !got.Equal(tt.want) {
			t.Errorf("%s: Last = %s, want %s", tt.name, got, tt.want)
		}
	}
}

// TestEstimatorIsAValue checks that observing returns a new value and leaves the old one alone, so
// the controller can compute on a snapshot without locking.
func TestEstimatorIsAValue(t *testing.T) {
	t0 := mustTime(t, "2026-12-01T10:00:00Z")
	before := Estimator{}.Started(8 * time.Second)
	after := before.Arrived(t0).Arrived(t0.Add(time.Second)).Started(20 * time.Second)
	if got, want := before.Estimate(t0.Add(2*time.Second)), (Estimate{Startup: 8 * time.Second}); !cmp.Equal(got, want) {
		t.Errorf("the original changed: Estimate = %+v, want %+v", got, want)
	}
	if got := after.Estimate(t0.Add(2 * time.Second)); got.Count == 0 {
		t.Errorf("the copy saw nothing: %+v", got)
	}
}

// TestEstimateFallsToZeroWithinMaxIdleTime replays a load that stops and checks the count at
// every poll afterwards: it never rises, and it is zero by one Window, within DefaultMaxIdleTime.
func TestEstimateFallsToZeroWithinMaxIdleTime(t *testing.T) {
	t0 := mustTime(t, "2026-12-01T10:00:00Z")
	stop := t0.Add(5 * time.Minute)
	e := startups(steady(Estimator{}, t0, stop, 500*time.Millisecond), 8*time.Second)
	prev := e.Estimate(stop).Count
	if prev == 0 {
		t.Fatal("no estimate under load")
	}
	zeroAt := time.Duration(-1)
	for d := time.Duration(0); d <= DefaultMaxIdleTime; d += time.Second {
		c := e.Estimate(stop.Add(d)).Count
		if c > prev {
			t.Fatalf("count rose from %d to %d at %s after the load stopped", prev, c, d)
		}
		if c == 0 && zeroAt < 0 {
			zeroAt = d
		}
		prev = c
	}
	if zeroAt < 0 || zeroAt > Window {
		t.Errorf("count reached zero %s after the load stopped, want within %s", zeroAt, Window)
	}
}
