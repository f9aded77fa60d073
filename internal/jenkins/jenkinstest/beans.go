package jenkinstest

import (
	"net/url"
	"strconv"
	"time"
)

// The beans below list each Jenkins class's @Exported properties: superclass first, each class's
// own sorted by name, with the visibility Jenkins gives them (2 or 3 where nested objects show a
// property at depth 0, as the recorded payloads prove). Callers hold s.mu.

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func pathEscape(s string) string { return url.PathEscape(s) }

// rootBean is hudson.model.Hudson at /api/json: Node's properties, then Jenkins'.
func (s *Server) rootBean(l lang, pr principal) *bean {
	n := s.builtIn
	var jobs []any
	for _, name := range s.jobOrder {
		if pr.user.has(JobRead) {
			j := s.jobs[name]
			jobs = append(jobs, func() any { return s.jobBean(j, l) })
		}
	}
	if jobs == nil {
		jobs = []any{}
	}
	allView := func() any {
		return &bean{class: "hudson.model.AllView", props: []prop{pv("name", 2, "all"), pv("url", 2, s.url)}}
	}
	return &bean{class: "hudson.model.Hudson", props: []prop{
		p("assignedLabels", s.labelRefs(n)),
		p("mode", n.mode),
		p("nodeDescription", msg(l, "Hudson.NodeDescription")),
		p("nodeName", ""),
		p("numExecutors", n.numExecutors),
		p("description", nil),
		p("jobs", jobs),
		p("overallLoad", &bean{}),
		pv("primaryView", 2, allView),
		p("quietDownReason", nil),
		p("quietingDown", false),
		p("slaveAgentPort", -1),
		p("unlabeledLoad", &bean{class: "jenkins.model.UnlabeledLoadStatistics"}),
		p("url", s.url),
		p("useCrumbs", true),
		p("useSecurity", true),
		p("views", []any{allView}),
	}}
}

// labelRefs is Node.getAssignedLabels: LabelAtom beans, declared type, so no _class.
func (s *Server) labelRefs(n *node) []any {
	out := []any{}
	for _, a := range n.labels() {
		out = append(out, func() any { return s.atomBean(a) })
	}
	return out
}

// atomBean is the bean of one node label. With depth=1 every computer shows its labels with their
// nodes, so at a thousand agents the same few label beans are asked for a thousand times each;
// within one answer they are built once.
func (s *Server) atomBean(name string) *bean {
	if s.view == nil {
		return s.labelBean(atomLabel(name), "", langEN)
	}
	b, ok := s.view.atomBeans[name]
	if !ok {
		b = s.labelBean(atomLabel(name), "", langEN)
		s.view.atomBeans[name] = b
	}
	return b
}

// labelBean is hudson.model.Label (/label/X/api/json; nested, only name shows at depth 0).
func (s *Server) labelBean(lbl *label, class string, l lang) *bean {
	// Every computer's assignedLabels refers to label beans, so the counts are left to the view's
	// label summary and the node list is built only when the answer shows it.
	ls := func() *labelSummary { return s.labelState(lbl) }
	nodes := func() any {
		out := make([]any, 0, len(ls().nodes))
		for _, n := range ls().nodes {
			out = append(out, func() any { return s.nodeBean(n, l) })
		}
		return out
	}
	return &bean{class: class, props: []prop{
		p("actions", []any{}),
		p("busyExecutors", func() any { return ls().busy }),
		p("clouds", []any{}),
		p("description", nil),
		p("idleExecutors", func() any { return ls().idle }),
		p("loadStatistics", &bean{class: "hudson.model.Label$1"}),
		pv("name", 2, lbl.name),
		p("nodes", nodes),
		p("offline", func() any { return ls().offline }),
		p("tiedJobs", []any{}),
		p("totalExecutors", func() any { return ls().total }),
		p("propertiesList", []any{}),
	}}
}

// nodeBean is hudson.model.Node (DumbSlave, or Hudson for the built-in node).
func (s *Server) nodeBean(n *node, l lang) *bean {
	if s.view == nil {
		return s.newNodeBean(n, l)
	}
	key := nodeInLang{n, l}
	b, ok := s.view.nodeBeans[key]
	if !ok {
		b = s.newNodeBean(n, l)
		s.view.nodeBeans[key] = b
	}
	return b
}

func (s *Server) newNodeBean(n *node, l lang) *bean {
	class, name, desc := "hudson.slaves.DumbSlave", n.name, n.description
	if n.builtIn {
		class, desc = "hudson.model.Hudson", msg(l, "Hudson.NodeDescription")
	}
	return &bean{class: class, props: []prop{
		p("assignedLabels", func() any { return s.labelRefs(n) }),
		p("mode", n.mode),
		p("nodeDescription", desc),
		pv("nodeName", 2, name),
		p("numExecutors", n.numExecutors),
	}}
}

// jobBean is FreeStyleProject or WorkflowJob.
func (s *Server) jobBean(j *job, l lang) *bean {
	runRef := func(r *run) any {
		if r == nil {
			return nil
		}
		return func() any { return s.runBean(r, l) }
	}
	var builds []any
	var last, lastDone, lastOK, lastFail, lastBad *run
	for i := len(j.runs) - 1; i >= 0; i-- {
		r := j.runs[i]
		builds = append(builds, runRef(r))
		if last == nil {
			last = r
		}
		if r.done {
			if lastDone == nil {
				lastDone = r
			}
			if r.result == "SUCCESS" && lastOK == nil {
				lastOK = r
			}
			if r.result == "FAILURE" && lastFail == nil {
				lastFail = r
			}
			if r.result != "SUCCESS" && lastBad == nil {
				lastBad = r
			}
		}
	}
	if builds == nil {
		builds = []any{}
	}
	var first *run
	if len(j.runs) > 0 {
		first = j.runs[0]
	}
	queued := s.jobQueueItem(j)
	var queueItem any
	if queued != nil {
		queueItem = func() any { return s.itemBean(queued, l, time.Now()) }
	}
	props := []prop{
		p("actions", []any{}),
		p("description", ""),
		p("displayName", j.name),
		p("displayNameOrNull", nil),
		p("fullDisplayName", j.name),
		p("fullName", j.name),
		pv("name", 2, j.name),
		pv("url", 2, s.url+"job/"+pathEscape(j.name)+"/"),
		p("buildable", true),
		p("builds", builds),
		pv("color", 2, j.color()),
		p("firstBuild", runRef(first)),
		p("healthReport", []any{}),
		p("inQueue", queued != nil),
		p("keepDependencies", false),
		p("lastBuild", runRef(last)),
		p("lastCompletedBuild", runRef(lastDone)),
		p("lastFailedBuild", runRef(lastFail)),
		p("lastStableBuild", runRef(lastOK)),
		p("lastSuccessfulBuild", runRef(lastOK)),
		p("lastUnstableBuild", nil),
		p("lastUnsuccessfulBuild", runRef(lastBad)),
		p("nextBuildNumber", j.nextNumber),
		p("property", []any{}),
		p("queueItem", queueItem),
		p("concurrentBuild", j.concurrent),
	}
	if j.kind == kindPipeline {
		props = append(props, p("resumeBlocked", false))
	} else {
		var expr any
		if j.label != "" {
			expr = j.label
		}
		props = append(props,
			p("disabled", false),
			p("downstreamProjects", []any{}),
			p("labelExpression", expr),
			p("scm", &bean{class: "hudson.scm.NullSCM"}),
			p("upstreamProjects", []any{}))
	}
	return &bean{class: j.class(), props: props}
}

// runBean is FreeStyleBuild or WorkflowRun.
func (s *Server) runBean(r *run, l lang) *bean {
	var duration int64
	if r.done {
		duration = r.finished.Sub(r.begun).Milliseconds()
	}
	var result any
	if r.done {
		result = r.result
	}
	var exec any
	if !r.done {
		exec = &bean{}
	}
	est := r.job.estimatedDuration()
	estMS := int64(-1)
	if est >= 0 {
		estMS = est.Milliseconds()
	}
	props := []prop{
		p("actions", []any{}),
		p("artifacts", []any{}),
		p("building", !r.done),
		p("description", nil),
		p("displayName", "#"+strconv.Itoa(r.number)),
		p("duration", duration),
		p("estimatedDuration", estMS),
		p("executor", exec),
		p("fullDisplayName", r.job.name+" #"+strconv.Itoa(r.number)),
		p("id", strconv.Itoa(r.number)),
		p("keepLog", false),
		pv("number", 2, r.number),
		p("queueId", r.queueID),
		p("result", result),
		p("timestamp", ms(r.begun)),
		pv("url", 2, r.url(s.url)),
	}
	if r.job.kind == kindPipeline {
		props = append(props,
			p("changeSets", []any{}),
			p("culprits", []any{}),
			p("inProgress", !r.done),
			p("nextBuild", nil),
			p("previousBuild", nil))
	} else {
		props = append(props,
			p("builtOn", r.node),
			p("changeSet", &bean{class: "hudson.scm.EmptyChangeLogSet", props: []prop{p("items", []any{}), p("kind", nil)}}),
			p("culprits", []any{}))
	}
	return &bean{class: r.job.runClass(), props: props}
}

// placeholderExecutableBean is what a pipeline node block shows as an executor's
// currentExecutable.
func (s *Server) placeholderExecutableBean(r *run) *bean {
	return &bean{class: "org.jenkinsci.plugins.workflow.support.steps.ExecutorStepExecution$PlaceholderTask$PlaceholderExecutable", props: []prop{
		p("displayName", r.blockName()),
		p("estimatedDuration", int64(-1)),
		p("fullDisplayName", r.blockName()),
		pv("number", 2, r.number),
		p("timestamp", ms(r.started)),
		pv("url", 2, r.url(s.url)),
	}}
}

// itemBean is a Queue.Item subclass.
func (s *Server) itemBean(it *queueItem, l lang, now time.Time) *bean {
	class := map[itemState]string{
		stateWaiting:   "hudson.model.Queue$WaitingItem",
		stateBlocked:   "hudson.model.Queue$BlockedItem",
		stateBuildable: "hudson.model.Queue$BuildableItem",
		statePending:   "hudson.model.Queue$BuildableItem",
		stateLeft:      "hudson.model.Queue$LeftItem",
	}[it.state]
	var actions []any
	if it.placeholder != nil {
		actions = []any{&bean{}}
	} else {
		userName, userID := "anonymous", any(nil)
		if it.user != "" {
			userName, userID = it.user, it.user
		}
		cause := &bean{class: "hudson.model.Cause$UserIdCause", props: []prop{
			pv("shortDescription", 3, "Started by user "+userName),
			pv("userId", 3, userID),
			pv("userName", 3, userName),
		}}
		actions = []any{&bean{class: "hudson.model.CauseAction", props: []prop{pv("causes", 2, []any{cause})}}}
	}
	var task any
	if it.placeholder != nil {
		r := it.placeholder
		task = &bean{class: "org.jenkinsci.plugins.workflow.support.steps.ExecutorStepExecution$PlaceholderTask", props: []prop{
			p("name", "part of "+r.job.name+" #"+strconv.Itoa(r.number)),
			p("url", "job/"+pathEscape(r.job.name)+"/"+strconv.Itoa(r.number)+"/"),
		}}
	} else {
		j := it.job
		task = func() any { return s.jobBean(j, l) }
	}
	props := []prop{
		p("actions", actions),
		p("blocked", it.state == stateBlocked),
		p("buildable", it.state == stateBuildable || it.state == statePending),
		p("id", it.id),
		p("inQueueSince", ms(it.inQueueSince)),
		p("params", ""),
		// Lazy: both look at the item's label's nodes, which a tree= without them need not pay.
		p("stuck", func() any { return s.stuck(it, now) }),
		p("task", task),
		p("url", "queue/item/"+strconv.FormatInt(it.id, 10)+"/"),
		p("why", func() any { return s.why(it, l, now) }),
	}
	switch it.state {
	case stateWaiting:
		props = append(props, p("timestamp", ms(it.timestamp)))
	case stateBlocked:
		props = append(props, p("buildableStartMilliseconds", ms(it.buildableAt)))
	case stateBuildable, statePending:
		props = append(props, p("buildableStartMilliseconds", ms(it.buildableAt)), p("pending", it.state == statePending))
	case stateLeft:
		var exe any
		switch r := it.executable; {
		case r != nil && it.placeholder != nil:
			// A node('...') item's executable is its task's PlaceholderExecutable, not the run.
			exe = func() any { return s.placeholderExecutableBean(r) }
		case r != nil:
			exe = func() any { return s.runBean(r, l) }
		}
		props = append(props, p("cancelled", it.cancelled), p("executable", exe))
	}
	return &bean{class: class, props: props}
}

// queueBean is hudson.model.Queue: waiting, blocked, then buildables and pendings newest first
// (Queue.getItems walks those two lists in reverse).
func (s *Server) queueBean(l lang, pr principal) *bean {
	now := time.Now()
	var order []*queueItem
	order = append(order, waitingOrder(s.itemsIn(stateWaiting))...)
	order = append(order, s.itemsIn(stateBlocked)...)
	order = append(order, reversed(s.itemsIn(stateBuildable))...)
	order = append(order, reversed(s.itemsIn(statePending))...)
	items := []any{}
	for _, it := range order {
		if pr.user.has(JobRead) {
			items = append(items, s.itemBean(it, l, now))
		}
	}
	return &bean{class: "hudson.model.Queue", props: []prop{
		p("discoverableItems", []any{}),
		pi("items", items),
	}}
}

func waitingOrder(in []*queueItem) []*queueItem {
	out := append([]*queueItem{}, in...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && (out[j].timestamp.Before(out[j-1].timestamp) ||
			(out[j].timestamp.Equal(out[j-1].timestamp) && out[j].id < out[j-1].id)); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func reversed(in []*queueItem) []*queueItem {
	out := make([]*queueItem, len(in))
	for i, it := range in {
		out[len(in)-1-i] = it
	}
	return out
}
