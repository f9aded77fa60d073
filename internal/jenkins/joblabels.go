package jenkins

import (
	"container/list"
	"sync"
	"time"
)

// defaultJobLabelCacheSize bounds the job-label cache: job paths come from the queue, so without a
// bound every job ever queued (and every URL a queue item ever carried) would stay in memory.
const defaultJobLabelCacheSize = 4096

// jobLabelCache is a least-recently-used map from job path to label expression, bounded in entries.
// Each entry is a short path and a label expression of at most labelexpr.MaxLength bytes.
type jobLabelCache struct {
	mu    sync.Mutex
	size  int
	order *list.List // front: most recently used; values are *jobLabelEntry
	byKey map[string]*list.Element
}

type jobLabelEntry struct {
	path string
	expr string
	at   time.Time
}

func newJobLabelCache(size int) *jobLabelCache {
	if size < 1 {
		size = defaultJobLabelCacheSize
	}
	return &jobLabelCache{size: size, order: list.New(), byKey: map[string]*list.Element{}}
}

// get returns the expression cached for path if it was stored less than ttl before now.
func (c *jobLabelCache) get(path string, now time.Time, ttl time.Duration) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[path]
	if !ok {
		return "", false
	}
	e := el.Value.(*jobLabelEntry)
	if now.Sub(e.at) >= ttl {
		c.order.Remove(el)
		delete(c.byKey, path)
		return "", false
	}
	c.order.MoveToFront(el)
	return e.expr, true
}

func (c *jobLabelCache) put(path, expr string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[path]; ok {
		el.Value = &jobLabelEntry{path: path, expr: expr, at: at}
		c.order.MoveToFront(el)
		return
	}
	c.byKey[path] = c.order.PushFront(&jobLabelEntry{path: path, expr: expr, at: at})
	for c.order.Len() > c.size {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.byKey, oldest.Value.(*jobLabelEntry).path)
	}
}

func (c *jobLabelCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
