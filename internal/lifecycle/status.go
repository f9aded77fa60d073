package lifecycle

import (
	"sort"
	"time"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins"
)

// Status is what the status page shows: a copy of the last poll's view.
type Status struct {
	// PolledAt is when Jenkins was last read successfully.
	PolledAt time.Time
	// JenkinsURL links builds and agents.
	JenkinsURL string
	Waiting    []WaitingLabel
	Agents     []AgentStatus
	// Failures are the most recent failures, newest first.
	Failures []FailureRecord
}

// WaitingLabel is the number of builds waiting for one label, the template serving it ("" when
// none does), and why no agent is being made for them right now.
type WaitingLabel struct {
	Label    string
	Template string
	Builds   int
	Oldest   time.Time
	Why      WaitReason
}

// AgentStatus is one agent as the page shows it.
type AgentStatus struct {
	Name     string
	Template string
	State    State
	Created  time.Time
	Build    string
	Reason   string
}

// FailureRecord is one failure with its reason.
type FailureRecord struct {
	At       time.Time
	Agent    string
	Template string
	Reason   string
	Kind     ReasonKind
}

const keptFailures = 50

// Status returns a copy of the latest view, safe to render.
func (c *Controller) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.status
	s.Waiting = append([]WaitingLabel(nil), s.Waiting...)
	s.Agents = append([]AgentStatus(nil), s.Agents...)
	s.Failures = append([]FailureRecord(nil), s.Failures...)
	return s
}

// displayLabel is how the page names what a build waits for.
func displayLabel(d jenkins.Demand, resolved string) string {
	switch {
	case d.Label != "":
		return d.Label
	case d.Node != "":
		return "node " + d.Node
	}
	return resolved
}

// waitingView fills the page's waiting table and the waiting gauge.
func (d *Decision) waitingView(w *world, waiting served, unserved map[string]*unservedLabel, labelOf map[int64]string, plan map[string]planned) {
	byLabel := map[[2]string]*WaitingLabel{}
	for tmpl, list := range waiting {
		for _, dm := range list {
			label := displayLabel(dm, labelOf[dm.QueueID])
			k := [2]string{label, tmpl}
			wl := byLabel[k]
			if wl == nil {
				wl = &WaitingLabel{Label: label, Template: tmpl, Oldest: dm.InQueueSince, Why: plan[tmpl].Why}
				byLabel[k] = wl
			}
			wl.Builds++
			if dm.InQueueSince.Before(wl.Oldest) {
				wl.Oldest = dm.InQueueSince
			}
			d.Waiting[WaitKey{metricLabel(labelOf[dm.QueueID]), wl.Why.Kind}]++
		}
	}
	for label, u := range unserved {
		byLabel[[2]string{label, ""}] = &WaitingLabel{Label: label, Builds: u.Builds, Oldest: u.Oldest, Why: u.Why}
		d.Waiting[WaitKey{metricLabel(label), u.Why.Kind}] += u.Builds
	}
	ws := make([]WaitingLabel, 0, len(byLabel))
	for _, wl := range byLabel {
		ws = append(ws, *wl)
	}
	sort.Slice(ws, func(i, j int) bool {
		if !ws[i].Oldest.Equal(ws[j].Oldest) {
			return ws[i].Oldest.Before(ws[j].Oldest)
		}
		return ws[i].Label+"\x00"+ws[i].Template < ws[j].Label+"\x00"+ws[j].Template
	})
	d.Status.Waiting = ws
}

func metricLabel(label string) string {
	if label == "" {
		return "(none)"
	}
	return truncateLabel(label)
}

// status fills the page's agent table, the agent gauge and the failures.
func (d *Decision) status(w *world) {
	d.Status.PolledAt = w.snap.At
	d.Status.Failures = d.Memory.Failures
	d.Status.Agents = make([]AgentStatus, 0, len(w.agents))
	for _, a := range w.agents {
		s := AgentStatus{Name: a.Name, Template: a.Template, State: a.State, Build: a.Build, Reason: a.Reason.Detail}
		if a.Pod != nil {
			s.Created = a.Pod.CreationTimestamp.Time
		} else if a.Computer != nil {
			desc, _ := parseNodeDescription(a.Computer.Description)
			s.Created = desc.Created
		}
		d.Status.Agents = append(d.Status.Agents, s)
		d.Agents[AgentKey{a.Template, a.State}]++
	}
}
