package lifecycle

import (
	"fmt"
	"slices"
	"time"
)

// What Jenkins users expect a build to survive (a controller restart, a dropped agent connection),
// read from Jenkins' sources:
//
//   - A restart disconnects every agent; a running pipeline node block survives it and, once Jenkins
//     is up, is queued again as a new item bound to its own node by name (PlaceholderTask's label is
//     the computer's name, PlaceholderTask.EnforceSelfLabel), which Jenkins waits for for
//     ExecutorPickle.timeoutForNodeMillis (5 minutes) before it aborts the build. The node's
//     temporarily-offline mark survives the restart, and a temporarily-offline computer is offered
//     no task (Queue.JobOffer), so the block gets its node back only if the provisioner clears the
//     mark. Other items are held off that node while the block waits (ContinuedTask).
//   - A dropped connection without a restart leaves the block on its executor (the node stays
//     busy) until the agent reconnects.
//
// So: a marked agent without its connection is Suspended (kept, pod and node, for ReconnectGrace), a
// queue item bound to one of our agents makes it Resuming (its mark cleared for exactly that item,
// never a new agent made for it), and it is marked again as soon as it is busy.

// resume refines an agent's state with what classify cannot see alone: the queue items bound to it,
// what earlier polls saw of it, and whether Jenkins has only just come back.
func (d *Decision) resume(w *world, a *Agent, cfg DecideConfig) {
	c := a.Computer
	// Jenkins names a node in `why` both for an item bound to it (a resumed block) and for an item
	// whose label only that node carries (BecauseNodeIsOffline for a one-node label). Only the
	// first is this agent's own build: its task URL is the run our busy mark names. Once the mark
	// is cleared for it, the item bound to the agent is the one it was cleared for.
	_, resumed := d.Memory.Seen["resumed/"+a.Name]
	bound := w.boundTo(a, resumed)
	connected := c != nil && c.Connected
	_, wasOnline := d.Memory.Seen["online/"+a.Name]
	switch {
	case a.State == Done && a.Reason.Kind == KindBuildFinished && connected && bound:
		a.State, a.Reason = Resuming, Reason{Detail: "a resumed node block waits for this agent"}
	case a.State == Done && a.Reason.Kind == KindBuildFinished && connected && !w.jenkinsBack.IsZero() &&
		w.snap.At.Sub(w.jenkinsBack) < cfg.ResumeSettle:
		// Jenkins queues resumed blocks in the background after start-up: a reconnected agent is
		// not done until that had time to happen.
		a.State, a.Reason = Suspended, Reason{KindDisconnected, "Jenkins came back moments ago; its resumed builds may not be queued yet"}
	case a.State == Idle && bound:
		a.State, a.Reason = Resuming, Reason{Detail: "brought online for its resumed node block"}
	case a.State == Idle && resumed:
		// Brought online for its resumed block, which has run (or was given up): it is done, and
		// must not take another build.
		a.State, a.Reason = Done, Reason{KindBuildFinished, "resumed build finished"}
	case (a.State == Starting || a.State == Failed && a.Reason.Kind == KindConnectTimeout) && wasOnline &&
		c != nil && !connected && a.Pod != nil && !podDead(a.Pod):
		// It was online and lost its connection: not an agent that never connected (no connect
		// timeout, no backoff of its template).
		a.State, a.Reason = Suspended, Reason{KindDisconnected, "agent disconnected (Jenkins restarted or the connection dropped)"}
	}
	if a.State != Suspended {
		delete(d.Memory.Seen, "suspended/"+a.Name)
	}
}

// boundTo reports whether a queue item bound to the agent by name is its own resumed build.
func (w *world) boundTo(a *Agent, resumed bool) bool {
	urls := w.bound[a.Name]
	if len(urls) == 0 {
		return false
	}
	if resumed {
		return true
	}
	build := markedBuild(a.Computer)
	return build != "" && slices.Contains(urls, build)
}

// competes reports whether a build waits that the agent's template would serve: one that could
// take the agent the moment its mark is off.
func (w *world) competes(a *Agent) bool {
	if w.snap.Templates == nil {
		return false
	}
	for _, d := range w.snap.Demand {
		if d.Node == a.Name {
			continue
		}
		if name, _, _ := w.templateFor(d); name == a.Template {
			return true
		}
	}
	return false
}

// suspended keeps a suspended agent for the reconnect grace, then lets it go with the reason.
func (d *Decision) suspended(w *world, a *Agent, base Action, cfg DecideConfig) {
	since, ok := d.Memory.Seen["suspended/"+a.Name]
	if !ok {
		since = w.snap.At
		d.Memory.Seen["suspended/"+a.Name] = since
		d.Notices = append(d.Notices, Notice{Kind: NoticeSuspended, Agent: a.Name, Template: a.Template, Pod: a.Pod,
			Reason: a.Reason, Build: markedBuild(a.Computer), Backoff: cfg.ReconnectGrace})
	}
	if !a.Marked && a.Pod != nil {
		d.Exposed++ // it may reconnect and take a build before the next poll
	}
	if w.snap.At.Sub(since) <= cfg.ReconnectGrace {
		return
	}
	base.Kind = ActFinish
	base.Reason = Reason{KindReconnectTimeout, fmt.Sprintf("agent did not reconnect within the reconnect grace %s (%s)", cfg.ReconnectGrace, a.Reason.Detail)}
	base.Build = markedBuild(a.Computer)
	base.Secret = w.ownedSecret(a.Pod)
	d.Actions = append(d.Actions, base)
}

// resuming brings an agent online for the node block bound to it, once.
func (d *Decision) resuming(w *world, a *Agent, base Action, now time.Time) {
	if d.Memory.once("resumed/"+a.Name, now) {
		d.Notices = append(d.Notices, Notice{Kind: NoticeResuming, Agent: a.Name, Template: a.Template, Pod: a.Pod, Build: markedBuild(a.Computer)})
	}
	if a.Marked {
		// Jenkins hands the node to the block once the mark is off, but the instant the block ends
		// (at once, if its step ended during the outage) any waiting build the node's labels serve
		// would take it before the mark is back. So the mark comes off only while no such build
		// waits: those get agents of their own first (the plan makes them), well within Jenkins'
		// wait for the block's node.
		if w.competes(a) {
			return
		}
		base.Kind, base.Build, base.Reason = ActResume, markedBuild(a.Computer), Reason{}
		d.Actions = append(d.Actions, base)
		return
	}
	if a.Pod != nil {
		d.Exposed++ // online for its block: the busy watch marks it the moment the block starts
	}
}
