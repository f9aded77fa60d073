package jenkinstest

import (
	"slices"
	"sort"
	"time"

	"go.uber.org/zap"
)

// leftItemTTL is how long Queue.leftItems keeps an item that left the queue.
const leftItemTTL = 5 * time.Minute

// maintain is Queue.maintain(): quiet periods end, blocked items are re-checked, and each
// buildable item is offered every idle executor; the executors that refuse it leave their reasons
// on the item (transientCausesOfBlockage) for `why`. Jenkins runs it on every queue or node
// change, so an idle agent gets a build within milliseconds; so does the emulator. Callers hold
// s.mu.
func (s *Server) maintain() {
	if s.closed || s.phase != phaseUp {
		return // down or starting: no queue runs (Jenkins' Queue is not loaded yet)
	}
	now := time.Now()
	for id, it := range s.left {
		if now.Sub(it.leftAt) > leftItemTTL {
			delete(s.left, id) // Queue.leftItems forgets after five minutes
		}
	}
	// Placeholder tasks created by a flyweight start are scheduled during the pass; a few rounds
	// let them reach an executor in the same call, as they would within one Jenkins tick.
	for round := 0; round < 4; round++ {
		if !s.maintainOnce(now) {
			break
		}
	}
	s.armWake(now)
}

// maintainOnce does one pass and reports whether new items appeared.
func (s *Server) maintainOnce(now time.Time) bool {
	created := false
	// waiting -> blocked/buildable, in the waiting list's order (timestamp, then id).
	waiting := s.itemsIn(stateWaiting)
	sort.SliceStable(waiting, func(i, j int) bool {
		if !waiting[i].timestamp.Equal(waiting[j].timestamp) {
			return waiting[i].timestamp.Before(waiting[j].timestamp)
		}
		return waiting[i].id < waiting[j].id
	})
	for _, it := range waiting {
		if now.Before(it.timestamp) {
			continue
		}
		it.buildableAt = now
		if s.blocked(it) {
			s.moveTo(it, stateBlocked)
		} else {
			s.moveTo(it, stateBuildable)
		}
	}
	for _, it := range s.itemsIn(stateBlocked) {
		if !s.blocked(it) {
			s.moveTo(it, stateBuildable)
		}
	}

	// Every idle executor is offered to the buildable items in turn (Queue.maintain's parked
	// executors), in computer order. Whether a node takes an item depends only on the node and the
	// item's label, and within one pass executors are only ever taken, never freed, so items are
	// handled per label: one cursor per label walks the parked executors once for the whole pass,
	// and the refusals of items left waiting are built once per label and shared by those items
	// (Jenkins builds them per item and executor: a thousand items and a thousand nodes made a
	// million refusals per pass).
	var parked []offer
	for _, n := range s.computers() {
		for _, e := range n.executors {
			if e.idle() {
				parked = append(parked, offer{n, e})
			}
		}
	}
	type labelOffers struct {
		next    int       // parked[:next] holds no executor that could still take this label
		refused *refusals // what a waiting item of this label was last told
		takenAt int       // value of taken when refused was built; -1 before
	}
	byLabel := map[string]*labelOffers{}
	taken := 0 // executors reserved so far in this pass
	refusalsNow := map[string]*refusals{}
	s.holds = s.holds[:0]
	for _, it := range s.itemsIn(stateBuildable) {
		if it.continued {
			s.holds = append(s.holds, it)
		}
	}
	for _, it := range s.itemsIn(stateBuildable) {
		if it.placeholder == nil && it.job.kind == kindPipeline {
			// A WorkflowJob is a FlyweightTask: it runs on a one-off executor of the built-in node
			// at once, whatever the executors, and its node('...') step becomes a new item.
			s.startFlyweight(it, now)
			created = true
			continue
		}
		lbl, hasLabel := s.itemLabel(it)
		key := ""
		if hasLabel {
			key = lbl.key
		}
		if it.continued {
			// A resumed node block is refused and accepted by other rules than demand of the same
			// label (EnforceSelfLabel, ContinuedTask.Scheduler), so it gets its own cursor and refusals.
			key = "continued:" + key
		}
		lo := byLabel[key]
		if lo == nil {
			lo = &labelOffers{takenAt: -1}
			byLabel[key] = lo
		}
		for lo.next < len(parked) {
			o := parked[lo.next]
			if o.e.idle() && s.offerRefusal(o.n, lbl, hasLabel, it).kind == accepted {
				break
			}
			lo.next++
		}
		if lo.next < len(parked) {
			o := parked[lo.next]
			it.transient = nil
			s.assign(it, o.n, o.e, now)
			taken++
			if it.continued {
				s.holds = slices.DeleteFunc(s.holds, func(h *queueItem) bool { return h == it })
			}
			continue
		}
		// No executor takes the item, so every executor still idle refused it.
		if lo.takenAt != taken {
			lo.refused = s.refusalsFor(parked, lbl, hasLabel, key, it)
			lo.takenAt = taken
			refusalsNow[key] = lo.refused
		}
		it.transient = lo.refused
	}
	s.refusalMemo = refusalsNow
	return created
}

// offer is one parked executor.
type offer struct {
	n *node
	e *executor
}

// refusalKind is which cause of blockage an executor gave (JobOffer.getCauseOfBlockage).
type refusalKind int

const (
	accepted refusalKind = iota
	refusedLabelMissing
	refusedReserved
	refusedOffline
	refusedSelfLabel // PlaceholderTask.EnforceSelfLabel
	refusedHoldOn    // ContinuedTask.Scheduler's HoldOnPlease
)

// offerRefusal is JobOffer.getCauseOfBlockage: Node.canTake first (label, exclusive mode), then
// the QueueTaskDispatchers (workflow-durable-task-step's PlaceholderTask.EnforceSelfLabel, and
// durable-task's ContinuedTask.Scheduler, which holds every other item off a node a resumed node
// block could take), then the computer's state (Computer.isOffline: temporarily offline or no
// channel).
func (s *Server) offerRefusal(n *node, lbl *label, hasLabel bool, it *queueItem) refusal {
	switch {
	case hasLabel && !lbl.matches(n):
		return refusal{n: n, kind: refusedLabelMissing}
	case !hasLabel && n.mode == "EXCLUSIVE":
		return refusal{n: n, kind: refusedReserved}
	case it.selfLabel != "" && it.selfLabel != n.selfName():
		return refusal{n: n, kind: refusedSelfLabel, self: it.selfLabel}
	}
	if !it.continued {
		for _, h := range s.holds {
			if hl, ok := s.itemLabel(h); ok && hl.matches(n) {
				return refusal{n: n, kind: refusedHoldOn, by: h}
			}
		}
	}
	if n.offline() {
		return refusal{n: n, kind: refusedOffline}
	}
	return refusal{n: n, kind: accepted}
}

// refusals are the causes of blockage the idle executors gave an item in the last maintain()
// (transientCausesOfBlockage): one per node, in computer order. Items of one label that were
// offered the same executors share one value; it never changes once built, so the composite
// `why` made of it is kept per language.
type refusals struct {
	lbl     *label // nil for an unlabelled item
	entries []refusal
	why     map[lang]string
}

type refusal struct {
	n    *node
	kind refusalKind
	self string     // refusedSelfLabel: the node the item must run on
	by   *queueItem // refusedHoldOn: the resumed node block that goes first
}

// refusalsFor lists the refusals of the executors in parked that are still idle, one per node as
// the reasonMap keyed by Node keeps them; nil when there are none. An unchanged list from the
// previous pass is reused, keeping its cached texts.
func (s *Server) refusalsFor(parked []offer, lbl *label, hasLabel bool, key string, it *queueItem) *refusals {
	var entries []refusal
	var last *node
	for _, o := range parked {
		if !o.e.idle() || o.n == last {
			continue // a node's executors are adjacent in parked, so this keeps one per node
		}
		last = o.n
		entries = append(entries, s.offerRefusal(o.n, lbl, hasLabel, it))
	}
	if len(entries) == 0 {
		return nil
	}
	if prev := s.refusalMemo[key]; prev != nil && slices.Equal(prev.entries, entries) {
		return prev
	}
	r := &refusals{entries: entries, why: map[lang]string{}}
	if hasLabel {
		r.lbl = lbl
	}
	return r
}

// text is the refusal as Jenkins words it.
func (r refusal) text(l lang, lbl *label) string {
	switch r.kind {
	case refusedLabelMissing:
		return msg(l, "Node.LabelMissing", r.n.nodeDisplayName(), lbl.str)
	case refusedReserved:
		return msg(l, "Node.BecauseNodeIsReserved", r.n.nodeDisplayName())
	case refusedSelfLabel:
		// EnforceSelfLabel's anonymous CauseOfBlockage: not localised in the plugin.
		return "Must run on " + r.self + " not " + r.n.selfName()
	case refusedHoldOn:
		// durable-task's Messages: ContinuedTask._should_be_allowed_to_run_first (English only).
		return r.by.placeholder.blockName() + " should be allowed to run first"
	}
	return msg(l, "Queue.NodeOffline", r.n.displayName(l))
}

// itemLabel is Queue.Item.getAssignedLabel. An expression Jenkins cannot parse becomes a label
// atom of that text, as AbstractProject.getAssignedLabel falls back to Jenkins.getLabelAtom.
// Parsed labels are kept per text (Jenkins keeps them in its label cache too): the queue asks
// for every item's label on every pass.
func (s *Server) itemLabel(it *queueItem) (*label, bool) {
	raw, ok := it.labelOf()
	if !ok {
		return nil, false
	}
	if lbl, ok := s.labelMemo[raw]; ok {
		return lbl, true
	}
	lbl, err := parseLabel(raw)
	if err != nil {
		lbl = atomLabel(raw) // expr nil: matched as a single atom
	}
	s.labelMemo[raw] = lbl
	return lbl, true
}

// blocked is the BlockedItem test: a project without concurrent builds whose last build still
// runs (AbstractProject.getCauseOfBlockage → BecauseOfBuildInProgress).
func (s *Server) blocked(it *queueItem) bool {
	return it.placeholder == nil && !it.job.concurrent && it.job.building() != nil
}

func (s *Server) itemsIn(st itemState) []*queueItem {
	var out []*queueItem
	for _, it := range s.items {
		if it.state == st {
			out = append(out, it)
		}
	}
	return out
}

// moveTo changes an item's state; items keep their relative order within s.items, which is the
// order Jenkins' lists keep (entry order).
func (s *Server) moveTo(it *queueItem, st itemState) {
	if it.state == st {
		return
	}
	it.state = st
	// Re-append so that the per-state order is the order of entering that state.
	for i, x := range s.items {
		if x == it {
			s.items = append(s.items[:i], s.items[i+1:]...)
			break
		}
	}
	s.items = append(s.items, it)
}

func (s *Server) removeItem(it *queueItem) {
	for i, x := range s.items {
		if x == it {
			s.items = append(s.items[:i], s.items[i+1:]...)
			return
		}
	}
}

// assign hands the item to an executor: the item becomes pending and the executor reserved at
// once, and the build starts on the executor's own goroutine, as Executor.run does. Jenkins
// creates the Run (and its number) only then.
func (s *Server) assign(it *queueItem, n *node, e *executor, now time.Time) {
	s.moveTo(it, statePending)
	e.reserved, e.since = it, now
	go s.startPending(it, n, e)
}

func (s *Server) newRun(it *queueItem, now time.Time) *run {
	j := it.job
	r := &run{job: j, number: j.nextNumber, queueID: it.id, queued: it.inQueueSince, begun: now}
	j.nextNumber++
	j.runs = append(j.runs, r)
	s.runs = append(s.runs, r)
	return r
}

func (s *Server) startPending(it *queueItem, n *node, e *executor) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || it.state != statePending || e.reserved != it {
		return // the node went away first and the item went back to the buildables
	}
	now := time.Now()
	e.reserved = nil
	r := it.placeholder
	if r == nil {
		r = s.newRun(it, now)
		r.begun = now
	}
	e.current, e.since = r, now
	r.exec, r.node = e, n.name
	if it.continued {
		// A resumed node block: its step went on running on the agent meanwhile, so it ends at the
		// time it always would have, or at once if it already has.
	} else {
		r.started, r.due = now, now.Add(r.job.duration)
	}
	s.removeItem(it)
	it.state, it.leftAt, it.executable = stateLeft, now, r
	s.left[it.id] = it
	s.log.Info("build started", zap.String("build", r.job.name), zap.Int("number", r.number),
		zap.String("agent", r.node), zap.Int64("queueItem", it.id), zap.Bool("resumed", it.continued))
	r.timer = time.AfterFunc(max(0, r.due.Sub(now)), func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if r.done || s.closed || r.exec == nil {
			return
		}
		if r.placeholder() && !n.builtIn && n.conn == nil {
			// The durable step ended on an agent Jenkins cannot reach: Jenkins learns it (and the
			// node block ends) when the agent is back.
			r.blockDone = true
			return
		}
		s.finishRun(r, "SUCCESS")
		s.maintain()
	})
	s.maintain()
}

// nodeLost ends what ran on a node that was deleted or lost its agent: running builds end with
// result ("" leaves a build running), and pending items go back to the buildables, as
// Queue.maintain does with "lost pendings".
func (s *Server) nodeLost(n *node, result func(*run) string) {
	for _, e := range n.executors {
		if e.current != nil {
			if res := result(e.current); res != "" {
				s.finishRun(e.current, res)
			}
		}
		if it := e.reserved; it != nil {
			e.reserved = nil
			s.moveTo(it, stateBuildable)
		}
	}
}

// startFlyweight starts a pipeline run on a one-off executor of the built-in node and schedules
// its node('...') PlaceholderTask.
func (s *Server) startFlyweight(it *queueItem, now time.Time) {
	r := s.newRun(it, now)
	e := &executor{number: -1, current: r, since: now}
	s.builtIn.oneOff = append(s.builtIn.oneOff, e)
	r.oneOff = true
	s.removeItem(it)
	it.state, it.leftAt, it.executable = stateLeft, now, r
	s.left[it.id] = it
	ph := &queueItem{id: s.nextID, job: it.job, placeholder: r, inQueueSince: now, timestamp: now}
	s.nextID++
	r.placeholderID = ph.id
	s.items = append(s.items, ph)
}

// finishRun ends a run, frees its executor (and a pipeline's one-off executor) and records the
// result. Callers run maintain afterwards.
func (s *Server) finishRun(r *run, result string) {
	if r.done {
		return
	}
	now := time.Now()
	r.done, r.result, r.finished = true, result, now
	if r.timer != nil {
		r.timer.Stop()
	}
	if r.exec != nil {
		r.exec.current = nil
		r.exec = nil
	}
	if r.oneOff {
		for i, e := range s.builtIn.oneOff {
			if e.current == r {
				s.builtIn.oneOff = append(s.builtIn.oneOff[:i], s.builtIn.oneOff[i+1:]...)
				break
			}
		}
	}
	if r.started.IsZero() {
		r.started = now
	}
	s.log.Info("build finished", zap.String("build", r.job.name), zap.Int("number", r.number),
		zap.String("agent", r.node), zap.String("result", result))
}

// armWake sets a timer for the earliest end of a quiet period.
func (s *Server) armWake(now time.Time) {
	var next time.Time
	for _, it := range s.items {
		if it.state == stateWaiting && (next.IsZero() || it.timestamp.Before(next)) {
			next = it.timestamp
		}
	}
	if s.wake != nil {
		s.wake.Stop()
		s.wake = nil
	}
	if next.IsZero() {
		return
	}
	s.wake = time.AfterFunc(next.Sub(now)+time.Millisecond, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.maintain()
	})
}

// why is Item.getWhy for the request's language: Queue.WaitingItem, BlockedItem and
