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

// WaitingLabel is the number of builds waiting for one label, and the template serving it.
type WaitingLabel struct {
	Label    string
	Template string
	Builds   int
	Oldest   time.Time
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

func (c *Controller) recordFailure(a *Agent, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rec := FailureRecord{At: c.now(), Agent: a.Name, Template: a.Template, Reason: reason}
	c.status.Failures = append([]FailureRecord{rec}, c.status.Failures...)
	if len(c.status.Failures) > keptFailures {
		c.status.Failures = c.status.Failures[:keptFailures]
	}
}

func (c *Controller) updateStatus(snap *snapshot, waiting map[string][]jenkins.Demand) {
	byLabel := map[string]*WaitingLabel{}
	for tmpl, list := range waiting {
		for _, d := range list {
			label := d.Label
			if label == "" && d.Node != "" {
				label = "node " + d.Node
			}
			w := byLabel[label+"\x00"+tmpl]
			if w == nil {
				w = &WaitingLabel{Label: label, Template: tmpl, Oldest: d.InQueueSince}
				byLabel[label+"\x00"+tmpl] = w
			}
			w.Builds++
			if d.InQueueSince.Before(w.Oldest) {
				w.Oldest = d.InQueueSince
			}
		}
	}
	ws := make([]WaitingLabel, 0, len(byLabel))
	for _, w := range byLabel {
		ws = append(ws, *w)
	}
	sort.Slice(ws, func(i, j int) bool { return ws[i].Oldest.Before(ws[j].Oldest) })

	counts := map[[2]string]int{}
	agents := make([]AgentStatus, 0, len(snap.agents))
	for _, a := range snap.agents {
		s := AgentStatus{Name: a.Name, Template: a.Template, State: a.State, Build: a.Build, Reason: a.Reason}
		if a.Pod != nil {
			s.Created = a.Pod.CreationTimestamp.Time
		} else if a.Computer != nil {
			_, s.Created, _ = parseNodeDescription(a.Computer.Description)
		}
		agents = append(agents, s)
		counts[[2]string{a.Template, string(a.State)}]++
	}
	c.metrics.setAgents(counts)

	c.mu.Lock()
	defer c.mu.Unlock()
	c.status.PolledAt = snap.at
	c.status.JenkinsURL = c.cfg.JenkinsURL
	c.status.Waiting = ws
	c.status.Agents = agents
}
