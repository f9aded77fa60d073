package jenkins

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jenkins-agent-provisioner/provisioner/internal/labelexpr"
)

// DemandKind tells what kind of task waits: it decides how an Ambiguous item can still be resolved
// (a freestyle job's label can be read from the job; a pipeline placeholder's cannot).
type DemandKind string

// Kinds of queued task.
const (
	KindFreestyle DemandKind = "freestyle" // hudson.model.FreeStyleProject (legacy: any job URL)
	KindPipeline  DemandKind = "pipeline"  // a pipeline node() step: ExecutorStepExecution$PlaceholderTask
	KindOther     DemandKind = "other"     // any other task (matrix configurations, maven modules, ...)
)

// Demand is one queue item an agent could serve.
type Demand struct {
	QueueID      int64
	Label        string // normalised label expression Jenkins waits for; "" when none named
	Node         string // set instead of Label when why names a single node
	Ambiguous    bool   // why named neither (composite or "Waiting for next available executor")
	TaskName     string
	TaskURL      string // absolute; for a pipeline placeholder the URL of its run (job/J/N/)
	Kind         DemandKind
	InQueueSince time.Time
	Stuck        bool
	Why          string

	// MaybeNode and Unlabelled: see Why.
	MaybeNode  bool
	Unlabelled bool

	// Err is set when why names a label too long or too deeply nested to read (errors.Is
	// labelexpr.ErrTooLong or labelexpr.ErrTooDeep); Label, Node and Ambiguous are then empty. The
	// item is one no template can serve: report it (status page, log) and go on with the others.
	Err error
}

// Task classes (the `_class` Jenkins reports).
const (
	classPlaceholder = "org.jenkinsci.plugins.workflow.support.steps.ExecutorStepExecution$PlaceholderTask"
	classFreestyle   = "hudson.model.FreeStyleProject"
	// A pipeline job's own run is a flyweight task: it runs on the controller's one-off executors and
	// never needs an agent. Only its node() steps (placeholders) do.
	classWorkflowJob = "org.jenkinsci.plugins.workflow.job.WorkflowJob"
)

// queuePath asks for exactly the fields demand is built from; tree= also keeps the answer small
// whatever plugins add to queue items.
const queuePath = "queue/api/json?tree=items%5Bid%2Cwhy%2Cblocked%2Cbuildable%2Cstuck%2Cpending%2CinQueueSince%2CbuildableStartMilliseconds%2Ctask%5Bname%2Curl%5D%5D"

// Queue reads the build queue with one request and returns the items an agent could serve, in
// Jenkins' order. Items waiting for something else (quiet period, a running build, an upstream
// build, shutdown), blocked items, items already handed to an executor (pending) and pipeline runs
// themselves (flyweight, they run on the controller) are left out.
func (c *Client) Queue(ctx context.Context) ([]Demand, error) {
	res, err := c.do(ctx, call{method: "GET", endpoint: "queue", path: queuePath})
	if err != nil {
		return nil, err
	}
	var q queueJSON
	if err := c.decodeJSON("queue", displayPath(queuePath), res, &q); err != nil {
		return nil, err
	}
	return demands(q, c.base), nil
}

type queueJSON struct {
	Items []queueItemJSON `json:"items"`
}

type queueItemJSON struct {
	Class        string  `json:"_class"`
	ID           int64   `json:"id"`
	Why          *string `json:"why"`
	Blocked      bool    `json:"blocked"`
	Buildable    bool    `json:"buildable"`
	Stuck        bool    `json:"stuck"`
	Pending      bool    `json:"pending"`
	InQueueSince int64   `json:"inQueueSince"`
	Task         struct {
		Class string `json:"_class"`
		Name  string `json:"name"`
		URL   string `json:"url"`
	} `json:"task"`
}

// parseQueue decodes a /queue/api/json answer into demand. base resolves relative task URLs.
func parseQueue(data []byte, base *url.URL) ([]Demand, error) {
	var q queueJSON
	if err := json.Unmarshal(data, &q); err != nil {
		return nil, fmt.Errorf("jenkins: decode queue: %w", err)
	}
	return demands(q, base), nil
}

func demands(q queueJSON, base *url.URL) []Demand {
	out := make([]Demand, 0, len(q.Items))
	// Builds of one job, or many node() steps with one label, share a why text: read each once.
	whys := map[string]Why{}
	for _, it := range q.Items {
		if !waitsForExecutor(it) {
			continue
		}
		why := ""
		if it.Why != nil {
			why = *it.Why
		}
		w, seen := whys[why]
		if !seen {
			w = ParseWhy(why)
			whys[why] = w
		}
		if w.NotDemand {
			continue
		}
		d := Demand{
			QueueID:    it.ID,
			Label:      w.Label,
			Node:       w.Node,
			Ambiguous:  w.Ambiguous,
			MaybeNode:  w.MaybeNode,
			Unlabelled: w.Unlabelled,
			TaskName:   it.Task.Name,
			TaskURL:    resolveURL(base, it.Task.URL),
			Kind:       kindOf(it.Task.Class, it.Task.URL),
			Stuck:      it.Stuck,
			Why:        why,
			Err:        w.Err,
		}
		if it.InQueueSince > 0 {
			d.InQueueSince = time.UnixMilli(it.InQueueSince).UTC()
		}
		out = append(out, d)
	}
	return out
}

// waitsForExecutor keeps buildable items not yet handed to an executor. Items carry their class
// since Jenkins 2.x; older answers only have the flags.
func waitsForExecutor(it queueItemJSON) bool {
	if it.Task.Class == classWorkflowJob {
		return false
	}
	switch {
	case strings.HasSuffix(it.Class, "$BuildableItem"):
		return !it.Pending
	case it.Class != "":
		// $WaitingItem (quiet period), $BlockedItem, $LeftItem.
		return false
	}
	return it.Buildable && !it.Blocked && !it.Pending
}

// kindOf classifies a task by class, or for answers without `_class` (before Jenkins 2.x) by its
// URL: a job URL is taken for a freestyle job, the commonest task of that era.
func kindOf(class, taskURL string) DemandKind {
	switch class {
	case classPlaceholder:
		return KindPipeline
	case classFreestyle:
		return KindFreestyle
	case "":
		if strings.Contains("/"+taskURL, "/job/") && !looksLikeRunURL(taskURL) {
			return KindFreestyle
		}
		return KindOther
	}
	return KindOther
}

// looksLikeRunURL recognises job/J/N/, the URL of a run rather than of a job.
func looksLikeRunURL(u string) bool {
	segs := strings.Split(strings.Trim(u, "/"), "/")
	if len(segs) < 2 {
		return false
	}
	last := segs[len(segs)-1]
	if last == "" {
		return false
	}
	for _, r := range last {
		if r < '0' || r > '9' {
			return false
		}
	}
	return segs[len(segs)-2] != "job"
}

// resolveURL makes a task URL absolute: pipeline placeholders report job/J/N/ relative to the root.
func resolveURL(base *url.URL, ref string) string {
	if ref == "" || base == nil {
		return ref
	}
	u, err := url.Parse(ref)
	if err != nil {
		return ref
	}
	return base.ResolveReference(u).String()
}

// ResolveNodes settles, with the computer list of the same poll, what ParseWhy cannot: when
// "Waiting for next available executor on X" names a node (MaybeNode and X is a computer's name),
// the demand's Label moves to Node. It returns a new slice; demands is not modified.
func ResolveNodes(demands []Demand, computers []Computer) []Demand {
	names := make(map[string]string, len(computers))
	for _, c := range computers {
		names[labelexpr.QuoteAtom(c.Name)] = c.Name
	}
	out := make([]Demand, len(demands))
	for i, d := range demands {
		if d.MaybeNode && d.Label != "" {
			if name, ok := names[d.Label]; ok {
				d.Node, d.Label, d.MaybeNode = name, "", false
			}
		}
		out[i] = d
	}
	return out
}
