package lifecycle

import (
	"sort"
	"sync"
	"time"
)

// Creation is a provisioning step counted before the informer shows its pod: a step in flight, or
// one that created its pod a moment ago. Creations count against the per-template and global caps
// (the ReplicaSet controller's "expectations").
type Creation struct {
	Name     string
	Template string
}

// unobservedLimit bounds how long a created pod may stay unseen by the informer before its
// expectation is dropped: the informer lost the event, and its re-list is the truth.
const unobservedLimit = time.Minute

// expectations are the creations under way, keyed by agent name. An expectation is forgotten only
// once its step has ended: at once if the step failed, else when the informer shows the pod (or
// unobservedLimit after the step ended). A slow step therefore never stops counting while it runs.
type expectations struct {
	mu sync.Mutex
	m  map[string]*expectation
}

type expectation struct {
	template string
	ended    bool // the step returned
	endedAt  time.Time
	observed bool // the informer showed the pod
}

func newExpectations() *expectations { return &expectations{m: map[string]*expectation{}} }

// expect records a creation about to start.
func (e *expectations) expect(name, template string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[name] = &expectation{template: template}
}

// observed notes that the informer shows the pod.
func (e *expectations) observed(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[name]; ok {
		if x.ended {
			delete(e.m, name)
			return
		}
		x.observed = true
	}
}

// ended notes that the creation step returned; created says whether its pod now exists.
func (e *expectations) ended(name string, created bool, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[name]
	if !ok {
		return
	}
	if !created || x.observed {
		delete(e.m, name)
		return
	}
	x.ended, x.endedAt = true, now
}

// list returns the creations still counted, sorted by name, and drops those unseen for too long.
func (e *expectations) list(now time.Time) []Creation {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Creation, 0, len(e.m))
	for name, x := range e.m {
		if x.ended && now.Sub(x.endedAt) > unobservedLimit {
			delete(e.m, name)
			continue
		}
		out = append(out, Creation{Name: name, Template: x.template})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
