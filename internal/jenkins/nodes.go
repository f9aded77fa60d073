package jenkins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/jenkins-agent-provisioner/provisioner/internal/labelexpr"
)

// Mode is a node's Node.Mode: which builds Jenkins may give it.
type Mode string

// Node modes.
const (
	ModeExclusive Mode = "EXCLUSIVE" // only builds whose label expression this node satisfies
	ModeNormal    Mode = "NORMAL"    // also builds with no label
)

// NodeSpec describes an inbound (JNLP) agent node to create.
type NodeSpec struct {
	Name, Description string
	Labels            []string
	RemoteFS          string // default /home/jenkins/agent
	NumExecutors      int    // default 1
	Mode              Mode   // default EXCLUSIVE
	WebSocket         bool
}

// DefaultRemoteFS is the agent's working directory in the jenkins/inbound-agent image.
const DefaultRemoteFS = "/home/jenkins/agent"

// Characters Jenkins.checkGoodName refuses in a node name.
const badNameChars = "?*/\\%!@#$^&|<>[]:;"

func (n *NodeSpec) normalize() error {
	if n.Name == "" {
		return errors.New("jenkins: node name is empty")
	}
	if n.Name == "." || n.Name == ".." || strings.ContainsAny(n.Name, badNameChars) || strings.TrimSpace(n.Name) != n.Name {
		return fmt.Errorf("jenkins: node name %q is not one Jenkins accepts", n.Name)
	}
	for _, r := range n.Name {
		if r < ' ' || r == 0x7f {
			return fmt.Errorf("jenkins: node name %q has a control character", n.Name)
		}
	}
	for _, l := range n.Labels {
		// labelString is split on whitespace: a label with a space would become two.
		if l == "" || strings.ContainsAny(l, " \t\r\n") {
			return fmt.Errorf("jenkins: label %q cannot be given to a node", l)
		}
	}
	if n.RemoteFS == "" {
		n.RemoteFS = DefaultRemoteFS
	}
	if n.NumExecutors == 0 {
		n.NumExecutors = 1
	}
	if n.NumExecutors < 0 {
		return fmt.Errorf("jenkins: node %s: %d executors", n.Name, n.NumExecutors)
	}
	switch n.Mode {
	case "":
		n.Mode = ModeExclusive
	case ModeExclusive, ModeNormal:
	default:
		return fmt.Errorf("jenkins: node %s: mode %q is neither EXCLUSIVE nor NORMAL", n.Name, n.Mode)
	}
	return nil
}

// createNodeForm is the form Jenkins' ComputerSet.doCreateItem binds into a DumbSlave with an inbound
// launcher, written out in full because gojenkins' CreateNode cannot set the launcher's WebSocket or
// work directory or the mode, and misspells retentionStrategy.
func createNodeForm(n NodeSpec) (url.Values, error) {
	j := map[string]any{
		"name":            n.Name,
		"nodeDescription": n.Description,
		"numExecutors":    n.NumExecutors,
		"remoteFS":        n.RemoteFS,
		"labelString":     strings.Join(n.Labels, " "),
		"mode":            string(n.Mode),
		"type":            "hudson.slaves.DumbSlave",
		// Always: Jenkins never disconnects the agent on its own; the provisioner deletes the node.
		"retentionStrategy": map[string]any{"stapler-class": "hudson.slaves.RetentionStrategy$Always"},
		"nodeProperties":    map[string]any{"stapler-class-bag": "true"},
		"launcher": map[string]any{
			"stapler-class": "hudson.slaves.JNLPLauncher",
			"$class":        "hudson.slaves.JNLPLauncher",
			"webSocket":     n.WebSocket,
			// Remoting's work directory in remoteFS (workDirPath "" = the agent root), as the
			// jenkins/inbound-agent image expects; failing on a missing one would break an emptyDir.
			"workDirSettings": map[string]any{
				"disabled":               false,
				"workDirPath":            "",
				"internalDir":            "remoting",
				"failIfWorkDirIsMissing": false,
			},
		},
	}
	b, err := json.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("jenkins: encode node %s: %w", n.Name, err)
	}
	return url.Values{"name": {n.Name}, "type": {"hudson.slaves.DumbSlave"}, "json": {string(b)}}, nil
}

// CreateNode creates an inbound agent node. It is idempotent: when the name is taken by a node with
// the same description (ours, from an earlier try whose answer was lost) it succeeds; when taken by
// another node it returns ErrNodeExists. The POST itself is never repeated once it may have reached
// Jenkins; the next reconcile's call settles what happened.
func (c *Client) CreateNode(ctx context.Context, n NodeSpec) error {
	if err := n.normalize(); err != nil {
		return err
	}
	form, err := createNodeForm(n)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, call{method: http.MethodPost, endpoint: "createNode", path: "computer/doCreateItem", form: form})
	if err == nil {
		c.log.Info("created node", zap.String("agent", n.Name), zap.Strings("labels", n.Labels),
			zap.String("mode", string(n.Mode)), zap.Bool("webSocket", n.WebSocket))
		return nil
	}
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusBadRequest {
		return fmt.Errorf("jenkins: create node %s: %w", n.Name, err)
	}
	// 400 is Jenkins' answer to a taken name ("Agent called ‘X’ already exists") and to a form it
	// cannot bind: look at the node to tell which.
	existing, gerr := c.Computer(ctx, n.Name)
	switch {
	case errors.Is(gerr, ErrNotFound):
		return fmt.Errorf("jenkins: create node %s: %w", n.Name, err)
	case gerr != nil:
		return fmt.Errorf("jenkins: create node %s: %w (and reading the existing node: %v)", n.Name, err, gerr)
	case existing.Description != n.Description:
		return fmt.Errorf("jenkins: create node %s: %w (its description is %q)", n.Name, ErrNodeExists, existing.Description)
	}
	c.log.Info("node already exists, ours", zap.String("agent", n.Name))
	return nil
}

// DeleteNode deletes a node; a node already gone is success. Jenkins disconnects its agent.
func (c *Client) DeleteNode(ctx context.Context, name string) error {
	if name == "" {
		return errors.New("jenkins: node name is empty")
	}
	_, err := c.do(ctx, call{method: http.MethodPost, endpoint: "deleteNode",
		path: "computer/" + pathEscape(name) + "/doDelete", idempotent: true})
	switch {
	case errors.Is(err, ErrNotFound):
		c.log.Debug("node already gone", zap.String("agent", name))
		return nil
	case err != nil:
		return fmt.Errorf("jenkins: delete node %s: %w", name, err)
	}
	c.log.Info("deleted node", zap.String("agent", name))
	return nil
}

// SetTemporarilyOffline marks a node temporarily offline with a reason, so Jenkins gives it no new
// build (a running one goes on). changeOfflineCause sets the state rather than flipping it as
// toggleOffline does, so repeating it is harmless.
func (c *Client) SetTemporarilyOffline(ctx context.Context, name, reason string) error {
	if name == "" {
		return errors.New("jenkins: node name is empty")
	}
	q := url.Values{"offlineMessage": {reason}}
	_, err := c.do(ctx, call{method: http.MethodPost, endpoint: "setOffline",
		path: "computer/" + pathEscape(name) + "/changeOfflineCause?" + q.Encode(), idempotent: true})
	if err != nil {
		return fmt.Errorf("jenkins: mark node %s temporarily offline: %w", name, err)
	}
	c.log.Debug("marked node temporarily offline", zap.String("agent", name), zap.String("reason", reason))
	return nil
}

// SetOnline clears a node's temporarily-offline mark, so Jenkins offers it tasks again (a resumed
// pipeline node block bound to it, say). Jenkins has no "set online": Computer.doToggleOffline
// flips the mark (Agent/Connect to bring a node back), so the node is read first and toggled only
// when it is temporarily offline; a node already online is left alone. The toggle is not retried
// (a lost answer followed by a second toggle would mark the node again); the caller's next pass
// reads the state afresh.
func (c *Client) SetOnline(ctx context.Context, name string) error {
	comp, err := c.Computer(ctx, name)
	if err != nil {
		return fmt.Errorf("jenkins: bring node %s online: %w", name, err)
	}
	if !comp.TemporarilyOffline {
		return nil
	}
	_, err = c.do(ctx, call{method: http.MethodPost, endpoint: "setOnline",
		path: "computer/" + pathEscape(name) + "/toggleOffline"})
	if err != nil {
		return fmt.Errorf("jenkins: bring node %s online: %w", name, err)
	}
	c.log.Debug("brought node online", zap.String("agent", name))
	return nil
}

// NodeSecret reads the secret an inbound agent connects with from the node's jenkins-agent.jnlp
// (slave-agent.jnlp on Jenkins versions that predate the new name).
func (c *Client) NodeSecret(ctx context.Context, name string) (string, error) {
	j, err := c.NodeJNLP(ctx, name)
	if err != nil {
		return "", err
	}
	return j.Secret, nil
}

// NodeJNLP reads and parses a node's agent file.
func (c *Client) NodeJNLP(ctx context.Context, name string) (JNLP, error) {
	if name == "" {
		return JNLP{}, errors.New("jenkins: node name is empty")
	}
	path := "computer/" + pathEscape(name) + "/jenkins-agent.jnlp"
	res, err := c.do(ctx, call{method: http.MethodGet, endpoint: "nodeSecret", path: path, maxBody: maxJNLP})
	if errors.Is(err, ErrNotFound) {
		// Before the rename only slave-agent.jnlp exists; for a missing node both are 404.
		path = "computer/" + pathEscape(name) + "/slave-agent.jnlp"
		res, err = c.do(ctx, call{method: http.MethodGet, endpoint: "nodeSecret", path: path, maxBody: maxJNLP})
	}
	if err != nil {
		return JNLP{}, fmt.Errorf("jenkins: read agent file of node %s: %w", name, err)
	}
	// From here on the answer is a 2xx to a request for the agent's secret: whatever it holds
	// (the agent's page, a file of another shape) may hold the secret too, so no error or log
	// line quotes any of it; only its type and size say what came.
	ct := res.header.Get("Content-Type")
	unexpected := func(what string) error {
		return &HTTPError{Method: http.MethodGet, Endpoint: "nodeSecret", Path: displayPath(path), Status: res.status,
			Message: fmt.Sprintf("expected a jnlp file, got %s (%s, %d bytes read; content not shown: it may hold the agent's secret)", what, orUnknown(ct), len(res.body)),
			kind:    ErrUnexpectedResponse}
	}
	if isHTML(ct, res.body) {
		return JNLP{}, unexpected("an HTML page")
	}
	j, err := ParseJNLP(res.body)
	if err != nil {
		// ParseJNLP's errors name what is wrong, never the content.
		return JNLP{}, fmt.Errorf("jenkins: node %s: %w", name, errors.Join(unexpected("something else"), err))
	}
	if j.Name != name {
		return JNLP{}, fmt.Errorf("jenkins: node %s: %w", name, unexpected("the agent file of another node"))
	}
	return j, nil
}

// JobLabelExpression reads the label expression of the job at taskURL ("" when the job may run
// anywhere), for freestyle items whose `why` names no label. Answers are cached per job for
// Config.JobLabelTTL (at most Config.JobLabelCacheSize jobs, least recently used evicted), so many
// queued builds of one job cost one request. A task URL from the queue
// carries Jenkins' configured root URL, which may differ from the one this client uses (a public
// name in front of an in-cluster Service): its job path is re-based on the client's URL.
func (c *Client) JobLabelExpression(ctx context.Context, taskURL string) (string, error) {
	path, err := c.jobPath(taskURL)
	if err != nil {
		return "", err
	}
	now := c.now()
	if expr, ok := c.jobLbls.get(path, now, c.jobTTL); ok {
		return expr, nil
	}

	var v struct {
		LabelExpression *string `json:"labelExpression"`
	}
	if err := c.getJSON(ctx, "jobLabel", path+"api/json?tree=labelExpression", &v); err != nil {
		return "", fmt.Errorf("jenkins: read label of job %s: %w", taskURL, err)
	}
	expr := ""
	if v.LabelExpression != nil && strings.TrimSpace(*v.LabelExpression) != "" {
		n, err := labelexpr.Normalize(*v.LabelExpression)
		if err != nil {
			// The parse error quotes (an excerpt of) the expression; quoting it whole here would put
			// a hostile megabyte into every log line.
			return "", fmt.Errorf("jenkins: job %s has an unreadable label expression: %w", taskURL, err)
		}
		expr = n
	}
	c.jobLbls.put(path, expr, now)
	return expr, nil
}

// jobPath turns a task URL into the job's path relative to the client's root, ending in "/".
func (c *Client) jobPath(taskURL string) (string, error) {
	u, err := url.Parse(taskURL)
	if err != nil || taskURL == "" {
		return "", fmt.Errorf("jenkins: task URL %q is not a URL", taskURL)
	}
	p := u.EscapedPath()
	if basePath := c.base.EscapedPath(); u.IsAbs() && u.Host == c.base.Host && strings.HasPrefix(p, basePath) {
		p = strings.TrimPrefix(p, basePath)
	} else {
		// Another root URL (or a relative job/J/ URL): the job path starts at the first job/ segment.
		i := strings.Index("/"+strings.TrimPrefix(p, "/"), "/job/")
		if i < 0 {
			return "", fmt.Errorf("jenkins: task URL %q is not a job URL", taskURL)
		}
		p = strings.TrimPrefix(p, "/")[i:]
	}
	p = strings.TrimPrefix(p, "/")
	if !strings.HasPrefix(p, "job/") {
		return "", fmt.Errorf("jenkins: task URL %q is not a job URL", taskURL)
	}
	if looksLikeRunURL(p) {
		// A pipeline placeholder's task URL is its run's (job/J/N/), which has no label expression:
		// answering "" would claim the build may run anywhere.
		return "", fmt.Errorf("jenkins: task URL %q is a build's, not a job's: its label is only in why", taskURL)
	}
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p, nil
}

// EnsurePlaceholderNode keeps the one node that makes Jenkins name labels in `why`: while Jenkins has
// no agent node at all it says only "Waiting for next available executor" (Queue.BuildableItem:
// "no master/agent. pointless to talk about nodes"), and pipeline demand would be invisible. The node
// never connects (nobody has its secret), is EXCLUSIVE with a label no build uses (so no build is
// ever assigned to it) and temporarily offline (so even a build asking for it by name waits, and the
// UI says why). It costs one request when all is well.
func (c *Client) EnsurePlaceholderNode(ctx context.Context, name, label, description string) error {
	if label == "" || description == "" {
		return errors.New("jenkins: placeholder node needs a label and a description")
	}
	reason := "Placeholder of the jenkins-agent-provisioner: it never runs builds; it exists so that Jenkins names the label each queued build waits for."
	existing, err := c.Computer(ctx, name)
	switch {
	case errors.Is(err, ErrNotFound):
		spec := NodeSpec{Name: name, Description: description, Labels: []string{label}, Mode: ModeExclusive, NumExecutors: 1}
		if err := c.CreateNode(ctx, spec); err != nil {
			return fmt.Errorf("jenkins: placeholder node: %w", err)
		}
		c.log.Info("created placeholder node", zap.String("agent", name), zap.String("label", label))
		return c.SetTemporarilyOffline(ctx, name, reason)
	case err != nil:
		return fmt.Errorf("jenkins: placeholder node: %w", err)
	case existing.Description != description:
		return fmt.Errorf("jenkins: placeholder node %s: %w (its description is %q)", name, ErrNodeExists, existing.Description)
	case existing.Labels != nil && !slices.Contains(existing.Labels, label):
		// Ours, but made with another label (the configuration changed): replace it.
		c.log.Info("replacing placeholder node with a new label", zap.String("agent", name), zap.String("label", label),
			zap.Strings("labels", existing.Labels))
		if err := c.DeleteNode(ctx, name); err != nil {
			return fmt.Errorf("jenkins: placeholder node: %w", err)
		}
		return c.EnsurePlaceholderNode(ctx, name, label, description)
	case !existing.TemporarilyOffline:
		return c.SetTemporarilyOffline(ctx, name, reason)
	}
	return nil
}
