package jenkinstest

import (
	"math/rand/v2"
	"sync"
	"time"
)

// Faults injects the failures a client meets in front of a real Jenkins: slow answers, HTML 5xx
// pages, connections reset mid-request and whole outages. Decisions come from a seeded generator,
// one draw per request in arrival order, so a sequential test sees the same faults on every run.
type Faults struct {
	mu          sync.Mutex
	seed        uint64
	rng         *rand.Rand
	latency     time.Duration
	errRate     float64
	errStatuses []int
	resetRate   float64
	outageFrom  time.Time
	outageUntil time.Time
	only        map[string]bool
	counts      FaultCounts
}

// FaultCounts says how many requests each kind of fault hit.
type FaultCounts struct {
	Delayed, Errors, Resets, Outage int64
}

func newFaults() *Faults {
	f := &Faults{}
	f.Seed(1)
	return f
}

// Seed restarts the decision sequence.
func (f *Faults) Seed(seed uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seed = seed
	f.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// SetLatency delays every (selected) request by d.
func (f *Faults) SetLatency(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latency = d
}

// SetErrorRate makes that fraction of requests fail with an HTML error page, the status picked
// from statuses in turn by the generator (default 500, 502, 503).
func (f *Faults) SetErrorRate(rate float64, statuses ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(statuses) == 0 {
		statuses = []int{500, 502, 503}
	}
	f.errRate, f.errStatuses = rate, statuses
}

// SetResetRate makes that fraction of requests end with the TCP connection reset and no answer.
func (f *Faults) SetResetRate(rate float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resetRate = rate
}

// SetOutage makes every request between from and until fail with 503, as during a restart.
func (f *Faults) SetOutage(from, until time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.outageFrom, f.outageUntil = from, until
}

// OutageFor starts an outage now, lasting d.
func (f *Faults) OutageFor(d time.Duration) {
	now := time.Now()
	f.SetOutage(now, now.Add(d))
}

// Only limits the faults to these endpoints (Stats names, e.g. "queue", "computers"); none means
// every endpoint, including the agents' connection.
func (f *Faults) Only(endpoints ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.only = nil
	if len(endpoints) > 0 {
		f.only = map[string]bool{}
		for _, e := range endpoints {
			f.only[e] = true
		}
	}
}

// Clear removes every fault (the generator keeps its position).
func (f *Faults) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latency, f.errRate, f.resetRate, f.only = 0, 0, 0, nil
	f.outageFrom, f.outageUntil = time.Time{}, time.Time{}
}

// Counts reports the faults injected so far.
func (f *Faults) Counts() FaultCounts {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts
}

type faultDecision struct {
	latency time.Duration
	status  int // 0: none
	reset   bool
	outage  bool
}

func (f *Faults) decide(endpoint string, now time.Time) faultDecision {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.only != nil && !f.only[endpoint] {
		return faultDecision{}
	}
	var d faultDecision
	if !f.outageUntil.IsZero() && !now.Before(f.outageFrom) && now.Before(f.outageUntil) {
		f.counts.Outage++
		d.outage = true
		return d
	}
	// Always draw the same numbers per request, so that changing one rate does not shift the
	// decisions of the other.
	e, pick, r := f.rng.Float64(), f.rng.IntN(1<<30), f.rng.Float64()
	if f.latency > 0 {
		d.latency = f.latency
		f.counts.Delayed++
	}
	switch {
	case r < f.resetRate:
		d.reset = true
		f.counts.Resets++
	case e < f.errRate:
		d.status = f.errStatuses[pick%len(f.errStatuses)]
		f.counts.Errors++
	}
	return d
}

// Stats counts requests and response bytes per endpoint.
type Stats struct {
	Endpoints map[string]EndpointStats
}

// EndpointStats is one endpoint's traffic.
type EndpointStats struct {
	Requests int64
	Bytes    int64
	Status   map[int]int64
}

// Requests is the number of requests to endpoint (0 when none).
func (s Stats) Requests(endpoint string) int64 { return s.Endpoints[endpoint].Requests }

// Total is the number of requests to all endpoints.
func (s Stats) Total() int64 {
	var n int64
	for _, e := range s.Endpoints {
		n += e.Requests
	}
	return n
}

type statsCollector struct {
	mu sync.Mutex
	m  map[string]*EndpointStats
}

func newStatsCollector() *statsCollector { return &statsCollector{m: map[string]*EndpointStats{}} }

func (c *statsCollector) record(endpoint string, status int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[endpoint]
	if e == nil {
		e = &EndpointStats{Status: map[int]int64{}}
		c.m[endpoint] = e
	}
	e.Requests++
	e.Bytes += bytes
	e.Status[status]++
}

// Stats returns a copy of the traffic counters. Endpoint names: root, queue, queueItem,
// cancelItem, computers, computer, createNode, deleteNode, disconnect, toggleOffline,
// changeOfflineCause, jnlp, crumb, job, build, run, label, page (HTML pages), wsagents, other.
func (s *Server) Stats() Stats {
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	out := Stats{Endpoints: map[string]EndpointStats{}}
	for k, v := range s.stats.m {
		st := map[int]int64{}
		for code, n := range v.Status {
			st[code] = n
		}
		out.Endpoints[k] = EndpointStats{Requests: v.Requests, Bytes: v.Bytes, Status: st}
	}
	return out
}

// ResetStats zeroes the traffic counters.
func (s *Server) ResetStats() {
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	s.stats.m = map[string]*EndpointStats{}
}
