package lifecycle

import (
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins"
	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
	"github.com/jenkins-agent-provisioner/provisioner/internal/warm"
)

// Ready agents (issue 13): agents kept as headroom for a template's next builds. A ready agent is
// connected but temporarily offline with a ready mark, so Jenkins gives it no build on its own:
// with 20 of them waiting nothing is exposed and the busy watch stays off. When builds wait for the
// template, exactly as many ready agents as there are builds no connected agent takes are brought
// online (SetOnline), the busy watch armed first; each then takes one build and is marked busy as
// any agent is. The mark carries when the agent became ready, so a restart recognises ready agents
// and their age from Jenkins alone; only the adaptive Estimator lives in Memory.
const (
	reasonReady     = reasonPrefix + "ready since "
	readyMarkSuffix = ", waiting for its one build"
)

// readyMark is the offline message of an agent ready since since.
func readyMark(since time.Time) string {
	return reasonReady + since.UTC().Format(time.RFC3339) + readyMarkSuffix
}

// readyMarked reports whether a computer carries our ready mark.
func readyMarked(c *jenkins.Computer) bool {
	return carriesOurMark(c) && strings.HasPrefix(c.OfflineReason, reasonReady)
}

// readySince is when a ready-marked agent became ready (false: no readable mark).
func readySince(c *jenkins.Computer) (time.Time, bool) {
	if !readyMarked(c) {
		return time.Time{}, false
	}
	v := strings.TrimPrefix(c.OfflineReason, reasonReady)
	if i := strings.Index(v, ","); i >= 0 {
		v = v[:i]
	}
	t, err := time.Parse(time.RFC3339, v)
	return t, err == nil
}

// classifyReady judges a ready-marked agent that runs no build: ready while its pod runs and its
// agent is connected, failed (replaced under the template's backoff) when the pod died or the agent
// lost its connection.
func classifyReady(pod *corev1.Pod, c *jenkins.Computer, now time.Time, o classifyOptions) (State, Reason) {
	switch pod.Status.Phase {
	case corev1.PodSucceeded:
		return Failed, Reason{KindAgentExited, "ready agent exited before running a build"}
	case corev1.PodFailed:
		return Failed, podFailureReason(pod)
	}
	if r, failed := containerFailure(pod, now, o); failed {
		return Failed, r
	}
	if !c.Connected {
		// The pod runs but the agent is not connected: Jenkins restarted or the connection dropped,
		// and a reconnecting agent comes back by itself. Like any agent that was online, it is kept
		// for the reconnect grace (not failed, so a Jenkins restart does not back every warm
		// template off); its ready mark keeps builds off it meanwhile.
		return Suspended, Reason{KindDisconnected, "ready agent disconnected (Jenkins restarted or the connection dropped)"}
	}
	return Ready, Reason{}
}

// WarmStatus is one warm template's desired ready agents and where the number comes from.
type WarmStatus struct {
	Template string
	Desired  int
	Source   warm.Source
	Estimate warm.Estimate
	Ready    int // ready agents now
}

// warmPlan is what the warm rules decided for one poll: Fit's plan per template, and the ready
// agents that waited maxIdleTime (released and replaced).
type warmPlan struct {
	plans   map[string]warm.Plan
	expired map[string]bool
}

// learn feeds the Estimators: each build of a template is one arrival, counted when it is first
// seen, waiting in the queue or already running on one of the template's agents (Jenkins hands a
// build to an idle agent within milliseconds, so under load many are never seen queued by a poll;
// counting only the queue would underrate demand exactly when ready agents serve it well). Each
// agent first seen online is a start-up time (created → online, bounded by the connect timeout so
// an old busy agent seen after a restart is no sample).
func (d *Decision) learn(w *world, waiting served, cfg DecideConfig, now time.Time) {
	adaptive := func(name string) bool {
		t, ok := w.snap.Templates.Get(name)
		return ok && t.Warm != nil && t.Warm.Adaptive
	}
	for name, list := range waiting {
		if !adaptive(name) {
			continue
		}
		for _, q := range list {
			if d.Memory.once("arrived/"+strconv.FormatInt(q.QueueID, 10), now) {
				d.Memory.Estimators[name] = d.Memory.Estimators[name].Arrived(now)
				if q.TaskURL != "" {
					d.Memory.Seen[queuedTaskKey(q.TaskURL)] = now
				}
			}
		}
	}
	// The first decision after a start sees every running build as started: those arrived before,
	// not now.
	_, running := d.Memory.Seen[learnedKey]
	if w.snap.Templates != nil && slices.ContainsFunc(w.snap.Templates.Templates, func(t *podtemplate.Template) bool { return t.Warm != nil && t.Warm.Adaptive }) {
		d.Memory.Seen[learnedKey] = now
	}
	for _, n := range d.Notices {
		if n.Kind == NoticeBuildStarted && running && adaptive(n.Template) && !d.Memory.countedQueued(n.Build) {
			d.Memory.Estimators[n.Template] = d.Memory.Estimators[n.Template].Arrived(now)
		}
		if n.Kind != NoticeOnline || n.Pod == nil || !adaptive(n.Template) {
			continue
		}
		if s := now.Sub(n.Pod.CreationTimestamp.Time); s > 0 && s <= cfg.DefaultConnectTimeout {
			d.Memory.Estimators[n.Template] = d.Memory.Estimators[n.Template].Started(s)
		}
	}
}

// learnedKey records that learn has run before in this process's memory.
const learnedKey = "learned"

// queuedTaskKey marks a task whose queue item was counted as an arrival, until its build starts.
func queuedTaskKey(taskURL string) string { return "queuedTask/" + taskURL }

// countedQueued reports whether the build at buildURL was already counted as an arrival while it
// waited, and forgets that record so the job's next build counts again. A queue item's task is the
// job for a freestyle build (job/J/ for the run job/J/N/) and the run itself for a pipeline's node
// block (ExecutorStepExecution.PlaceholderTask, whose executable's URL is the run's).
func (m *Memory) countedQueued(buildURL string) bool {
	for _, u := range []string{buildURL, parentURL(buildURL)} {
		if _, ok := m.Seen[queuedTaskKey(u)]; ok && u != "" {
			delete(m.Seen, queuedTaskKey(u))
			return true
		}
	}
	return false
}

// parentURL is u without its last path segment: job/J/ for job/J/N/.
func parentURL(u string) string {
	t := strings.TrimSuffix(u, "/")
	i := strings.LastIndex(t, "/")
	if i < 0 {
		return ""
	}
	return t[:i+1]
}

// planWarm sizes every template's headroom and fits it with the demand into the caps.
func (d *Decision) planWarm(w *world, waiting served, loads []templateLoad, total int, cfg DecideConfig, now time.Time) warmPlan {
	d.learn(w, waiting, cfg, now)
	wp := warmPlan{plans: map[string]warm.Plan{}, expired: map[string]bool{}}
	expiredOf := map[string]int{}
	readyOf := map[string]int{}
	leaving := 0
	for _, a := range w.agents {
		if a.Pod == nil {
			continue
		}
		switch a.State {
		case Terminating, Done, Released, Failed:
			leaving++
		case Ready:
			readyOf[a.Template]++
			// Back after a disconnection: a later one gets a fresh reconnect grace.
			delete(d.Memory.Seen, "suspended/"+a.Name)
			since, ok := readySince(a.Computer)
			if !ok {
				continue
			}
			if _, seen := d.Memory.Seen["ready/"+a.Name]; !seen {
				d.Memory.Seen["ready/"+a.Name] = since
			}
			if t, ok := w.snap.Templates.Get(a.Template); ok && t.Warm.Expired(since, now) {
				wp.expired[a.Name] = true
				expiredOf[a.Template]++
			}
		}
	}
	in := make([]warm.Load, 0, len(loads))
	for _, l := range loads {
		var spec *warm.Spec
		if t, ok := w.snap.Templates.Get(l.Name); ok {
			spec = t.Warm
		}
		est := d.Memory.Estimators[l.Name].Estimate(now)
		n, src := warm.Desired(spec, now, est)
		if spec != nil {
			d.Warm = append(d.Warm, WarmStatus{Template: l.Name, Desired: n, Source: src, Estimate: est, Ready: readyOf[l.Name]})
		}
		in = append(in, warm.Load{Name: l.Name, Waiting: l.Waiting, Free: l.Ready - expiredOf[l.Name], Live: l.Live, Cap: l.MaxAgents,
			Ready: n, OldestWaiting: l.OldestWaiting, BackedOff: l.BackedOff, Probing: l.Probing})
	}
	for _, p := range warm.Fit(in, warm.Capacity{Cap: cfg.MaxAgents, Live: total, Leaving: leaving}) {
		wp.plans[p.Name] = p
	}
	for _, a := range w.agents {
		if wp.expired[a.Name] {
			d.Actions = append(d.Actions, Action{Kind: ActRelease, Agent: a.Name, Template: a.Template, State: a.State, Pod: a.Pod, Node: true,
				Reason: Reason{KindReleased, "ready agent waited maxIdleTime; a fresh one replaces it"}})
		}
	}
	// Ready agents that take a build say how long they waited (the Event on the pod).
	for i := range d.Notices {
		n := &d.Notices[i]
		if n.Kind != NoticeBuildStarted {
			continue
		}
		if since, ok := d.Memory.Seen["ready/"+n.Agent]; ok {
			n.ReadyFor = now.Sub(since)
		}
	}
	return wp
}

// markWarm brings ready agents online for the builds no connected agent takes, and marks idle agents
// of warm templates that no build waits for as ready, so they take no build unseen. Agents released
// in this poll are left alone.
func (d *Decision) markWarm(w *world, waiting served, wp warmPlan) {
	released := map[string]bool{}
	for _, a := range d.Actions {
		if a.Kind == ActRelease {
			released[a.Agent] = true
		}
	}
	byTemplate := map[string][]*Agent{}
	for _, a := range w.agents {
		if a.Pod != nil && !released[a.Name] {
			byTemplate[a.Template] = append(byTemplate[a.Template], a)
		}
	}
	names := make([]string, 0, len(byTemplate))
	for name := range byTemplate {
		names = append(names, name)
	}
	sort.Strings(names) // actions in a stable order
	for _, name := range names {
		agents := byTemplate[name]
		t, ok := w.snap.Templates.Get(name)
		var idle, ready []*Agent
		for _, a := range agents {
			switch {
			case a.State == Idle && !a.Marked:
				idle = append(idle, a)
			case a.State == Ready:
				ready = append(ready, a)
			}
		}
		want := len(waiting[name])
		// Oldest ready first: they are closest to maxIdleTime.
		sort.SliceStable(ready, func(i, j int) bool { return ready[i].Computer.OfflineReason < ready[j].Computer.OfflineReason })
		for _, a := range ready[:min(max(want-len(idle), 0), len(ready))] {
			d.Actions = append(d.Actions, Action{Kind: ActUnready, Agent: a.Name, Template: a.Template, State: a.State, Pod: a.Pod, Node: true})
		}
		if !ok || t.Warm == nil {
			continue
		}
		for _, a := range idle[min(want, len(idle)):] {
			d.Actions = append(d.Actions, Action{Kind: ActMarkReady, Agent: a.Name, Template: a.Template, State: a.State, Pod: a.Pod, Node: true})
		}
	}
}
