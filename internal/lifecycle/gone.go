package lifecycle

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"
)

// gonePods remembers why agent pods went, from the informer's final state of each deleted pod: a
// pod evicted or OOM-killed under its build is often deleted before a poll sees it, and once it is
// gone only its last state says what killed it (the DisruptionTarget condition the Eviction API
// writes, a container's OOMKilled). Entries are kept for goneTTL, long enough for the next polls.
type gonePods struct {
	mu   sync.Mutex
	list map[string]goneRecord
}

type goneRecord struct {
	reason Reason
	at     time.Time
}

const goneTTL = 10 * time.Minute

func newGonePods() *gonePods { return &gonePods{list: map[string]goneRecord{}} }

// deleted is the pod informer's delete handler.
func (g *gonePods) deleted(obj any, now time.Time) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	r := killedReason(pod)
	if pod.DeletionTimestamp == nil && r.Kind != KindOOMKilled && r.Kind != KindEvicted {
		r = Reason{KindDeletedExternally, "DeletedExternally: the agent pod was deleted by someone else"}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.list[pod.Name] = goneRecord{reason: r, at: now}
}

// snapshot returns the reasons still remembered, forgetting old ones.
func (g *gonePods) snapshot(now time.Time) map[string]Reason {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string]Reason{}
	for name, rec := range g.list {
		if now.Sub(rec.at) > goneTTL {
			delete(g.list, name)
			continue
		}
		out[name] = rec.reason
	}
	return out
}
