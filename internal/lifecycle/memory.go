package lifecycle

import (
	"maps"
	"time"

	"github.com/jenkins-agent-provisioner/provisioner/internal/warm"
)

// Memory is what must survive from one poll to the next because the world does not show it: the
// per-template failure backoff, when a template's surplus began (release grace), the one-shot keys
// of Events and metrics, and the recent failures the status page lists. A restart forgets it, which
// costs at most one early retry, one grace period or a repeated Event. Creation expectations are not
// here: they belong to the steps in flight (see expectations) and reach decide through the snapshot.
type Memory struct {
	Backoff map[string]Backoff
	// SurplusSince is when a template first had more ready agents than waiting builds.
	SurplusSince map[string]time.Time
	// Seen holds one-shot keys ("online/NAME", "busy/NAME", "failed/NAME", "unserved/LABEL") and
	// when they were first seen.
	Seen map[string]time.Time
	// Failures are the most recent failures, newest first, at most keptFailures.
	Failures []FailureRecord
	// Estimators are the warm templates' adaptive estimates (decide_warm.go): the one piece of
	// ready-agent state that lives only here, restarting from zero.
	Estimators map[string]warm.Estimator
	// JenkinsDownSince is when the Jenkins view stopped being fresh (zero while it is); JenkinsBack
	// is when it was fresh again after the last outage. Jenkins down or starting is no evidence
	// about agents, and the time it was down does not count against them.
	JenkinsDownSince, JenkinsBack time.Time
	// Builds is the build each busy agent runs, by agent, kept while the agent exists: a Kueue
	// eviction is told with the build it took, and by then Jenkins may show none on the node.
	Builds map[string]string
	// JenkinsRestarting: the outage under way showed Jenkins' start-up page.
	JenkinsRestarting bool
}

// Backoff is one template's state after failures: base, 2×base, 4×base … capped, from the last one.
type Backoff struct {
	Failures int
	Until    time.Time
	// Last is the latest failure, which the status page names when builds wait for the backoff.
	Last Reason
	// Raised is when the last failure doubled the wait: agents made before it and failing for the
	// same cause are the same wave (see fail).
	Raised time.Time
}

// NewMemory is the memory of a controller that has not polled yet.
func NewMemory() Memory {
	return Memory{Backoff: map[string]Backoff{}, SurplusSince: map[string]time.Time{}, Seen: map[string]time.Time{}, Builds: map[string]string{},
		Estimators: map[string]warm.Estimator{}}
}

// clone copies the memory so that decide never changes the one it was given.
func (m Memory) clone() Memory {
	out := Memory{Backoff: maps.Clone(m.Backoff), SurplusSince: maps.Clone(m.SurplusSince), Seen: maps.Clone(m.Seen),
		Failures: append([]FailureRecord(nil), m.Failures...), JenkinsDownSince: m.JenkinsDownSince, JenkinsBack: m.JenkinsBack,
		JenkinsRestarting: m.JenkinsRestarting, Builds: maps.Clone(m.Builds), Estimators: maps.Clone(m.Estimators)}
	if out.Builds == nil {
		out.Builds = map[string]string{}
	}
	if out.Estimators == nil {
		out.Estimators = map[string]warm.Estimator{}
	}
	if out.Backoff == nil {
		out.Backoff = map[string]Backoff{}
	}
	if out.SurplusSince == nil {
		out.SurplusSince = map[string]time.Time{}
	}
	if out.Seen == nil {
		out.Seen = map[string]time.Time{}
	}
	return out
}

// seenKeysLimit is when one-shot keys older than an hour start being forgotten.
const seenKeysLimit = 10000

// once reports whether key is seen for the first time.
func (m *Memory) once(key string, now time.Time) bool {
	if _, ok := m.Seen[key]; ok {
		return false
	}
	m.Seen[key] = now
	if len(m.Seen) > seenKeysLimit {
		for k, t := range m.Seen {
			if now.Sub(t) > time.Hour {
				delete(m.Seen, k)
			}
		}
	}
	return true
}

// fail records a failure of template at time at and returns how long the template now waits. made
// is when the failed agent was made (zero: unknown). A wave of failures that share one cause backs
// the template off once: an agent made before the backoff last doubled, failing for the same kind
// of reason, was already on its way when that cause was learned, so it tells nothing new (six gated
// pods timing out in one poll would otherwise double the wait six times, 5 s to 160 s).
func (m *Memory) fail(template string, r Reason, at, made time.Time, cfg DecideConfig) time.Duration {
	b := m.Backoff[template]
	if b.Failures > 0 && b.Last.Kind == r.Kind && !made.IsZero() && made.Before(b.Raised) {
		b.Last = r
		m.Backoff[template] = b
		return max(b.Until.Sub(at), 0)
	}
	b.Failures++
	b.Raised = at
	d := cfg.BackoffBase
	for i := 1; i < b.Failures && d < cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, cfg.BackoffMax)
	b.Until, b.Last = at.Add(d), r
	m.Backoff[template] = b
	return d
}

// recordFailure keeps a failure for the status page.
func (m *Memory) recordFailure(rec FailureRecord) {
	m.Failures = append([]FailureRecord{rec}, m.Failures...)
	if len(m.Failures) > keptFailures {
		m.Failures = m.Failures[:keptFailures]
	}
}
