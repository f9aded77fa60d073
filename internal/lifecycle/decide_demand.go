package lifecycle

import (
	"fmt"
	"sort"
	"time"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins"
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
	// Backoff is the template's backoff, for the wait reason.
	Backoff Backoff
	// Queued counts Ready agents still waiting for Kueue's admission; QueuedWhy says for what.
	Queued    int
	QueuedWhy Reason
}

// planned is the plan for one template: how many agents to create, and why its builds still wait.
type planned struct {
	Create int
	Why    WaitReason
}

// planCreates decides how many agents to create per template: the builds waiting minus the agents
// that will serve them, within the template's cap and what is left of the global cap. Templates whose
// builds have waited longest get the global capacity first, so one busy label cannot starve another
// forever. globalLive counts every live agent pod of ours; maxAgents <= 0 means no global cap.
func planCreates(loads []templateLoad, globalLive, maxAgents int) map[string]planned {
	ordered := append([]templateLoad(nil), loads...)
	sort.SliceStable(ordered, func(i, j int) bool {
		return ordered[i].OldestWaiting.Before(ordered[j].OldestWaiting)
	})
	globalRoom := -1
	if maxAgents > 0 {
		globalRoom = max(maxAgents-globalLive, 0)
	}
	out := map[string]planned{}
	for _, l := range ordered {
		if l.BackedOff {
			out[l.Name] = planned{Why: backoffWait(l.Backoff)}
			continue
		}
		p := planned{Why: WaitReason{Kind: WaitStarting}}
		if l.Queued > 0 {
			p.Why = WaitReason{Kind: WaitQueued, Detail: l.QueuedWhy.Detail}
		}
		n := l.Waiting - l.Ready
		if l.Probing && 1-l.Ready < n {
			n = 1 - l.Ready
			p.Why = WaitReason{Kind: WaitProbing, Detail: l.Backoff.Last.Detail}
		}
		if l.MaxAgents > 0 && l.MaxAgents-l.Live < n {
			n = l.MaxAgents - l.Live
			p.Why = WaitReason{Kind: WaitTemplateCap}
		}
		if globalRoom >= 0 {
			if globalRoom < n {
				n = globalRoom
				p.Why = WaitReason{Kind: WaitGlobalCap}
			}
			globalRoom -= max(n, 0)
		}
		p.Create = max(n, 0)
		out[l.Name] = p
	}
	return out
}

// served is one template's waiting builds, oldest first.
type served map[string][]jenkins.Demand

// unservedLabel is a label whose builds no template takes.
type unservedLabel struct {
	Builds int
	Oldest time.Time
	Why    WaitReason
}

// mapDemand assigns every waiting build to the template that will serve it; the rest are grouped by
// label with why they are not served. It also returns each build's label for display and metrics.
func (w *world) mapDemand() (served, map[string]*unservedLabel, map[int64]string) {
	out := served{}
	unserved := map[string]*unservedLabel{}
	labelOf := map[int64]string{}
	set := w.snap.Templates
	for _, d := range w.snap.Demand {
		name, label, why := w.templateFor(d)
		labelOf[d.QueueID] = label
		if name == "" {
			u := unserved[label]
			if u == nil {
				u = &unservedLabel{Oldest: d.InQueueSince, Why: why}
				unserved[label] = u
			}
			u.Builds++
			if d.InQueueSince.Before(u.Oldest) {
				u.Oldest = d.InQueueSince
			}
			continue
		}
		if _, ok := set.Get(name); ok {
			out[name] = append(out[name], d)
		}
	}
	for _, list := range out {
		sort.SliceStable(list, func(i, j int) bool { return list[i].InQueueSince.Before(list[j].InQueueSince) })
	}
	return out, unserved, labelOf
}

// unreadableLabel stands for the label of builds whose why could not be read, on the status page and
// in provisioner_builds_waiting.
const unreadableLabel = "(unreadable)"

// templateFor names the template serving a build, the label (for the page, logs and metrics), and
// why no template does.
func (w *world) templateFor(d jenkins.Demand) (string, string, WaitReason) {
	set := w.snap.Templates
	noTemplate := WaitReason{Kind: WaitNoTemplate}
	switch {
	case d.Err != nil:
		// A hostile or broken why: this build is served by no template; the rest of the queue is.
		return "", unreadableLabel, WaitReason{Kind: WaitUnreadable, Detail: d.Err.Error()}
	case d.Label != "":
		if t, ok := set.SelectWith(w.snap.LabelCache, d.Label); ok {
			return t.Name, d.Label, WaitReason{}
		}
		return "", d.Label, noTemplate
	case d.Node != "":
		// The item names one node: a pipeline node block resumed after a restart, bound to it
		// (PlaceholderTask.EnforceSelfLabel), which only that agent serves (see resume), never a
		// new one; or an item whose label only that node carries.
		if a, ok := w.byName[d.Node]; ok && a.Template != "" {
			if d.TaskURL != "" && d.TaskURL == markedBuild(a.Computer) || a.State == Resuming && !a.Marked {
				return "", "node:" + d.Node, WaitReason{Kind: WaitResuming, Detail: "bound to agent " + d.Node}
			}
			// Jenkins names the one node that carries the label instead of the label: the build
			// waits for that agent's template.
			if _, ok := set.Get(a.Template); ok {
				return a.Template, a.Template, WaitReason{}
			}
		}
		return "", "node:" + d.Node, noTemplate
	default:
		// Jenkins named neither label nor node. A freestyle job's own configuration says what it
		// asks for (observe read it); anything else is an unlabelled build.
		expr := ""
		if needsJobLabel(d) {
			jl, ok := w.snap.JobLabels[d.TaskURL]
			if !ok || jl.Failed {
				return "", "unknown", WaitReason{Kind: WaitLabelUnknown, Detail: jl.Detail}
			}
			expr = jl.Expr
		}
		if t, ok := set.SelectWith(w.snap.LabelCache, expr); ok {
			return t.Name, expr, WaitReason{}
		}
		return "", expr, noTemplate
	}
}

// loads sums, per template, what the plan needs, and counts every live agent pod of ours plus the
// creations not yet in the cache (for the global cap).
func (w *world) loads(waiting served, mem Memory, now time.Time) ([]templateLoad, int) {
	byName := map[string]*templateLoad{}
	for _, t := range w.snap.Templates.Templates {
		l := &templateLoad{Name: t.Name, MaxAgents: t.MaxAgents, Waiting: len(waiting[t.Name])}
		if len(waiting[t.Name]) > 0 {
			l.OldestWaiting = waiting[t.Name][0].InQueueSince
		}
		b := mem.Backoff[t.Name]
		l.Backoff, l.BackedOff, l.Probing = b, now.Before(b.Until), b.Failures > 0
		byName[t.Name] = l
	}
	total := 0
	for _, a := range w.agents {
		if a.Pod == nil {
			continue
		}
		total++
		l := byName[a.Template]
		if l == nil {
			continue
		}
		l.Live++
		if (a.State == Idle || a.State == Starting || a.State == Queued) && !a.Marked || a.State == Ready {
			l.Ready++
		}
		if a.State == Queued && !a.Marked {
			l.Queued++
			l.QueuedWhy = a.Reason
		}
	}
	for _, cr := range w.snap.Creating {
		if _, exists := w.pods[cr.Name]; exists {
			continue // counted above
		}
		total++
		if l := byName[cr.Template]; l != nil {
			l.Live++
			l.Ready++
		}
	}
	out := make([]templateLoad, 0, len(byName))
	for _, t := range w.snap.Templates.Templates {
		out = append(out, *byName[t.Name])
	}
	return out, total
}

// demand plans creations and releases from the waiting builds, and records why builds wait.
func (d *Decision) demand(w *world, cfg DecideConfig, now time.Time) {
	if w.snap.Templates == nil {
		return
	}
	waiting, unserved, labelOf := w.mapDemand()
	for _, q := range w.snap.Demand {
		if q.Err != nil && d.Memory.once(fmt.Sprintf("unreadable/%d", q.QueueID), now) {
			d.Notices = append(d.Notices, Notice{Kind: NoticeBadDemand, QueueID: q.QueueID, Reason: Reason{Kind: KindOther, Detail: q.Err.Error()}})
		}
	}
	for label, u := range unserved {
		if u.Why.Kind == WaitResuming {
			continue // served by its own agent
		}
		if last, ok := d.Memory.Seen["unserved/"+label]; !ok || now.Sub(last) > time.Minute {
			d.Memory.Seen["unserved/"+label] = now
			d.Notices = append(d.Notices, Notice{Kind: NoticeUnserved, Label: label, Builds: u.Builds, Reason: Reason{Detail: u.Why.Detail}})
		}
	}
	loads, total := w.loads(waiting, d.Memory, now)
	plan := planCreates(loads, total, cfg.MaxAgents)
	wp := d.planWarm(w, waiting, loads, total, cfg, now)
	for _, l := range loads {
		d.release(w, l, wp, cfg, now)
	}
	d.markWarm(w, waiting, wp)
	for _, t := range w.snap.Templates.Templates {
		queued := waiting[t.Name]
		for i := range plan[t.Name].Create + wp.plans[t.Name].Headroom {
			a := Action{Kind: ActCreate, Template: t.Name, Spec: t}
			if i < plan[t.Name].Create && i < len(queued) { // headroom is made for no build
				a.QueuedAt = queued[i].InQueueSince
			}
			d.Actions = append(d.Actions, a)
		}
	}
	d.waitingView(w, waiting, unserved, labelOf, plan)
}

// release lets surplus agents go once demand has stayed below supply for ReleaseGrace. Releasing
// is a mark first (no build can land on a temporarily offline node), deletion on the next poll, so an
// agent that took a build in the meantime finishes it.
// Ready agents Fit keeps as headroom are not surplus, and ones that waited maxIdleTime are already
// being released (planWarm).
func (d *Decision) release(w *world, l templateLoad, wp warmPlan, cfg DecideConfig, now time.Time) {
	expired := 0
	for name := range wp.expired {
		if w.byName[name].Template == l.Name {
			expired++
		}
	}
	surplus := l.Ready - expired - l.Waiting - wp.plans[l.Name].Keep
	if surplus <= 0 {
		delete(d.Memory.SurplusSince, l.Name)
		return
	}
	since, ok := d.Memory.SurplusSince[l.Name]
	if !ok {
		d.Memory.SurplusSince[l.Name] = now
		return
	}
	if now.Sub(since) < cfg.ReleaseGrace {
		return
	}
	// Release the youngest first: they are the least far along.
	var candidates []*Agent
	for _, a := range w.agents {
		if a.Template == l.Name && a.Pod != nil && a.Computer != nil && !wp.expired[a.Name] &&
			(!a.Marked && (a.State == Idle || a.State == Starting || a.State == Queued) || a.State == Ready) {
			candidates = append(candidates, a)
		}
	}
	sort.SliceStable(candidates, func(i, j int) bool {
		return candidates[i].Pod.CreationTimestamp.After(candidates[j].Pod.CreationTimestamp.Time)
	})
	for _, a := range candidates[:min(surplus, len(candidates))] {
		d.Actions = append(d.Actions, Action{Kind: ActRelease, Agent: a.Name, Template: a.Template, State: a.State, Pod: a.Pod, Node: true})
	}
}
