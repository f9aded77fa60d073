package lifecycle

import (
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins"
	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
)

// DecideConfig are the settings decide applies.
type DecideConfig struct {
	// MaxAgents caps live agent pods across all templates; 0 means no global cap.
	MaxAgents             int
	ReleaseGrace          time.Duration
	OrphanGrace           time.Duration
	UnschedulableGrace    time.Duration
	DefaultConnectTimeout time.Duration
	// ConfigErrorGrace: CreateContainerConfigError may be a Secret not yet seen by the kubelet.
	ConfigErrorGrace        time.Duration
	BackoffBase, BackoffMax time.Duration
	// ReconnectGrace: how long a suspended agent (disconnected after it was online) is kept.
	ReconnectGrace time.Duration
	// ResumeSettle: how long after Jenkins came back a marked, connected, idle agent is held rather
	// than judged done (its resumed node block may not be queued yet).
	ResumeSettle time.Duration
	// Identity tells our nodes and pods from everybody else's (identity.go).
	Identity Identity
}

// outageMin is how long Jenkins must be unreadable, short of a restart, to count as an outage.
const outageMin = 10 * time.Second

// Decide is the controller's whole judgement: a pure function of one snapshot, the memory of earlier
// polls, the settings and the time. It does no I/O, takes no lock, reads no clock and logs nothing,
// so every rule can be tested with a snapshot in and actions out.
func Decide(snap Snapshot, mem Memory, cfg DecideConfig, now time.Time) Decision {
	d := Decision{Memory: mem.clone(), Agents: map[AgentKey]int{}, Waiting: map[WaitKey]int{}, Foreign: map[string]int{}}
	if !snap.JenkinsFresh {
		// Refused connections, the start-up page, timeouts: every agent is held as it is until a
		// fresh, complete view arrives. The memory notes the outage so that its length is not
		// counted against agents afterwards.
		d.Hold = true
		if d.Memory.JenkinsDownSince.IsZero() {
			d.Memory.JenkinsDownSince = now
		}
		d.Memory.JenkinsRestarting = d.Memory.JenkinsRestarting || snap.JenkinsStarting
		return d
	}
	if down := d.Memory.JenkinsDownSince; !down.IsZero() {
		// A failed read now and then (a 5xx page, a reset) is no outage: only a restart, or
		// Jenkins unreachable for outageMin, moves the time agents are judged from.
		if d.Memory.JenkinsRestarting || snap.At.Sub(down) >= outageMin {
			d.Memory.JenkinsBack = snap.At
		}
		d.Memory.JenkinsDownSince, d.Memory.JenkinsRestarting = time.Time{}, false
	}
	w := newWorld(snap, cfg, d.Memory.JenkinsBack, now)
	d.foreign(w, now)
	d.outcomes(snap.Outcomes, cfg)
	evicted := d.evictions(w, snap.Evicted, now)
	for _, a := range w.agents {
		d.resume(w, a, cfg)
		d.agent(w, a, cfg, now, evicted[a.Name])
	}
	d.forgetBuilds(w, evicted)
	d.secrets(w, cfg)
	d.demand(w, cfg, now)
	d.status(w)
	return d
}

// world is a snapshot joined and indexed: agents by name, pods, Secrets and creations.
type world struct {
	snap     Snapshot
	agents   []*Agent
	byName   map[string]*Agent
	pods     map[string]*corev1.Pod
	nodes    map[string]bool
	creating map[string]string // creation name → template
	// bound lists, per node, the task URLs of the queue items Jenkins names that node for: a resumed
	// pipeline node block (its run's URL), or any item whose label only that node carries.
	bound map[string][]string
	// jenkinsBack is when Jenkins answered again after its last outage (zero: none seen).
	jenkinsBack time.Time
	// foreignPods and foreignNodes look like ours but are not (identity.go): left alone, not counted.
	foreignPods  map[string]*corev1.Pod
	foreignNodes []string
}

func newWorld(snap Snapshot, cfg DecideConfig, jenkinsBack, now time.Time) *world {
	w := &world{snap: snap, byName: map[string]*Agent{}, pods: map[string]*corev1.Pod{}, nodes: map[string]bool{}, creating: map[string]string{},
		bound: map[string][]string{}, jenkinsBack: jenkinsBack, foreignPods: map[string]*corev1.Pod{}}
	for _, d := range snap.Demand {
		if d.Node != "" {
			w.bound[d.Node] = append(w.bound[d.Node], d.TaskURL)
		}
	}
	owners := map[string]nodeOwner{}
	for i := range snap.Computers {
		comp := &snap.Computers[i]
		w.nodes[comp.Name] = true
		owners[comp.Name], _ = nodeOwnership(cfg.Identity, comp)
	}
	for _, p := range snap.Pods {
		switch cfg.Identity.podRecord(p) {
		case recordOurs:
		case recordNone:
			// Made before creation records (a legacy agent, adopted with its node), or not ours.
			if o := owners[p.Name]; o != nodeLegacy && o != nodeOurs {
				w.foreignPods[p.Name] = p
				continue
			}
		default:
			w.foreignPods[p.Name] = p
			continue
		}
		w.pods[p.Name] = p
		w.byName[p.Name] = &Agent{Name: p.Name, Template: p.Labels[podtemplate.LabelTemplate], Pod: p}
	}
	for _, cr := range snap.Creating {
		w.creating[cr.Name] = cr.Template
	}
	for i := range snap.Computers {
		comp := &snap.Computers[i]
		switch owners[comp.Name] {
		case nodeNotMarked:
			continue // not ours: the placeholder, static agents, the built-in node
		case nodeForeign:
			w.foreignNodes = append(w.foreignNodes, comp.Name)
			continue
		case nodeLegacy:
			if w.pods[comp.Name] == nil {
				// The format before installation ids names a namespace, not an installation:
				// without a pod of ours beside it, it may be another cluster's.
				w.foreignNodes = append(w.foreignNodes, comp.Name)
				continue
			}
		}
		desc, _ := parseNodeDescription(comp.Description)
		a := w.byName[comp.Name]
		if a == nil {
			a = &Agent{Name: comp.Name, Template: desc.Template}
			w.byName[comp.Name] = a
		}
		a.Computer = comp
	}
	opts := classifyOptions{UnschedulableGrace: cfg.UnschedulableGrace, DefaultConnectTimeout: cfg.DefaultConnectTimeout,
		OrphanGrace: cfg.OrphanGrace, ConfigErrorGrace: cfg.ConfigErrorGrace, JenkinsBack: jenkinsBack}
	for _, a := range w.byName {
		a.State, a.Reason = classify(a.Pod, a.Computer, now, snap.At, opts)
		if a.State == Lost && a.Pod == nil {
			a.State, a.Reason = lostWithoutPod(a, snap.Gone, w.creating)
		}
		a.Build = currentBuild(a.Computer)
		a.Marked = carriesOurMark(a.Computer)
		w.agents = append(w.agents, a)
	}
	sort.Slice(w.agents, func(i, j int) bool { return w.agents[i].Name < w.agents[j].Name })
	return w
}

// ownedSecret is the cached Secret of an agent's pod: ours by label (the cache selects on it) and
// owned by the pod's UID. A Secret that merely shares the pod's name is never deleted with it.
func (w *world) ownedSecret(pod *corev1.Pod) *corev1.Secret {
	if pod == nil || pod.UID == "" {
		return nil
	}
	for _, s := range w.snap.Secrets {
		if s.Name != pod.Name {
			continue
		}
		for _, o := range s.OwnerReferences {
			if o.Kind == "Pod" && o.UID == pod.UID {
				return s
			}
		}
	}
	return nil
}

// outcomes weighs what act learned: a refused creation backs its template off like a failure.
func (d *Decision) outcomes(list []Outcome, cfg DecideConfig) {
	for _, o := range list {
		wait := d.Memory.fail(o.Template, o.Reason, o.At, time.Time{}, cfg)
		d.Memory.recordFailure(FailureRecord{At: o.At, Agent: o.Agent, Template: o.Template, Reason: o.Reason.Detail, Kind: o.Reason.Kind})
		d.Notices = append(d.Notices, Notice{Kind: NoticeRefused, Agent: o.Agent, Template: o.Template, Pod: o.Pod, Reason: o.Reason,
			Code: o.Code, Backoff: wait})
	}
}

// agent applies the rules of one agent's state.
func (d *Decision) agent(w *world, a *Agent, cfg DecideConfig, now time.Time, evicted bool) {
	d.notices(a, now)
	base := Action{Agent: a.Name, Template: a.Template, State: a.State, Reason: a.Reason, Pod: a.Pod, Node: a.Computer != nil}
	switch a.State {
	case Busy:
		// A ready mark does not stop a build Jenkins handed out just before it landed.
		if !a.Marked || readyMarked(a.Computer) {
			base.Kind, base.Build = ActMarkBusy, a.Build
			d.Actions = append(d.Actions, base)
		}
	case Done, Released:
		base.Kind = ActFinish
		base.Secret = w.ownedSecret(a.Pod)
		base.Retain = a.State == Done && a.Pod != nil && a.Pod.Annotations[annotationPodRetention] == string(podtemplate.RetentionAlways)
		d.Actions = append(d.Actions, base)
	case Failed:
		d.failed(w, a, base, cfg, now)
	case Orphan:
		// Half of an agent Kueue evicted needs no grace: the pod is known gone for good.
		if w.orphanExpired(a, cfg) || (evicted && a.Pod == nil) {
			base.Kind = ActRemoveOrphan
			base.Secret = w.ownedSecret(a.Pod)
			d.Actions = append(d.Actions, base)
		}
	case Terminating:
		if a.Computer != nil {
			base.Kind = ActDeleteNode
			d.Actions = append(d.Actions, base)
		}
	case Retained:
		if until, err := time.Parse(time.RFC3339, a.Pod.Annotations[annotationRetainUntil]); err != nil || now.After(until) {
			base.Kind, base.Reason = ActExpire, Reason{KindRetentionExpired, "retention expired"}
			base.Secret = w.ownedSecret(a.Pod)
			d.Actions = append(d.Actions, base)
		}
	case Suspended:
		d.suspended(w, a, base, cfg)
	case Resuming:
		d.resuming(w, a, base, now)
	case Lost:
		d.lost(w, a, base, now)
	case Idle, Starting:
		// Any agent that is, or may any moment be, connected and unmarked: a starting pod can
		// connect, take a build and finish a short one between two polls.
		if a.Pod != nil && !a.Marked {
			d.Exposed++
		}
	}
}

// failed backs the template off once per failed agent and removes the agent (its pod kept when the
// template's podRetention says so).
func (d *Decision) failed(w *world, a *Agent, base Action, cfg DecideConfig, now time.Time) {
	// Back the template off now, before this poll plans new agents: the plan below would
	// otherwise replace the failed agent at once.
	if d.Memory.once("failed/"+a.Name, now) {
		var made time.Time
		if a.Pod != nil {
			made = a.Pod.CreationTimestamp.Time
		}
		wait := d.Memory.fail(a.Template, a.Reason, now, made, cfg)
		d.Memory.recordFailure(FailureRecord{At: now, Agent: a.Name, Template: a.Template, Reason: a.Reason.Detail, Kind: a.Reason.Kind})
		d.Notices = append(d.Notices, Notice{Kind: NoticeFailed, Agent: a.Name, Template: a.Template, Pod: a.Pod, Reason: a.Reason, Backoff: wait})
	}
	base.Kind = ActFail
	base.Secret = w.ownedSecret(a.Pod)
	base.NodeMarkedFailed = a.Computer != nil && strings.HasPrefix(a.Computer.OfflineReason, reasonFailed)
	if a.Pod != nil {
		switch podtemplate.Retention(a.Pod.Annotations[annotationPodRetention]) {
		case podtemplate.RetentionOnFailure, podtemplate.RetentionAlways:
			base.Retain = true
		}
	}
	d.Actions = append(d.Actions, base)
}

// lost tells, once, that an agent was killed under its build (in Kueue's words when Kueue evicted
// it) and removes what is left of it.
func (d *Decision) lost(w *world, a *Agent, base Action, now time.Time) {
	base.Build = markedBuild(a.Computer)
	if base.Build == "" {
		base.Build = a.Build
	}
	// Kueue's eviction is the more specific cause: say it in Kueue's words (and count the build
	// lost to it); any other killing is told as lost with its kind.
	if r, evicted := kueueEvictionOf(a.Pod); evicted {
		base.Reason = r
		if d.Memory.once("evicted/"+a.Name, now) {
			d.Notices = append(d.Notices, Notice{Kind: NoticeEvicted, Agent: a.Name, Template: a.Template, Pod: a.Pod, Reason: r, Build: base.Build})
		}
	} else if d.Memory.once("lost/"+a.Name, now) {
		d.Notices = append(d.Notices, Notice{Kind: NoticeLost, Agent: a.Name, Template: a.Template, Pod: a.Pod, Reason: a.Reason, Build: base.Build})
	}
	base.Kind = ActLose
	if a.Pod != nil && a.Pod.DeletionTimestamp != nil {
		base.Pod = nil // already going
	} else {
		base.Secret = w.ownedSecret(a.Pod)
	}
	d.Actions = append(d.Actions, base)
}

// notices are the once-per-agent observations: online (which also ends its template's backoff) and
// build started.
func (d *Decision) notices(a *Agent, now time.Time) {
	if a.Pod == nil {
		return
	}
	if (a.State == Idle || a.State == Busy) && d.Memory.once("online/"+a.Name, now) {
		delete(d.Memory.Backoff, a.Template)
		n := Notice{Kind: NoticeOnline, Agent: a.Name, Template: a.Template, Pod: a.Pod}
		if queued, err := time.Parse(time.RFC3339Nano, a.Pod.Annotations[annotationQueuedAt]); err == nil {
			n.Latency = now.Sub(queued)
		}
		d.Notices = append(d.Notices, n)
	}
	if a.State == Busy && a.Build != "" {
		d.Memory.Builds[a.Name] = a.Build
	}
	if a.State == Busy && a.Build != "" && d.Memory.once("busy/"+a.Name, now) {
		d.Notices = append(d.Notices, Notice{Kind: NoticeBuildStarted, Agent: a.Name, Template: a.Template, Pod: a.Pod, Build: a.Build})
	}
}

// orphanExpired applies the grace to half an agent. A node's age is in its description.
func (w *world) orphanExpired(a *Agent, cfg DecideConfig) bool {
	if _, creating := w.creating[a.Name]; creating {
		return false
	}
	if a.Pod != nil {
		return true // classify already applied the grace to pods
	}
	if a.Computer == nil {
		return false
	}
	desc, _ := parseNodeDescription(a.Computer.Description)
	return w.snap.At.Sub(desc.Created) > cfg.OrphanGrace
}

// secrets removes per-agent Secrets whose pod is gone, and gives an owner to those whose pod exists
// but which a crash left without one.
func (d *Decision) secrets(w *world, cfg DecideConfig) {
	for _, s := range w.snap.Secrets {
		if pod, ok := w.pods[s.Name]; ok {
			if len(s.OwnerReferences) == 0 && pod.UID != "" {
				d.Actions = append(d.Actions, Action{Kind: ActOwnSecret, Agent: s.Name, Template: pod.Labels[podtemplate.LabelTemplate], Pod: pod, Secret: s})
			}
			continue
		}
		if _, creating := w.creating[s.Name]; creating || w.snap.At.Sub(s.CreationTimestamp.Time) < cfg.OrphanGrace {
			continue
		}
		if w.nodes[s.Name] {
			continue // the node's own orphan handling removes both
		}
		if _, foreign := w.foreignPods[s.Name]; foreign {
			continue // a foreign pod's Secret is not ours to judge
		}
		d.Actions = append(d.Actions, Action{Kind: ActDeleteSecret, Agent: s.Name, Template: s.Labels[podtemplate.LabelTemplate], Secret: s})
	}
}

// currentBuild is the URL of the first build running on a computer.
func currentBuild(c *jenkins.Computer) string {
	if c == nil {
		return ""
	}
	for _, list := range [][]jenkins.Executor{c.Executors, c.OneOffExecutors} {
		for _, e := range list {
			if e.Build != nil {
				return e.Build.URL
			}
		}
	}
	return ""
}

// kueueEvictionOf is kueueEviction for an agent that may have no pod left.
func kueueEvictionOf(pod *corev1.Pod) (Reason, bool) {
	if pod == nil {
		return Reason{}, false
	}
	return kueueEviction(pod)
}

// foreign reports, once each, the pods and nodes that look like ours but that this installation did
// not make, and counts them for provisioner_foreign_objects.
func (d *Decision) foreign(w *world, now time.Time) {
	names := make([]string, 0, len(w.foreignPods))
	for name := range w.foreignPods {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		d.Foreign["pod"]++
		if d.Memory.once("foreign/pod/"+name, now) {
			d.Notices = append(d.Notices, Notice{Kind: NoticeForeign, Object: "pod", Agent: name, Pod: w.foreignPods[name],
				Reason: Reason{Kind: KindOther, Detail: "pod carries the provisioner's labels but no creation record of this installation"}})
		}
	}
	for _, name := range w.foreignNodes {
		d.Foreign["node"]++
		if d.Memory.once("foreign/node/"+name, now) {
			d.Notices = append(d.Notices, Notice{Kind: NoticeForeign, Object: "node", Agent: name,
				Reason: Reason{Kind: KindOther, Detail: "Jenkins node carries the provisioner's marker but not this installation's identity"}})
		}
	}
}

// lostWithoutPod judges a busy (or busy-marked) node of ours whose pod the cache does not show. Only
// a deletion the watch saw proves the pod was killed under its build: then the agent is lost at once,
// for the reason its final state gives. A pod still being made (its creation not yet cached) is no
// loss, and neither is a pod the cache merely does not show (a watch broken by an apiserver outage, a
// creation whose step failed after the pod was made): for those the orphan grace applies, as to any
// node without its pod, so a cache that catches up never costs a running build.
func lostWithoutPod(a *Agent, gone map[string]Reason, creating map[string]string) (State, Reason) {
	if r, ok := gone[a.Name]; ok {
		return Lost, r // the pod's final state says what killed it
	}
	if _, ok := creating[a.Name]; ok {
		if a.Computer != nil && a.Computer.Busy() {
			return Busy, Reason{}
		}
		return Starting, Reason{}
	}
	return Orphan, Reason{KindNodeWithoutPod, "Jenkins node without a pod (no deletion of it was seen)"}
}
