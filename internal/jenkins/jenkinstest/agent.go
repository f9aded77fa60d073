package jenkinstest

import (
	"bufio"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// The remoting handshake is replaced by a plain HTTP stream with remoting's WebSocket headers
// (Node-Name, Secret-Key), checked the way WebSocketAgents/JnlpAgentReceiver check them. While the
// response body stays open the agent is connected; Jenkins ending it is a disconnect (node
// deleted, server stopped), the client closing it is the agent going away.

// agentConn is the server side of one connected agent.
type agentConn struct {
	once sync.Once
	gone chan struct{}
}

func newAgentConn() *agentConn { return &agentConn{gone: make(chan struct{})} }

// kick makes Jenkins drop the agent; safe to call more than once.
func (c *agentConn) kick() { c.once.Do(func() { close(c.gone) }) }

func (s *Server) handleAgent(q *request) {
	if q.r.Method != http.MethodGet {
		jettyError(q.w, q.r, http.StatusMethodNotAllowed, "Method Not Allowed")
		return
	}
	name, secret := q.r.Header.Get("Node-Name"), q.r.Header.Get("Secret-Key")
	s.mu.Lock()
	n := s.nodes[name]
	switch {
	case n == nil:
		s.mu.Unlock()
		jettyError(q.w, q.r, http.StatusBadRequest, "no such agent")
		return
	case subtle.ConstantTimeCompare([]byte(secret), []byte(agentSecret(s.key, name))) != 1:
		s.mu.Unlock()
		jettyError(q.w, q.r, http.StatusForbidden, "Forbidden")
		return
	case n.conn != nil:
		s.mu.Unlock()
		jettyError(q.w, q.r, http.StatusConflict, name+" is already connected to this controller. Rejecting this connection.")
		return
	}
	conn := newAgentConn()
	n.conn, n.connectedAt, n.everLaunched = conn, time.Now(), true
	if n.cause != nil && !n.tempOffline {
		n.cause = nil // a fresh channel clears ChannelTermination; a user's offline mark stays
	}
	for _, e := range n.executors {
		// A node block whose step ended while the agent was away ends now that Jenkins sees it.
		if r := e.current; r != nil && r.blockDone && !r.done {
			s.finishRun(r, "SUCCESS")
		}
	}
	s.log.Info("agent connected", zap.String("agent", name))
	s.maintain()
	s.mu.Unlock()

	q.w.Header().Set("Content-Type", "text/plain;charset=utf-8")
	q.w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriter(q.w)
	flush := func(line string) error {
		if _, err := bw.WriteString(line + "\n"); err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		if f, ok := q.w.(http.Flusher); ok {
			f.Flush()
		}
		return nil
	}
	_ = flush("connected " + name) // a failed write shows up as the client's context ending
	tick := time.NewTicker(s.opts.KeepAlive)
	defer tick.Stop()
	for {
		select {
		case <-conn.gone:
			return // Jenkins dropped the agent (node deleted or server closing)
		case <-q.r.Context().Done():
			s.agentLeft(n, conn)
			return
		case <-tick.C:
			if err := flush("keepalive"); err != nil {
				s.agentLeft(n, conn)
				return
			}
		}
	}
}

// agentLeft is SlaveComputer.onClosed for an agent that went away by itself.
func (s *Server) agentLeft(n *node, conn *agentConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channelClosed(n, conn)
}

// channelClosed is the computer losing its channel: it goes offline with a ChannelTermination
// cause; a freestyle build on it fails (its remote calls throw); a pipeline node block stays on
// its executor waiting for the agent to reconnect (the durable step keeps running on the agent,
// DurableTaskStep's watcher retries, ExecutorStepDynamicContext.FilePathTranslator finds the new
// channel). Callers hold s.mu.
func (s *Server) channelClosed(n *node, conn *agentConn) {
	if n.conn != conn {
		return
	}
	n.conn = nil
	if !n.tempOffline {
		n.cause = &offlineCause{class: "hudson.slaves.OfflineCause$ChannelTermination",
			reason: "Connection was broken: java.nio.channels.ClosedChannelException", timestamp: time.Now()}
	}
	s.nodeLost(n, func(r *run) string {
		if r.placeholder() {
			return ""
		}
		return "FAILURE"
	})
	s.log.Info("agent disconnected", zap.String("agent", n.name))
	s.maintain()
}

// AgentError is a refused connection: Status 400 "no such agent" (unknown node), 403 (wrong
// secret), 409 (already connected), or whatever an unavailable Jenkins answered.
type AgentError struct {
	Status  int
	Message string
}

func (e *AgentError) Error() string {
	return fmt.Sprintf("agent connection refused: HTTP %d: %s", e.Status, e.Message)
}

// AgentSession is a connected agent, the stand-in for a remoting channel.
type AgentSession struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	err    error
}

// agentTransport does not reuse connections, so closing a session closes its TCP connection and
// the server sees the agent go at once.
var agentTransport = &http.Transport{DisableKeepAlives: true, Proxy: nil}

// ConnectAgent connects as the named agent with its secret, as the inbound agent does over
// WebSocket. The session lasts until ctx ends, Close is called, or Jenkins drops the agent.
func ConnectAgent(ctx context.Context, jenkinsURL, name, secret string) (*AgentSession, error) {
	if !strings.HasSuffix(jenkinsURL, "/") {
		jenkinsURL += "/"
	}
	sctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, jenkinsURL+"wsagents/", nil)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("connecting agent %q: %w", name, err)
	}
	req.Header.Set("Node-Name", name)
	req.Header.Set("Secret-Key", secret)
	req.Header.Set("X-Remoting-Capability", "rO0ABXNyABpodWRzb24ucmVtb3RpbmcuQ2FwYWJpbGl0eQAAAAAAAAABAgABSgAEbWFza3hwAAAAAAAAAf4=")
	resp, err := (&http.Client{Transport: agentTransport}).Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("connecting agent %q: %w", name, err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10)) // the status alone is enough if this fails
		_ = resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("connecting agent %q: %w", name, &AgentError{Status: resp.StatusCode, Message: errorText(string(body))})
	}
	a := &AgentSession{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		defer resp.Body.Close()
		_, err := io.Copy(io.Discard, resp.Body)
		a.mu.Lock()
		defer a.mu.Unlock()
		switch {
		case sctx.Err() != nil:
			a.err = sctx.Err()
		case err != nil:
			a.err = err
		default:
			a.err = errors.New("disconnected by Jenkins")
		}
	}()
	return a, nil
}

// Done is closed when the session ends; after that Err says why.
func (a *AgentSession) Done() <-chan struct{} { return a.done }

// Err is nil while connected; then the reason the session ended.
func (a *AgentSession) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// Close drops the connection from the agent's side (a crash) and waits for the session to end.
func (a *AgentSession) Close() {
	a.cancel()
	<-a.done
}

// errorText pulls the message out of a Jetty error page, so errors read "no such agent" rather
// than a page of HTML.
func errorText(body string) string {
	if i := strings.Index(body, "<th>MESSAGE:</th><td>"); i >= 0 {
		rest := body[i+len("<th>MESSAGE:</th><td>"):]
		if j := strings.Index(rest, "</td>"); j >= 0 {
			return rest[:j]
		}
	}
	return strings.TrimSpace(body)
}
