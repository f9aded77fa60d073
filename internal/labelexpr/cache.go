package labelexpr

import "sync"

// Cache remembers what Parse made of each text, so a poll that meets the same expression in many
// queued items (or in every poll) parses it once. It holds at most about twice its size in entries:
// when the current generation is full it becomes the previous one and the one before is dropped,
// so texts still in use survive (they move back on their next lookup) and texts nobody asks for
// any more go. Texts longer than MaxLength are refused without being stored. Safe for concurrent
// use.
type Cache struct {
	mu        sync.Mutex
	size      int
	cur, prev map[string]parsed
}

type parsed struct {
	expr Expr
	err  error
}

// DefaultCacheSize covers a 10 000-item queue in which every item asks for another expression.
const DefaultCacheSize = 10_000

// NewCache returns a cache keeping about size distinct texts (DefaultCacheSize when size < 1).
func NewCache(size int) *Cache {
	if size < 1 {
		size = DefaultCacheSize
	}
	return &Cache{size: size, cur: map[string]parsed{}}
}

// Parse is Parse(s), computed once per distinct s while s stays in the cache. The errors are the
// same values Parse returned.
func (c *Cache) Parse(s string) (Expr, error) {
	if len(s) > MaxLength {
		return Parse(s) // the length check alone: cheap, and nothing huge is kept
	}
	c.mu.Lock()
	if p, ok := c.cur[s]; ok {
		c.mu.Unlock()
		return p.expr, p.err
	}
	if p, ok := c.prev[s]; ok {
		c.put(s, p)
		c.mu.Unlock()
		return p.expr, p.err
	}
	c.mu.Unlock()
	e, err := Parse(s)
	c.mu.Lock()
	c.put(s, parsed{expr: e, err: err})
	c.mu.Unlock()
	return e, err
}

// Len is the number of texts held.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.cur)
	for k := range c.prev {
		if _, dup := c.cur[k]; !dup {
			n++
		}
	}
	return n
}

func (c *Cache) put(s string, p parsed) {
	if len(c.cur) >= c.size {
		c.prev, c.cur = c.cur, make(map[string]parsed, c.size)
	}
	c.cur[s] = p
}
