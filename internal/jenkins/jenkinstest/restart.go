package jenkinstest

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// A restart as Jenkins goes through one (jenkins.model.Jenkins.cleanUp, then a new JVM loading the
// saved configuration, queue and builds):
//
//   - cleanUp: every computer is interrupted for shutdown and disconnected
//     (_cleanUpDisconnectComputers: Computer.interrupt → Executor.interruptForShutdown, then
//     Computer.disconnect). A freestyle build ends ABORTED; a pipeline node block does not end
//     (ExecutorStepExecution.PlaceholderTask.PlaceholderExecutable.run's AsynchronousExecution
//     ignores interrupt(forShutdown)), and its durable step goes on running on the agent. The queue
//     is saved (_cleanUpPersistQueue) with its items and ids; items already handed to an executor
//     are saved as buildable.
//   - down: the port is closed, connections are refused.
//   - starting: every path answers 503 with HudsonIsLoading's page, without X-Jenkins
//     (Functions.advertiseHeaders has no Jenkins instance yet), whatever the credentials.
//   - up: the nodes come back from their saved configuration, a temporarily-offline mark with its
//     message included (Node.setTemporaryOfflineCause saves it), but no agent is connected and no
//     ChannelTermination cause is left; sessions (and so crumbs) are gone; Queue.load restores the
//     saved items; Queue.leftItems, an in-memory cache, is empty, so /queue/item/N of an item that
//     had left is 404. Each surviving node block resumes (ExecutorStepDynamicContext.resume): it is
//     scheduled again as a new item (new id) of its PlaceholderTask, whose label is the name of the
//     computer it ran on (labelIsSelfLabel, enforced by PlaceholderTask.EnforceSelfLabel) and which
//     is continued (ContinuedTask.isContinued), so other items are held off that node
//     (ContinuedTask.Scheduler). It waits for the node for ResumeTimeout, then the build is aborted
//     (RemovedNodeTimeoutCause).

// phase is where the controller is in its life.
type phase int

const (
	phaseUp       phase = iota
	phaseDown           // the JVM is gone: connections are refused
	phaseStarting       // the new JVM is loading: 503 HudsonIsLoading
)

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// Restart restarts the emulated Jenkins as a crash-and-start or `systemctl restart` would (not a
// safe restart: running builds do not hold it up): it shuts down at once (see above), refuses
// connections for down, answers 503 while starting for starting, then is up again on the same
// address. It returns at once, after the shutdown, with a channel that is closed when Jenkins is
// up again. A restart asked for while one is under way is not started twice: the channel of the
// one under way is returned.
func (s *Server) Restart(down, starting time.Duration) <-chan struct{} {
	s.mu.Lock()
	if s.closed || s.phase != phaseUp {
		up := s.up
		s.mu.Unlock()
		return up
	}
	s.phase = phaseDown
	s.up = make(chan struct{})
	up := s.up
	s.cleanUp()
	srv := s.srv
	s.mu.Unlock()
	// The listener closes (refused from now on) and every open connection is cut, the agents'
	// streams and idle keep-alive connections alike.
	_ = srv.Close()
	s.log.Info("jenkins restarting", zap.Duration("down", down), zap.Duration("starting", starting))
	go s.comeBack(down, starting, up)
	return up
}

// Up returns a channel that is closed while Jenkins is up (at once if it is not restarting).
func (s *Server) Up() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.up
}

// cleanUp is Jenkins.cleanUp's effect on the model. Callers hold s.mu.
func (s *Server) cleanUp() {
	for _, n := range append([]*node{s.builtIn}, s.sortedAgents()...) {
		for _, e := range n.executors {
			if it := e.reserved; it != nil {
				e.reserved = nil
				s.moveTo(it, stateBuildable) // saved as a buildable item
			}
			r := e.current
			if r == nil {
				continue
			}
			if r.job.kind == kindPipeline {
				// The node block survives: off the executor (the executor dies with the JVM), its
				// step still running on the agent until r.due.
				if r.timer != nil {
					r.timer.Stop()
				}
				e.current, r.exec, r.suspended = nil, nil, true
				continue
			}
			s.finishRun(r, "ABORTED") // Executor.interruptForShutdown
		}
		if n.conn != nil {
			n.conn.kick()
			n.conn = nil
		}
	}
	for _, it := range s.items {
		it.transient = nil
	}
	clear(s.left)
	clear(s.sessions)
	if s.wake != nil {
		s.wake.Stop()
		s.wake = nil
	}
}

// comeBack plays the down and starting phases, then start-up.
func (s *Server) comeBack(down, starting time.Duration, up chan struct{}) {
	if !s.sleep(down) {
		return
	}
	ln, err := s.relisten()
	if err != nil {
		s.log.Error("jenkins emulator cannot listen again after a restart", zap.String("addr", s.addr), zap.Error(err))
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ln.Close()
		return
	}
	s.phase, s.ln = phaseStarting, ln
	s.srv = s.serve(ln)
	s.mu.Unlock()
	if !s.sleep(starting) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.phase = phaseUp
	s.startUp(time.Now())
	s.maintain()
	close(up)
	s.log.Info("jenkins is up again")
}

// sleep waits d unless the server is closed first.
func (s *Server) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.done:
		return false
	}
}

// relisten opens the old address again. The port was ours a moment ago; a few tries cover the
// kernel still holding it.
func (s *Server) relisten() (net.Listener, error) {
	var err error
	for range 50 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			return ln, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
		if !s.sleep(20 * time.Millisecond) {
			return nil, errors.New("server closed")
		}
	}
	return nil, fmt.Errorf("listen on %s again: %w", s.addr, err)
}

// startUp is what the new Jenkins does on loading. Callers hold s.mu.
func (s *Server) startUp(now time.Time) {
	for _, n := range s.nodes {
		n.everLaunched = false
		if !n.tempOffline {
			n.cause = nil // a fresh computer: offline, no cause, until its agent connects
		}
	}
	for _, r := range s.runs {
		if r.suspended && !r.done {
			s.resume(r, now)
		}
	}
}

// resume is ExecutorStepDynamicContext.resume: Queue.schedule2 of the block's PlaceholderTask,
// then a wait of ResumeTimeout for it to start. Callers hold s.mu.
func (s *Server) resume(r *run, now time.Time) {
	self := r.node
	if self == "" {
		self = "built-in"
	}
	it := &queueItem{id: s.nextID, job: r.job, placeholder: r, inQueueSince: now, timestamp: now,
		selfLabel: self, continued: true}
	s.nextID++
	r.suspended, r.resumedID = false, it.id
	s.items = append(s.items, it)
	s.log.Info("Waiting for reconnection of node before proceeding with build", zap.String("build", r.job.name),
		zap.Int("number", r.number), zap.String("agent", r.node), zap.Int64("queueItem", it.id))
	time.AfterFunc(s.opts.ResumeTimeout, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed || it.state == statePending || it.state == stateLeft {
			return // it started (or was cancelled) in time
		}
		// "NODE has been removed for 5 min; assuming it is not coming back, and terminating node
		// step": the item is cancelled and the build aborted (RemovedNodeTimeoutCause).
		s.removeItem(it)
		it.state, it.cancelled, it.leftAt = stateLeft, true, time.Now()
		s.left[it.id] = it
		s.finishRun(r, "ABORTED")
		s.log.Info("node block not resumed in time", zap.String("build", r.job.name), zap.Int("number", r.number),
			zap.String("agent", r.node), zap.Duration("timeout", s.opts.ResumeTimeout))
		s.maintain()
	})
}

// DisconnectAgent drops the named agent's connection from the controller's side, as a network
// failure or a controller-side channel close does (SlaveComputer.closeChannel): the computer goes
// offline with a ChannelTermination cause, a freestyle build on it fails, a pipeline node block on
// it waits for the agent to come back (its step still runs there). The agent, if it reconnects,
// is taken back. It reports whether the agent was connected.
func (s *Server) DisconnectAgent(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodes[name]
	if n == nil || n.conn == nil {
		return false
	}
	conn := n.conn
	s.channelClosed(n, conn)
	conn.kick()
	return true
}
