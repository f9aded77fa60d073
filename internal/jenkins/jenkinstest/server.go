package jenkinstest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Options configure an emulated Jenkins.
type Options struct {
	Version          string // X-Jenkins, default "2.492.3"
	BuiltInExecutors int    // executors on the built-in node, default 0 (the recommended setup)
	Logger           *zap.Logger
	// QuietPeriod is the quiet period of every job, applied by Schedule and by POST /job/NAME/build
	// without a delay parameter. Jenkins' default is 5 s; the emulator's default is 0 so that tests
	// do not wait, and a test of the quiet period sets it.
	QuietPeriod time.Duration
	// KeepAlive is how often a connected agent's stream gets a keepalive line, default 1 s.
	KeepAlive time.Duration
	// ResumeTimeout is how long a pipeline node block resumed after a restart waits for its node
	// before Jenkins aborts the build: ExecutorStepExecution.TIMEOUT_WAITING_FOR_NODE_MILLIS, system
	// property org.jenkinsci.plugins.workflow.support.pickles.ExecutorPickle.timeoutForNodeMillis.
	// Default 5 minutes, as in Jenkins.
	ResumeTimeout time.Duration
}

// Server is an emulated Jenkins controller. All methods are safe for concurrent use.
type Server struct {
	opts   Options
	log    *zap.Logger
	ln     net.Listener
	srv    *http.Server
	url    string
	key    []byte // instance secret: agent secrets, crumb salt
	cookie string // session cookie name, JSESSIONID.<8 hex> as Jenkins names it
	faults *Faults
	stats  *statsCollector

	addr string // host:port, kept across restarts

	mu       sync.Mutex
	closed   bool
	phase    phase
	up       chan struct{} // closed while the controller is up; a new one per restart
	holds    []*queueItem  // resumed node blocks buildable in this queue pass (ContinuedTask)
	users    map[string]*user
	sessions map[string]bool
	builtIn  *node
	nodes    map[string]*node
	jobs     map[string]*job
	jobOrder []string
	items    []*queueItem // not yet left, in scheduling order
	left     map[int64]*queueItem
	runs     []*run
	nextID   int64
	wake     *time.Timer
	ticker   *time.Ticker
	done     chan struct{}

	// Memos that keep the queue's work per change proportional to what changed rather than to
	// items × nodes (see maintainOnce and view.go).
	labelMemo    map[string]*label    // item label text → parsed label
	refusalMemo  map[string]*refusals // label.key → refusals of the last pass, reused while equal
	computerList []*node              // computers(), kept sorted as nodes come and go
	nodeSeq      int                  // the last node.seq given out
	view         *view                // the memo of the /api/json answer being built, if any
}

// New starts an emulated Jenkins on 127.0.0.1 at a random port.
func New(opts Options) *Server {
	if opts.Version == "" {
		opts.Version = "2.492.3"
	}
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = time.Second
	}
	if opts.ResumeTimeout <= 0 {
		opts.ResumeTimeout = 5 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		panic(fmt.Errorf("jenkinstest: reading random key: %w", err)) // crypto/rand does not fail on Linux
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Errorf("jenkinstest: listening on 127.0.0.1: %w", err)) // a test machine without loopback cannot run tests
	}
	s := &Server{
		opts:      opts,
		log:       opts.Logger,
		ln:        ln,
		addr:      ln.Addr().String(),
		up:        closedChan(),
		url:       "http://" + ln.Addr().String() + "/",
		key:       key,
		cookie:    fmt.Sprintf("JSESSIONID.%x", key[:4]),
		faults:    newFaults(),
		stats:     newStatsCollector(),
		users:     map[string]*user{},
		sessions:  map[string]bool{},
		nodes:     map[string]*node{},
		jobs:      map[string]*job{},
		left:      map[int64]*queueItem{},
		labelMemo: map[string]*label{},
		nextID:    1,
		done:      make(chan struct{}),
	}
	s.builtIn = &node{
		builtIn:      true,
		numExecutors: opts.BuiltInExecutors,
		mode:         "NORMAL",
		remoteFS:     "/var/jenkins_home",
		created:      time.Now(),
	}
	for i := 0; i < opts.BuiltInExecutors; i++ {
		s.builtIn.executors = append(s.builtIn.executors, &executor{number: i})
	}
	s.srv = s.serve(ln)
	// Jenkins' MaintainTask runs every 5 s as a backstop; the emulator also maintains on every
	// change, so this only refreshes time-based state such as stuck items.
	s.ticker = time.NewTicker(time.Second)
	go func() {
		for {
			select {
			case <-s.done:
				return
			case <-s.ticker.C:
				s.mu.Lock()
				if !s.closed {
					s.maintain()
				}
				s.mu.Unlock()
			}
		}
	}()
	return s
}

// URL is the root URL, with a trailing slash.
func (s *Server) URL() string { return s.url }

// Close disconnects every agent and stops the server.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	s.ticker.Stop()
	if s.wake != nil {
		s.wake.Stop()
	}
	for _, r := range s.runs {
		if r.timer != nil {
			r.timer.Stop()
		}
	}
	for _, n := range s.nodes {
		if n.conn != nil {
			n.conn.kick()
		}
	}
	srv := s.srv // replaced by a restart
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close() // streams that did not end in time are cut
	}
}

// serve starts an HTTP server for s on ln.
func (s *Server) serve(ln net.Listener) *http.Server {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("jenkins emulator stopped serving", zap.Error(err))
		}
	}()
	return srv
}

// Faults is the fault-injection control of this server.
func (s *Server) Faults() *Faults { return s.faults }

// CreateFreestyleJob adds (or replaces) a freestyle project restricted to labelExpr ("" = can
// roam). Each build takes duration.
func (s *Server) CreateFreestyleJob(name, labelExpr string, duration time.Duration) {
	s.addJob(&job{name: name, kind: kindFreestyle, label: labelExpr, duration: duration, nextNumber: 1})
}

// CreatePipelineJob adds a pipeline job whose script is one `node('nodeLabel') { ... }` step
// lasting duration ("" = `node { ... }`).
func (s *Server) CreatePipelineJob(name, nodeLabel string, duration time.Duration) {
	s.addJob(&job{name: name, kind: kindPipeline, label: nodeLabel, duration: duration, concurrent: true, nextNumber: 1})
}

func (s *Server) addJob(j *job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.jobs[j.name]; ok {
		j.runs, j.nextNumber = old.runs, old.nextNumber
	} else {
		// Inserted in place: re-sorting on every job made creating a thousand jobs quadratic.
		i := sort.Search(len(s.jobOrder), func(i int) bool { return !javaLess(s.jobOrder[i], j.name) })
		s.jobOrder = slices.Insert(s.jobOrder, i, j.name)
	}
	s.jobs[j.name] = j
}

// ErrNoSuchJob is returned by Schedule for an unknown job.
var ErrNoSuchJob = errors.New("no such job")

// ErrNoSuchItem is returned by Cancel for an id that is not in the queue.
var ErrNoSuchItem = errors.New("no such queue item")

// Schedule puts the job in the queue, as the "Build Now" button does, and returns the queue
// item's id. Like Queue.schedule2, a job that already waits in the queue is not queued twice:
// the existing item's id is returned.
func (s *Server) Schedule(jobName string) (int64, error) {
	return s.schedule(jobName, s.opts.QuietPeriod, "")
}

func (s *Server) schedule(jobName string, quiet time.Duration, userName string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[jobName]
	if !ok {
		return 0, fmt.Errorf("scheduling %q: %w", jobName, ErrNoSuchJob)
	}
	for _, it := range s.items {
		if it.job == j && it.placeholder == nil && it.state != statePending {
			return it.id, nil
		}
	}
	now := time.Now()
	it := &queueItem{id: s.nextID, job: j, inQueueSince: now, timestamp: now.Add(quiet), user: userName}
	s.nextID++
	s.items = append(s.items, it)
	s.log.Debug("scheduled", zap.String("build", jobName), zap.Int64("queueItem", it.id))
	s.maintain()
	return it.id, nil
}

// Cancel removes an item from the queue (Queue.cancel). Cancelling a pipeline's node('...')
// item aborts its run, as Jenkins does.
func (s *Server) Cancel(queueID int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cancelLocked(queueID)
}

func (s *Server) cancelLocked(queueID int64) error {
	for i, it := range s.items {
		if it.id != queueID || it.state == statePending {
			continue
		}
		s.items = append(s.items[:i], s.items[i+1:]...)
		it.state, it.cancelled, it.leftAt = stateLeft, true, time.Now()
		s.left[it.id] = it
		if it.placeholder != nil {
			s.finishRun(it.placeholder, "ABORTED")
		}
		s.maintain()
		return nil
	}
	return fmt.Errorf("cancelling queue item %d: %w", queueID, ErrNoSuchItem)
}

// BuildRecord is what happened to one build, for assertions.
type BuildRecord struct {
	Job     string
	Number  int
	QueueID int64 // the item Schedule or POST /job/NAME/build returned
	// PlaceholderQueueID is a pipeline's node('...') item; 0 for freestyle builds.
	PlaceholderQueueID int64
	Node               string // agent the build (pipeline: its node block) ran on; "" = built-in or not yet
	Queued             time.Time
	Started            time.Time // freestyle: executor start; pipeline: node block start on the agent
	Finished           time.Time
	Done               bool
	Result             string // SUCCESS, FAILURE, ABORTED; "" while running
	// ResumedQueueID is the item that re-queued a pipeline's node block after a restart (0 if
	// none); Node stays the node the block ran and resumes on.
	ResumedQueueID int64
}

// Builds lists every build in the order they were created.
func (s *Server) Builds() []BuildRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]BuildRecord, 0, len(s.runs))
	for _, r := range s.runs {
		out = append(out, BuildRecord{
			Job: r.job.name, Number: r.number, QueueID: r.queueID, PlaceholderQueueID: r.placeholderID,
			Node: r.node, Queued: r.queued, Started: r.started, Finished: r.finished, Done: r.done, Result: r.result,
			ResumedQueueID: r.resumedID,
		})
	}
	return out
}

// NodeSnapshot is one agent node as the emulator sees it.
type NodeSnapshot struct {
	Name, Description  string
	Labels             []string // label atoms including the node's own name
	LabelString        string
	NumExecutors       int
	Mode               string
	RemoteFS           string
	WebSocket          bool
	Connected          bool
	TemporarilyOffline bool
	OfflineReason      string
	Busy               bool
	Secret             string
	Created            time.Time
}

// Nodes lists the agent nodes (not the built-in node), sorted by name.
func (s *Server) Nodes() []NodeSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []NodeSnapshot
	for _, n := range s.sortedAgents() {
		ns := NodeSnapshot{
			Name: n.name, Description: n.description, Labels: n.labels(), LabelString: n.labelString,
			NumExecutors: n.numExecutors, Mode: n.mode, RemoteFS: n.remoteFS, WebSocket: n.webSocket,
			Connected: n.conn != nil, TemporarilyOffline: n.tempOffline, Busy: n.busy(),
			Secret: agentSecret(s.key, n.name), Created: n.created,
		}
		if n.cause != nil {
			ns.OfflineReason = n.cause.reason
		}
		out = append(out, ns)
	}
	return out
}
