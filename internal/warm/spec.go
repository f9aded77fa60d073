package warm

import (
	"fmt"
	"strings"
	"time"
)

// DefaultMaxIdleTime is how long a ready agent waits for a build before it is replaced by a fresh
// one, when the template does not say.
const DefaultMaxIdleTime = 30 * time.Minute

// Spec is a template's warm block, defaults applied and validated (by internal/podtemplate). A
// template without one has a nil *Spec: no ready agents, exactly the behaviour without warm.
type Spec struct {
	Idle        int           // ready agents kept at all times
	MaxIdle     int           // upper bound on ready agents from every source; default the template's maxAgents
	MaxIdleTime time.Duration // a ready agent idle this long is replaced by a fresh one
	Schedules   []Schedule
	Adaptive    bool // also keep the Estimator's count
}

// String describes the spec in one line, for `templates check` and `templates render`.
func (s *Spec) String() string {
	if s == nil {
		return "none"
	}
	parts := []string{fmt.Sprintf("idle %d, maxIdle %d, maxIdleTime %s", s.Idle, s.MaxIdle, s.MaxIdleTime)}
	for _, sc := range s.Schedules {
		parts = append(parts, "schedule "+sc.String())
	}
	if s.Adaptive {
		parts = append(parts, "adaptive")
	}
	return strings.Join(parts, ", ")
}

// Source says which part of a Spec set the desired count.
type Source string

const (
	SourceNone     Source = ""         // no ready agents wanted
	SourceIdle     Source = "idle"     // the fixed idle count
	SourceSchedule Source = "schedule" // an active schedule
	SourceAdaptive Source = "adaptive" // the Estimator
)

// Desired is the number of ready agents the template wants at now: min(MaxIdle, max(Idle, every
// active schedule's Idle, est.Count when Adaptive)), and the source of the largest term. On a tie
// the steadier source is named: idle before schedule before adaptive. A nil spec wants none.
//
// The adaptive term counts only while a build arrived within MaxIdleTime: after a longer silence
// an agent kept for the forecast would wait out its maxIdleTime unused, and ready agents go back
// to 0 within maxIdleTime of the last arrival even when it is shorter than the estimate's Window.
func Desired(s *Spec, now time.Time, est Estimate) (int, Source) {
	if s == nil {
		return 0, SourceNone
	}
	n, src := s.Idle, SourceIdle
	for _, sc := range s.Schedules {
		if _, ok := sc.Active(now); ok && sc.Idle > n {
			n, src = sc.Idle, SourceSchedule
		}
	}
	if s.Adaptive && est.Count > n && (s.MaxIdleTime <= 0 || now.Sub(est.Last) < s.MaxIdleTime) {
		n, src = est.Count, SourceAdaptive
	}
	n = min(n, s.MaxIdle)
	if n <= 0 {
		return 0, SourceNone
	}
	return n, src
}

// Expired reports whether a ready agent that has waited for a build since readySince (when its
// agent came online) has waited MaxIdleTime or longer at now, and is to be replaced by a fresh one.
// Without a spec there are no ready agents to expire.
func (s *Spec) Expired(readySince, now time.Time) bool {
	return s != nil && s.MaxIdleTime > 0 && !now.Before(readySince.Add(s.MaxIdleTime))
}
