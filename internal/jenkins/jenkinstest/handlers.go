package jenkinstest

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// countingWriter records status and body size for Stats, and passes Flush through for the
// agents' streams.
type countingWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

func (c *countingWriter) WriteHeader(code int) {
	if !c.wrote {
		c.status, c.wrote = code, true
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(b []byte) (int, error) {
	if !c.wrote {
		c.status, c.wrote = http.StatusOK, true
	}
	n, err := c.ResponseWriter.Write(b)
	c.bytes += int64(n)
	return n, err
}

func (c *countingWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// request is one parsed request: its route, caller and language.
type request struct {
	w    http.ResponseWriter
	r    *http.Request
	segs []string
	pr   principal
	lang lang
}

type handler struct {
	endpoint string
	post     bool // @RequirePOST
	noAuth   bool // reachable without Overall/Read (the agents' endpoint)
	fn       func(*request)
}

// route maps a path to its handler, following Stapler's URL binding of Jenkins' objects.
func (s *Server) route(segs []string) handler {
	// Stapler dispatches Api.doJson as soon as it meets "api/json" and ignores any tokens after
	// it, so /crumbIssuer/api/json/api/json (what gojenkins asks for) is the crumb too.
	api := false
	for i := 0; i+1 < len(segs); i++ {
		if segs[i] == "api" && segs[i+1] == "json" {
			segs, api = segs[:i+2], true
			break
		}
	}
	n := len(segs)
	switch {
	case n == 2 && api:
		return handler{endpoint: "root", fn: s.handleRoot}
	case n == 3 && segs[0] == "queue" && api:
		return handler{endpoint: "queue", fn: s.handleQueue}
	case n == 5 && segs[0] == "queue" && segs[1] == "item" && api:
		return handler{endpoint: "queueItem", fn: s.handleQueueItem}
	case n == 4 && segs[0] == "queue" && segs[1] == "item" && segs[3] == "cancelQueue":
		return handler{endpoint: "cancelQueue", post: true, fn: s.handleCancelQueue}
	case n == 3 && segs[0] == "me" && api:
		return handler{endpoint: "me", fn: s.handleMe}
	case n == 2 && segs[0] == "queue" && segs[1] == "cancelItem":
		return handler{endpoint: "cancelItem", post: true, fn: s.handleCancelItem}
	case n == 3 && segs[0] == "computer" && api:
		return handler{endpoint: "computers", fn: s.handleComputers}
	case n == 2 && segs[0] == "computer" && segs[1] == "doCreateItem":
		return handler{endpoint: "createNode", post: true, fn: s.handleCreateNode}
	case n == 4 && segs[0] == "computer" && api:
		return handler{endpoint: "computer", fn: s.handleComputer}
	case n == 3 && segs[0] == "computer" && segs[2] == "doDelete":
		return handler{endpoint: "deleteNode", post: true, fn: s.handleDeleteNode}
	case n == 3 && segs[0] == "computer" && segs[2] == "doDisconnect":
		return handler{endpoint: "disconnect", post: true, fn: s.handleDisconnect}
	case n == 3 && segs[0] == "computer" && segs[2] == "toggleOffline":
		return handler{endpoint: "toggleOffline", post: true, fn: s.handleToggleOffline}
	case n == 3 && segs[0] == "computer" && segs[2] == "changeOfflineCause":
		return handler{endpoint: "changeOfflineCause", post: true, fn: s.handleChangeOfflineCause}
	case n == 3 && segs[0] == "computer" && (segs[2] == "jenkins-agent.jnlp" || segs[2] == "slave-agent.jnlp"):
		return handler{endpoint: "jnlp", fn: s.handleJNLP}
	case n == 3 && segs[0] == "crumbIssuer" && api:
		return handler{endpoint: "crumb", fn: s.handleCrumb}
	case n == 4 && segs[0] == "job" && api:
		return handler{endpoint: "job", fn: s.handleJob}
	case n == 3 && segs[0] == "job" && segs[2] == "build":
		return handler{endpoint: "build", post: true, fn: s.handleBuild}
	case n == 5 && segs[0] == "job" && api:
		return handler{endpoint: "run", fn: s.handleRun}
	case n == 4 && segs[0] == "label" && api:
		return handler{endpoint: "label", fn: s.handleLabel}
	case n == 0:
		return handler{endpoint: "page", fn: s.handlePage}
	case n == 1 && segs[0] == "computer", n == 2 && segs[0] == "computer":
		return handler{endpoint: "page", fn: s.handlePage}
	case n == 1 && segs[0] == "wsagents":
		return handler{endpoint: "wsagents", noAuth: true, fn: s.handleAgent}
	}
	return handler{endpoint: "other", fn: func(q *request) { jettyError(q.w, q.r, http.StatusNotFound, "Not Found") }}
}

// ServeHTTP answers like Jenkins: X-Jenkins on every answer, then faults, authentication, CSRF
// and the handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ph := s.phase
	s.mu.Unlock()
	if ph != phaseUp {
		// Starting up (a request that reached the old server as it closed gets the same): the
		// servlet context's "app" is HudsonIsLoading, which answers every path, before any
		// authentication.
		cw := &countingWriter{ResponseWriter: w, status: http.StatusOK}
		starting(cw)
		s.stats.record("starting", cw.status, cw.bytes)
		return
	}
	w.Header().Set("X-Jenkins", s.opts.Version)
	w.Header().Set("X-Jenkins-Session", fmt.Sprintf("%x", s.key[4:8]))
	var segs []string
	for _, seg := range strings.Split(strings.Trim(r.URL.Path, "/"), "/") {
		if seg != "" {
			segs = append(segs, seg)
		}
	}
	h := s.route(segs)
	cw := &countingWriter{ResponseWriter: w, status: http.StatusOK}
	reset := false
	defer func() {
		status := cw.status
		if reset {
			status = 0
		}
		s.stats.record(h.endpoint, status, cw.bytes)
	}()

	fd := s.faults.decide(h.endpoint, time.Now())
	if fd.outage {
		starting(cw)
		return
	}
	if fd.latency > 0 {
		select {
		case <-time.After(fd.latency):
		case <-r.Context().Done():
			return
		}
	}
	if fd.reset {
		reset = true
		resetConnection(w)
		return
	}
	switch fd.status {
	case 0:
	case http.StatusInternalServerError:
		oops(cw, "java.lang.IllegalStateException: injected fault")
		return
	case http.StatusBadGateway:
		badGateway(cw)
		return
	case http.StatusServiceUnavailable:
		starting(cw)
		return
	default:
		jettyError(cw, r, fd.status, http.StatusText(fd.status))
		return
	}

	q := &request{w: cw, r: r, segs: segs, lang: parseAcceptLanguage(r.Header.Get("Accept-Language"))}
	if h.noAuth {
		h.fn(q)
		return
	}
	pr, ok := s.authenticate(r)
	if !ok {
		name, _, _ := r.BasicAuth()
		cw.Header().Set("WWW-Authenticate", `Basic realm="Jenkins"`)
		jettyError(cw, r, http.StatusUnauthorized, "Invalid password/token for user: "+name)
		return
	}
	q.pr = pr
	if r.Method == http.MethodPost && !s.validCrumb(pr, cw, r) {
		jettyError(cw, r, http.StatusForbidden, "No valid crumb was included in the request")
		return
	}
	if !s.check(q, OverallRead) {
		return
	}
	if h.post && r.Method != http.MethodPost {
		requirePOST(cw)
		return
	}
	h.fn(q)
}

// resetConnection closes the TCP connection with SO_LINGER 0, so the client sees a reset.
func resetConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // best effort: a plain close still fails the request
	}
	_ = conn.Close()
}

// check is AccessControlled.checkPermission: anonymous gets "Authentication required", a user
// the access-denied page naming the permission.
func (s *Server) check(q *request, perm Permission) bool {
	if q.pr.user.has(perm) {
		return true
	}
	if q.pr.user == nil {
		authRequired(q.w, q.r)
	} else {
		accessDenied(q.w, q.pr.name(), perm)
	}
	return false
}

func exportOptions(r *http.Request) (exportOpts, error) {
	var o exportOpts
	qv := r.URL.Query()
	if t := qv.Get("tree"); t != "" {
		tree, err := parseTree(t)
		if err != nil {
			return o, err
		}
		o.tree = tree
	}
	if d := qv.Get("depth"); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil {
			return o, fmt.Errorf("depth %q: %w", d, err)
		}
		o.depth = n
	}
	o.pretty = qv.Get("pretty") == "true"
	return o, nil
}

// writeBean builds the bean under the lock and writes it as /api/json.
func (s *Server) writeBean(q *request, build func() *bean) {
	o, err := exportOptions(q.r)
	if err != nil {
		failure(q.w, err.Error())
		return
	}
	s.mu.Lock()
	s.view = newView()
	body := render(build(), o)
	s.view = nil
	s.mu.Unlock()
	q.w.Header().Set("Content-Type", "application/json;charset=utf-8")
	_, _ = q.w.Write(body) // a client gone away is not the emulator's problem
}

func notFound(q *request) { jettyError(q.w, q.r, http.StatusNotFound, "Not Found") }

func (s *Server) handleRoot(q *request) {
	s.writeBean(q, func() *bean { return s.rootBean(q.lang, q.pr) })
}
