package jenkinstest

import (
	"time"
)

// Why an item waits: Item.getWhy and the CauseOfBlockage texts, in the request's language. Callers
// hold s.mu.

// BuildableItem.getCauseOfBlockage.
func (s *Server) why(it *queueItem, l lang, now time.Time) *string {
	switch it.state {
	case stateLeft:
		return nil
	case stateWaiting:
		d := it.timestamp.Sub(now)
		if d <= 0 {
			return strp(msg(l, "Queue.FinishedWaiting"))
		}
		return strp(msg(l, "Queue.InQuietPeriod", timeSpan(l, d)))
	case stateBlocked:
		if r := it.job.building(); r != nil {
			eta := ""
			if r.exec != nil || r.oneOff {
				eta = msg(l, "AbstractProject.ETA", s.remaining(r, l, now))
			}
			return strp(msg(l, "AbstractProject.BuildInProgress", formatInt(l, int64(r.number)), eta))
		}
		return strp(msg(l, "Queue.FinishedWaiting"))
	}
	return strp(s.buildableWhy(it, l))
}

// remaining is Executor.getEstimatedRemainingTime.
func (s *Server) remaining(r *run, l lang, now time.Time) string {
	est := r.job.estimatedDuration()
	if est < 0 || r.started.IsZero() {
		return msg(l, "Executor.NotAvailable")
	}
	eta := est - now.Sub(r.started)
	if eta <= 0 {
		return msg(l, "Executor.NotAvailable")
	}
	return timeSpan(l, eta)
}

// buildableWhy is Queue.BuildableItem.getCauseOfBlockage.
func (s *Server) buildableWhy(it *queueItem, l lang) string {
	lbl, hasLabel := s.itemLabel(it)
	if len(s.nodes) == 0 {
		hasLabel = false // no agents: "pointless to talk about nodes"
	}
	if !hasLabel {
		if it.transient != nil && s.computerSetIdle() > 0 {
			return s.composite(it, l)
		}
		return msg(l, "Queue.WaitingForNextAvailableExecutor")
	}
	ls := s.labelState(lbl)
	if ls.offline {
		if len(ls.nodes) == 1 {
			return msg(l, "Queue.NodeOffline", ls.nodes[0].displayName(l))
		}
		if len(ls.nodes) == 0 {
			return msg(l, "Queue.LabelHasNoNodes", lbl.name)
		}
		return msg(l, "Queue.AllNodesOffline", lbl.name)
	}
	if it.transient != nil && ls.idle > 0 {
		return s.composite(it, l)
	}
	if len(ls.nodes) == 1 {
		return msg(l, "Queue.WaitingForNextAvailableExecutorOn", ls.nodes[0].displayName(l))
	}
	return msg(l, "Queue.WaitingForNextAvailableExecutorOn", lbl.name)
}

// composite is the CompositeCauseOfBlockage of the item's refusals, worded once per list and
// language: items of one label share the list, and a list of a thousand nodes is sorted text.
func (s *Server) composite(it *queueItem, l lang) string {
	r := it.transient
	if why, ok := r.why[l]; ok {
		return why
	}
	texts := make([]string, len(r.entries))
	for i, e := range r.entries {
		texts[i] = e.text(l, r.lbl)
	}
	why := compositeWhy(texts)
	r.why[l] = why
	return why
}

// computerSetIdle is ComputerSet.getIdleExecutors: idle executors of online computers.
func (s *Server) computerSetIdle() int {
	if v := s.view; v != nil && v.setIdle >= 0 {
		return v.setIdle
	}
	c := 0
	for _, n := range s.computers() {
		if !n.offline() {
			c += n.idleCount()
		}
	}
	if s.view != nil {
		s.view.setIdle = c
	}
	return c
}

// stuck is Queue.BuildableItem.isStuck.
func (s *Server) stuck(it *queueItem, now time.Time) bool {
	if it.state != stateBuildable && it.state != statePending {
		return false
	}
	if lbl, ok := s.itemLabel(it); ok && s.labelState(lbl).offline {
		return true
	}
	elapsed := now.Sub(it.buildableAt)
	if d := it.job.estimatedDuration(); d >= 0 {
		return elapsed > max(d, time.Minute)*10
	}
	return elapsed > 24*time.Hour
}
