package lifecycle

import (
	"sort"
	"sync"
	"time"
)

// templateLoad is what the plan needs to know about one template in one poll.
type templateLoad struct {
	Name string
	// Waiting is the number of builds waiting for this template.
	Waiting int
	// Ready counts agents not yet busy that will serve a waiting build: starting, idle, and creations
	// still on their way into the informer cache.
	Ready int
	// Live counts every pod of the template that exists or is being created (busy, terminating,
	// retained included): what maxAgents limits.
	Live int
	// MaxAgents is the template's cap.
	MaxAgents int
	// OldestWaiting orders templates for the global cap: the longest-waiting build goes first.
	OldestWaiting time.Time
	// BackedOff is true while the template waits after a failure.
	BackedOff bool
	// Probing is true after a failure until an agent of the template comes online: one agent at a
	// time finds out whether the cause is gone, rather than a whole batch failing again (a full
	// quota would otherwise refuse every waiting build's agent on every retry).
	Probing bool
}

// planCreates decides how many agents to create per template: the builds waiting minus the agents
// that will serve them, within the template's cap and what is left of the global cap. Templates whose
// builds have waited longest get the global capacity first, so one busy label cannot starve another
// forever. globalLive counts every live agent pod of ours; maxAgents <= 0 means no global cap.
func planCreates(loads []templateLoad, globalLive, maxAgents int) map[string]int {
	ordered := append([]templateLoad(nil), loads...)
	sort.SliceStable(ordered, func(i, j int) bool {
		return ordered[i].OldestWaiting.Before(ordered[j].OldestWaiting)
	})
	globalRoom := -1
	if maxAgents > 0 {
		globalRoom = max(maxAgents-globalLive, 0)
	}
	out := map[string]int{}
	for _, l := range ordered {
		if l.BackedOff {
			continue
		}
		n := l.Waiting - l.Ready
		if l.Probing {
			n = min(n, 1-l.Ready)
		}
		if l.MaxAgents > 0 {
			n = min(n, l.MaxAgents-l.Live)
		}
		if globalRoom >= 0 {
			n = min(n, globalRoom)
			globalRoom -= max(n, 0)
		}
		if n > 0 {
			out[l.Name] = n
		}
	}
	return out
}

// backoff is a per-template exponential backoff after failures: base, 2×base, 4×base … capped.
type backoff struct {
	mu        sync.Mutex
	base, cap time.Duration
	failures  map[string]int
	until     map[string]time.Time
}

func newBackoff(base, limit time.Duration) *backoff {
	return &backoff{base: base, cap: limit, failures: map[string]int{}, until: map[string]time.Time{}}
}

// fail records a failure and returns how long the template now waits.
func (b *backoff) fail(template string, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures[template]++
	d := b.base
	for i := 1; i < b.failures[template] && d < b.cap; i++ {
		d *= 2
	}
	d = min(d, b.cap)
	b.until[template] = now.Add(d)
	return d
}

// succeed forgets a template's failures: an agent of it came online.
func (b *backoff) succeed(template string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.failures, template)
	delete(b.until, template)
}

// probing reports whether the template failed since an agent of it last came online.
func (b *backoff) probing(template string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failures[template] > 0
}

// active reports whether the template is still waiting, and until when.
func (b *backoff) active(template string, now time.Time) (bool, time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	u, ok := b.until[template]
	return ok && now.Before(u), u
}
