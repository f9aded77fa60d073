package jenkins

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
)

// Computer is one node as Jenkins' computer list shows it.
type Computer struct {
	Name, Description                            string
	Labels                                       []string // assignedLabels, including the node's own name as Jenkins reports it
	Offline, TemporarilyOffline, Idle, JNLPAgent bool
	OfflineReason                                string
	NumExecutors                                 int
	Executors, OneOffExecutors                   []Executor

	// Connected is true while the agent's channel is up. Jenkins' `offline` is true both for a
	// temporarily-offline computer (our marks) and for one without a channel, so only
	// SlaveComputer#getAbsoluteRemotePath (exported since 2.125: the agent's remote FS root while
	// a channel exists, null without one or without Computer/CONNECT permission) tells a marked,
	// connected agent from a marked, disconnected one. An online computer has a channel
	// (Computer.isOffline is isTemporarilyOffline() || getChannel() == null), and the built-in
	// node always has its local one; a marked agent seen by a user without Agent/Connect, or on
	// a Jenkins before 2.125, reads as not connected.
	Connected bool

	// BuiltIn marks the controller's own node ("Built-In Node", "master" before 2.307): it is in the
	// list but is never an agent.
	BuiltIn bool
}

// Executor is one executor slot; Build is what it runs, nil when idle.
type Executor struct {
	Idle  bool
	Build *Build
}

// Build identifies the run an executor is busy with.
type Build struct {
	URL    string
	Number int
}

// Busy reports whether any executor or one-off executor has a current build. Jenkins' own `idle`
// also turns false for other reasons (an executor being started); a build is the fact that matters
// before deleting a node.
func (c Computer) Busy() bool {
	for _, e := range c.Executors {
		if e.Build != nil {
			return true
		}
	}
	for _, e := range c.OneOffExecutors {
		if e.Build != nil {
			return true
		}
	}
	return false
}

// computerFields is the per-computer tree: what agent state is read from, nothing more (the
// default answer carries monitor data that costs Jenkins time to gather).
const computerFields = "displayName,description,offline,temporarilyOffline,idle,numExecutors,jnlpAgent,offlineCauseReason,absoluteRemotePath," +
	"assignedLabels[name],executors[idle,currentExecutable[url,number]],oneOffExecutors[idle,currentExecutable[url,number]]"

var computersPath = "computer/api/json?tree=" + url.QueryEscape("computer["+computerFields+"]")

// Class of the built-in node's computer.
const classMasterComputer = "hudson.model.Hudson$MasterComputer"

// Computers lists every node (the built-in one flagged BuiltIn) with one request, sorted by name as
// Jenkins sorts them. Build start and finish show in the executors' Build.
func (c *Client) Computers(ctx context.Context) ([]Computer, error) {
	var v computerListJSON
	if err := c.getJSON(ctx, "computers", computersPath, &v); err != nil {
		return nil, err
	}
	out := make([]Computer, 0, len(v.Computer))
	for _, cj := range v.Computer {
		out = append(out, cj.toComputer())
	}
	return out, nil
}

// Computer reads one node. A missing node is ErrNotFound.
func (c *Client) Computer(ctx context.Context, name string) (Computer, error) {
	if name == "" {
		return Computer{}, fmt.Errorf("jenkins: node name is empty")
	}
	var v computerJSON
	path := "computer/" + pathEscape(name) + "/api/json?tree=" + url.QueryEscape(computerFields)
	if err := c.getJSON(ctx, "computer", path, &v); err != nil {
		return Computer{}, err
	}
	return v.toComputer(), nil
}

type computerListJSON struct {
	Computer []computerJSON `json:"computer"`
}

type computerJSON struct {
	Class              string  `json:"_class"`
	DisplayName        string  `json:"displayName"`
	Description        string  `json:"description"`
	Offline            bool    `json:"offline"`
	TemporarilyOffline bool    `json:"temporarilyOffline"`
	Idle               bool    `json:"idle"`
	JNLPAgent          bool    `json:"jnlpAgent"`
	NumExecutors       int     `json:"numExecutors"`
	OfflineCauseReason string  `json:"offlineCauseReason"`
	AbsoluteRemotePath *string `json:"absoluteRemotePath"`
	AssignedLabels     []struct {
		Name string `json:"name"`
	} `json:"assignedLabels"`
	Executors       []executorJSON `json:"executors"`
	OneOffExecutors []executorJSON `json:"oneOffExecutors"`
}

type executorJSON struct {
	Idle              bool `json:"idle"`
	CurrentExecutable *struct {
		URL    string `json:"url"`
		Number int    `json:"number"`
	} `json:"currentExecutable"`
}

func (cj computerJSON) toComputer() Computer {
	c := Computer{
		Name:               cj.DisplayName,
		Description:        cj.Description,
		Offline:            cj.Offline,
		TemporarilyOffline: cj.TemporarilyOffline,
		Idle:               cj.Idle,
		JNLPAgent:          cj.JNLPAgent,
		OfflineReason:      cj.OfflineCauseReason,
		NumExecutors:       cj.NumExecutors,
		Executors:          executors(cj.Executors),
		OneOffExecutors:    executors(cj.OneOffExecutors),
		// Answers without _class (before Jenkins 2.x) only have the name to go by.
		BuiltIn: cj.Class == classMasterComputer ||
			cj.Class == "" && (cj.DisplayName == "master" || cj.DisplayName == "Built-In Node"),
	}
	c.Connected = c.BuiltIn || !c.Offline || cj.AbsoluteRemotePath != nil
	for _, l := range cj.AssignedLabels {
		c.Labels = append(c.Labels, l.Name)
	}
	return c
}

func executors(in []executorJSON) []Executor {
	if len(in) == 0 {
		return nil
	}
	out := make([]Executor, len(in))
	for i, e := range in {
		out[i].Idle = e.Idle
		if e.CurrentExecutable != nil {
			out[i].Build = &Build{URL: e.CurrentExecutable.URL, Number: e.CurrentExecutable.Number}
		}
	}
	return out
}

// parseComputers decodes a /computer/api/json answer.
func parseComputers(data []byte) ([]Computer, error) {
	var v computerListJSON
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("jenkins: decode computers: %w", err)
	}
	out := make([]Computer, 0, len(v.Computer))
	for _, cj := range v.Computer {
		out = append(out, cj.toComputer())
	}
	return out, nil
}

// parseComputer decodes a /computer/NAME/api/json answer.
func parseComputer(data []byte) (Computer, error) {
	var v computerJSON
	if err := json.Unmarshal(data, &v); err != nil {
		return Computer{}, fmt.Errorf("jenkins: decode computer: %w", err)
	}
	return v.toComputer(), nil
}
