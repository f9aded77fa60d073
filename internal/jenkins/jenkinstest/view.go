package jenkinstest

import (
	"slices"
	"sort"
)

// One /api/json answer asks the same questions many times: every queue item's `why` and `stuck`
// look at the nodes of its label, every item's task looks for the job's queue item, every label
// reference counts its nodes' executors. Nothing changes while an answer is built (it is built
// under s.mu), so a view remembers those answers for the length of one request. Outside a request
// (s.view nil) the same functions compute directly, so the tests that call them between passes
// see the live state.

// view is the per-request memo; set by writeBean while it holds s.mu, nil otherwise.
type view struct {
	labels    map[string]*labelSummary // by label.key
	queued    map[*job]*queueItem      // Job.getQueueItem; nil until first asked
	setIdle   int                      // ComputerSet.getIdleExecutors; -1 until first asked
	atoms     map[string][]*node       // label atom → computers carrying it; nil until first asked
	atomBeans map[string]*bean         // label atom → its bean
	nodeBeans map[nodeInLang]*bean
}

type nodeInLang struct {
	n *node
	l lang
}

func newView() *view {
	return &view{labels: map[string]*labelSummary{}, setIdle: -1,
		atomBeans: map[string]*bean{}, nodeBeans: map[nodeInLang]*bean{}}
}

// labelSummary is what the queue's messages and /label/X report about the computers of a label.
type labelSummary struct {
	nodes             []*node // computers whose node satisfies the label, in computer order
	offline           bool    // no computer of the label is online (also when there is none)
	busy, idle, total int     // executors of the label's online computers
}

func (s *Server) labelState(lbl *label) *labelSummary {
	if s.view != nil {
		if ls, ok := s.view.labels[lbl.key]; ok {
			return ls
		}
	}
	ls := &labelSummary{offline: true}
	for _, n := range s.labelCandidates(lbl) {
		if !lbl.matches(n) {
			continue
		}
		ls.nodes = append(ls.nodes, n)
		if !n.offline() {
			idle := n.idleCount()
			ls.offline = false
			ls.total += len(n.executors)
			ls.idle += idle
			ls.busy += len(n.executors) - idle
		}
	}
	if s.view != nil {
		s.view.labels[lbl.key] = ls
	}
	return ls
}

// labelCandidates are the computers that may satisfy lbl, in computer order: for a label
// matched as one atom (a node's own labels, asked for once per computer in a depth=1 answer) only
// those carrying it, from an index built once per answer; otherwise all.
func (s *Server) labelCandidates(lbl *label) []*node {
	if s.view == nil || lbl.expr != nil {
		return s.computers()
	}
	if s.view.atoms == nil {
		s.view.atoms = map[string][]*node{}
		for _, n := range s.computers() {
			for _, a := range n.labels() {
				s.view.atoms[a] = append(s.view.atoms[a], n)
			}
		}
	}
	return s.view.atoms[lbl.name]
}

// jobQueueItem is Job.getQueueItem as the emulator reports it: the job's last own item in the
// queue (not a pipeline's node item), nil when none.
func (s *Server) jobQueueItem(j *job) *queueItem {
	if s.view == nil {
		var queued *queueItem
		for _, it := range s.items {
			if it.job == j && it.placeholder == nil {
				queued = it
			}
		}
		return queued
	}
	if s.view.queued == nil {
		s.view.queued = map[*job]*queueItem{}
		for _, it := range s.items {
			if it.placeholder == nil {
				s.view.queued[it.job] = it
			}
		}
	}
	return s.view.queued[j]
}

// computers is Jenkins.getComputers: the built-in node first, then agents by name. The list is
// kept sorted as nodes are added and removed, since the queue walks it on every pass and sorting
// a thousand names each time showed in every profile. Callers must not modify it.
func (s *Server) computers() []*node {
	if s.computerList == nil {
		s.computerList = append([]*node{s.builtIn}, s.sortedAgents()...)
	}
	return s.computerList
}

// nodeAdded and nodeRemoved keep computers() in order; callers hold s.mu and have just changed
// s.nodes. The list is copied rather than changed in place, so that a slice handed out earlier
// never shifts under its holder.
func (s *Server) nodeAdded(n *node) {
	list := s.computerList
	if list == nil {
		return // built from s.nodes when next asked for
	}
	i := 1 + sort.Search(len(list)-1, func(i int) bool { return !javaLess(list[1+i].name, n.name) })
	s.computerList = slices.Insert(slices.Clone(list), i, n)
}

func (s *Server) nodeRemoved(n *node) {
	if s.computerList != nil {
		s.computerList = slices.DeleteFunc(slices.Clone(s.computerList), func(x *node) bool { return x == n })
	}
}

// sortedAgents are the agent nodes by name, as Jenkins sorts computers.
func (s *Server) sortedAgents() []*node {
	out := make([]*node, 0, len(s.nodes))
	for _, n := range s.nodes {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return javaLess(out[i].name, out[j].name) })
	return out
}
