package jenkinstest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jenkins-agent-provisioner/provisioner/internal/labelexpr"
)

// The model follows hudson.model.Queue, Node/Computer/Executor and the two job types closely
// enough that `why`, the queue's item classes and an executor's currentExecutable change exactly
// when Jenkins' would. Everything here is guarded by Server.mu.

type jobKind int

const (
	kindFreestyle jobKind = iota
	kindPipeline
)

type job struct {
	name       string
	kind       jobKind
	label      string // freestyle: assigned label as configured; pipeline: the node('...') argument
	duration   time.Duration
	concurrent bool // freestyle projects default to false, pipeline jobs to true
	nextNumber int
	runs       []*run
}

func (j *job) class() string {
	if j.kind == kindPipeline {
		return "org.jenkinsci.plugins.workflow.job.WorkflowJob"
	}
	return "hudson.model.FreeStyleProject"
}

func (j *job) runClass() string {
	if j.kind == kindPipeline {
		return "org.jenkinsci.plugins.workflow.job.WorkflowRun"
	}
	return "hudson.model.FreeStyleBuild"
}

// building reports the newest run still in progress, as Job.isBuilding/getLastBuild see it.
func (j *job) building() *run {
	for i := len(j.runs) - 1; i >= 0; i-- {
		if !j.runs[i].done {
			return j.runs[i]
		}
	}
	return nil
}

// estimatedDuration is Job.getEstimatedDuration: the mean of the last (up to three) successful
// builds, -1 when there is none.
func (j *job) estimatedDuration() time.Duration {
	var sum time.Duration
	n := 0
	for i := len(j.runs) - 1; i >= 0 && n < 3; i-- {
		r := j.runs[i]
		if r.done && r.result == "SUCCESS" {
			sum += r.finished.Sub(r.started)
			n++
		}
	}
	if n == 0 {
		return -1
	}
	return sum / time.Duration(n)
}

func (j *job) color() string {
	var last *run
	for i := len(j.runs) - 1; i >= 0; i-- {
		if j.runs[i].done {
			last = j.runs[i]
			break
		}
	}
	base := "notbuilt"
	if last != nil {
		switch last.result {
		case "SUCCESS":
			base = "blue"
		case "ABORTED":
			base = "aborted"
		default:
			base = "red"
		}
	}
	if j.building() != nil {
		return base + "_anime"
	}
	return base
}

// run is a Run (FreeStyleBuild or WorkflowRun).
type run struct {
	job      *job
	number   int
	queueID  int64
	queued   time.Time
	started  time.Time // freestyle: executor start; pipeline: start of the node block on an agent
	begun    time.Time // Run timestamp (pipeline: when the flyweight started)
	finished time.Time
	done     bool
	result   string
	node     string // agent (or "" for the built-in node) the build or node block ran on
	exec     *executor
	timer    *time.Timer

	placeholderID int64 // pipeline: the node('...') queue item
	oneOff        bool  // pipeline: holds a one-off executor on the built-in node

	// A pipeline node block's durable step runs on the agent whatever happens to the controller or
	// the connection: due is when it ends there, and done only once Jenkins sees it end (the
	// agent connected). blockDone marks a step that ended while its agent was away.
	due       time.Time
	blockDone bool
	// suspended: the node block survived a restart (PlaceholderExecutable.run ignores the shutdown
	// interrupt) and waits for start-up to queue it again; resumedID is that new queue item.
	suspended bool
	resumedID int64
}

// placeholder reports whether the run, when on a node's (not one-off) executor, is a pipeline
// node block: a WorkflowRun is only ever there through its PlaceholderExecutable.
func (r *run) placeholder() bool { return r.job.kind == kindPipeline }

// blockName is PlaceholderTask.getDisplayName: "part of J #N".
func (r *run) blockName() string {
	return "part of " + r.job.name + " #" + strconv.Itoa(r.number)
}

func (r *run) url(root string) string {
	return root + "job/" + pathEscape(r.job.name) + "/" + strconv.Itoa(r.number) + "/"
}

type executor struct {
	number   int
	current  *run
	reserved *queueItem // a pending item the executor is starting (Executor.start(workUnit))
	since    time.Time
}

// idle is Executor.isIdle: no work unit and no executable.
func (e *executor) idle() bool { return e.current == nil && e.reserved == nil }

// offlineCause is hudson.slaves.OfflineCause: UserCause from the offline toggles,
// ChannelTermination when the agent's connection drops.
type offlineCause struct {
	class     string
	reason    string // what Computer.getOfflineCauseReason shows
	timestamp time.Time
}

type node struct {
	name         string
	description  string
	remoteFS     string
	labelString  string
	numExecutors int
	mode         string // "NORMAL" or "EXCLUSIVE"
	webSocket    bool
	tunnel       string
	created      time.Time

	builtIn      bool
	tempOffline  bool
	cause        *offlineCause
	conn         *agentConn
	connectedAt  time.Time
	executors    []*executor
	oneOff       []*executor // flyweight (pipeline) executors, only ever on the built-in node
	everLaunched bool

	// A node's name and label string never change after creation, so its atoms and whether it
	// satisfies a given label are worked out once: the queue asks that for every label on every
	// change, and at a thousand nodes re-deriving them dominated the emulator's time.
	atoms   []string
	atomSet map[string]bool
	// seq numbers nodes in creation order (the built-in node is 0, numbers are never reused) so
	// that a label can remember which nodes satisfy it in a slice rather than a map.
	seq int
}

// labels are the node's label atoms: its label string's words plus its own name, as
// Node.getAssignedLabels adds the self label ("built-in" for the built-in node). The slice is
// shared: callers must not modify it.
func (n *node) labels() []string {
	if n.atoms != nil {
		return n.atoms
	}
	self := n.name
	if n.builtIn {
		self = "built-in"
	}
	out := []string{}
	seen := map[string]bool{}
	for _, l := range append(strings.Fields(n.labelString), self) {
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	sort.Strings(out)
	n.atoms, n.atomSet = out, seen
	return out
}

func (n *node) displayName(l lang) string {
	if n.builtIn {
		return msg(l, "Hudson.Computer.DisplayName")
	}
	return n.name
}

// nodeDisplayName is Node.getDisplayName (not the computer's): Jenkins itself is "Jenkins".
func (n *node) nodeDisplayName() string {
	if n.builtIn {
		return "Jenkins"
	}
	return n.name
}

// selfName is the node's self label (Node.getSelfLabel): its name, "built-in" for the built-in node.
func (n *node) selfName() string {
	if n.builtIn {
		return "built-in"
	}
	return n.name
}

// offline is Computer.isOffline: temporarily offline, or no channel. The built-in node is always
// connected.
func (n *node) offline() bool {
	if n.builtIn {
		return n.tempOffline
	}
	return n.tempOffline || n.conn == nil
}

func (n *node) idleCount() int {
	c := 0
	for _, e := range n.executors {
		if e.idle() {
			c++
		}
	}
	return c
}

func (n *node) busy() bool {
	for _, e := range append(append([]*executor{}, n.executors...), n.oneOff...) {
		if !e.idle() {
			return true
		}
	}
	return false
}

// queueItem is one Queue.Item through its life: waiting, blocked, buildable, pending, left.
type queueItem struct {
	id           int64
	job          *job
	placeholder  *run // set for a pipeline node('...') PlaceholderTask
	inQueueSince time.Time
	timestamp    time.Time // WaitingItem: end of the quiet period
	buildableAt  time.Time // NotWaitingItem.buildableStartMilliseconds
	state        itemState
	transient    *refusals // causes from the last maintain(), nil when no executor refused it
	cancelled    bool
	executable   *run
	leftAt       time.Time
	user         string
	// selfLabel is set on a node block resumed after a restart: PlaceholderExecutable.run switched
	// the task's label to its computer's name (labelIsSelfLabel), so the item can only go back to
	// that node. continued is ContinuedTask.isContinued (the block's body had started).
	selfLabel string
	continued bool
}

type itemState int

const (
	stateWaiting itemState = iota
	stateBlocked
	stateBuildable
	statePending
	stateLeft
)

// labelOf returns the item's assigned label expression and whether it has one.
func (it *queueItem) labelOf() (string, bool) {
	var l string
	if it.selfLabel != "" {
		return it.selfLabel, true
	}
	if it.placeholder != nil {
		l = it.job.label
	} else if it.job.kind == kindFreestyle {
		l = it.job.label
	} else {
		return "", false // the WorkflowJob itself is a flyweight task with no label
	}
	l = strings.TrimSpace(l)
	return l, l != ""
}

// label is a parsed label with the two spellings Jenkins uses: name (Label.getName, what Queue
// messages print) and str (Label.toString, what Node.LabelMissing prints). They differ only for a
// single atom that needs quoting.
type label struct {
	expr labelexpr.Expr
	name string
	str  string
	// key identifies what the label matches: the normalised expression, or the bare name for a
	// label matched as a single atom (expr nil). The prefixes keep the atom "a&&b" apart from the
	// expression a&&b.
	key string
	// memo[n.seq] is 1 when node n does not satisfy the expression, 2 when it does, 0 when not yet
	// evaluated: the queue asks for every label and node on every change.
	memo []int8
}

// atomLabel is a label matched as one atom, whatever characters its name holds.
func atomLabel(name string) *label { return &label{name: name, str: name, key: "atom:" + name} }

func parseLabel(s string) (*label, error) {
	e, err := labelexpr.Parse(s)
	if err != nil {
		return nil, err
	}
	norm := e.String()
	l := &label{expr: e, name: norm, str: norm, key: "expr:" + norm}
	raw := strings.TrimSpace(s)
	if uq, err := strconv.Unquote(raw); err == nil && strings.HasPrefix(raw, `"`) {
		raw = uq
	}
	if labelexpr.QuoteAtom(raw) == norm {
		l.name = raw // a LabelAtom: getName is the bare name
	}
	return l, nil
}

func (l *label) matches(n *node) bool {
	n.labels() // fills atomSet
	if l.expr == nil {
		return n.atomSet[l.name]
	}
	if n.seq < len(l.memo) && l.memo[n.seq] != 0 {
		return l.memo[n.seq] == 2
	}
	m := l.expr.Eval(func(a string) bool { return n.atomSet[a] })
	if n.seq >= len(l.memo) {
		l.memo = append(l.memo, make([]int8, n.seq+1-len(l.memo))...)
	}
	l.memo[n.seq] = 1
	if m {
		l.memo[n.seq] = 2
	}
	return m
}

// labelClass is the runtime class /label/X/api/json reports.
func labelClass(norm string, atom bool) string {
	if atom {
		return "hudson.model.labels.LabelAtom"
	}
	depth, inQuote := 0, false
	ops := map[string]bool{}
	for i := 0; i < len(norm); i++ {
		c := norm[i]
		switch {
		case inQuote:
			if c == '\\' {
				i++
			} else if c == '"' {
				inQuote = false
			}
		case c == '"':
			inQuote = true
		case c == '(':
			depth++
		case c == ')':
			depth--
		case depth == 0 && strings.HasPrefix(norm[i:], "<->"):
			ops["Iff"] = true
			i += 2
		case depth == 0 && strings.HasPrefix(norm[i:], "->"):
			ops["Implies"] = true
			i++
		case depth == 0 && strings.HasPrefix(norm[i:], "||"):
			ops["Or"] = true
			i++
		case depth == 0 && strings.HasPrefix(norm[i:], "&&"):
			ops["And"] = true
			i++
		}
	}
	for _, op := range []string{"Iff", "Implies", "Or", "And"} {
		if ops[op] {
			return "hudson.model.labels.LabelExpression$" + op
		}
	}
	if strings.HasPrefix(norm, "!") {
		return "hudson.model.labels.LabelExpression$Not"
	}
	return "hudson.model.labels.LabelExpression$Paren"
}

// agentSecret is JnlpAgentReceiver's secret: an HMAC of the node name under an instance key, so
// a node re-created with the same name gets the same secret, as in Jenkins.
func agentSecret(key []byte, name string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("jenkins.slaves.JnlpSlaveAgentProtocol.secret"))
	m.Write([]byte(name))
	return hex.EncodeToString(m.Sum(nil))
}

// checkGoodName is Jenkins.checkGoodName.
func checkGoodName(l lang, name string) error {
	if name == "" {
		return fmt.Errorf("%s", msg(l, "Hudson.NoName"))
	}
	if name == "." || name == ".." {
		return fmt.Errorf("%s", msg(l, "Jenkins.NotAllowedName", name))
	}
	for _, r := range name {
		if r <= 0x1f || (r >= 0x7f && r <= 0x9f) {
			return fmt.Errorf("%s", msg(l, "Hudson.ControlCodeNotAllowed", strconv.Quote(name)))
		}
		if strings.ContainsRune("?*/\\%!@#$^&|<>[]:;", r) {
			return fmt.Errorf("%s", msg(l, "Hudson.UnsafeChar", string(r)))
		}
	}
	return nil
}
