package jenkinstest

import (
	"encoding/json"
	"fmt"
	"html"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
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

func (s *Server) handleQueue(q *request) {
	s.writeBean(q, func() *bean { return s.queueBean(q.lang, q.pr) })
}

func (s *Server) findItem(id int64) *queueItem {
	for _, it := range s.items {
		if it.id == id {
			return it
		}
	}
	return s.left[id]
}

func (s *Server) handleQueueItem(q *request) {
	id, err := strconv.ParseInt(q.segs[2], 10, 64)
	s.mu.Lock()
	var it *queueItem
	if err == nil {
		it = s.findItem(id)
	}
	s.mu.Unlock()
	if it == nil || !q.pr.user.has(JobRead) {
		notFound(q)
		return
	}
	s.writeBean(q, func() *bean { return s.itemBean(it, q.lang, time.Now()) })
}

// handleCancelItem is Queue.doCancelItem: 204 when cancelled, 404 for an unknown id, 422 without
// Job/Cancel.
func (s *Server) handleCancelItem(q *request) {
	id, err := strconv.ParseInt(q.r.FormValue("id"), 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	var it *queueItem
	if err == nil {
		for _, x := range s.items {
			if x.id == id {
				it = x
			}
		}
	}
	if it == nil || !q.pr.user.has(JobRead) {
		jettyError(q.w, q.r, http.StatusNotFound, fmt.Sprintf("Provided id (%s) not found", q.r.FormValue("id")))
		return
	}
	if !q.pr.user.has(JobCancel) {
		jettyError(q.w, q.r, http.StatusUnprocessableEntity, fmt.Sprintf("Item for id (%d) is not cancellable", id))
		return
	}
	if err := s.cancelLocked(id); err != nil {
		jettyError(q.w, q.r, http.StatusInternalServerError, fmt.Sprintf("Could not cancel run for id %d", id))
		return
	}
	q.w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleComputers(q *request) {
	s.writeBean(q, func() *bean { return s.computerSetBean(q.lang, q.pr) })
}

// nodeFor resolves /computer/NAME: the built-in node answers to "(built-in)" and the old
// "(master)".
func (s *Server) nodeFor(name string) *node {
	if name == "(built-in)" || name == "(master)" {
		return s.builtIn
	}
	return s.nodes[name]
}

func (s *Server) handleComputer(q *request) {
	n := s.computerFor(q, "")
	if n == nil {
		return
	}
	s.writeBean(q, func() *bean { return s.computerBean(n, q.lang, q.pr) })
}

// computerFor finds the node a /computer/NAME/... request names and checks the permission the
// action needs (none when perm is ""), answering 404 or 403 itself as Jenkins does; nil means the
// answer is already written.
func (s *Server) computerFor(q *request, perm Permission) *node {
	s.mu.Lock()
	n := s.nodeFor(q.segs[1])
	s.mu.Unlock()
	if n == nil {
		notFound(q)
		return nil
	}
	if perm != "" && !s.check(q, perm) {
		return nil
	}
	return n
}

func (s *Server) handleCrumb(q *request) {
	sid := s.session(q.w, q.r, true)
	crumb := s.crumb(q.pr, q.r, sid)
	s.writeBean(q, func() *bean {
		return &bean{class: "hudson.security.csrf.DefaultCrumbIssuer", props: []prop{
			p("crumb", crumb), p("crumbRequestField", "Jenkins-Crumb")}}
	})
}

// handleCreateNode is ComputerSet.doDoCreateItem with DumbSlave's form binding.
func (s *Server) handleCreateNode(q *request) {
	if !s.check(q, AgentCreate) {
		return
	}
	if err := q.r.ParseMultipartForm(1 << 20); err != nil && err != http.ErrNotMultipart {
		failure(q.w, "Cannot read the form: "+err.Error())
		return
	}
	name := strings.TrimSpace(q.r.FormValue("name"))
	if q.r.Form["name"] == nil {
		failure(q.w, "Query parameter 'name' is required")
		return
	}
	if err := checkGoodName(q.lang, name); err != nil {
		failure(q.w, err.Error())
		return
	}
	s.mu.Lock()
	_, exists := s.nodes[name]
	s.mu.Unlock()
	if exists {
		failure(q.w, msg(q.lang, "ComputerSet.SlaveAlreadyExists", name))
		return
	}
	raw := q.r.FormValue("json")
	if raw == "" {
		failure(q.w, fmt.Sprintf("This page expects a form submission but had only %v", q.r.Form))
		return
	}
	var form map[string]any
	if err := json.Unmarshal([]byte(raw), &form); err != nil {
		failure(q.w, "Failed to parse form data: "+err.Error())
		return
	}
	switch t := q.r.FormValue("type"); t {
	case "hudson.slaves.DumbSlave", "hudson.slaves.DumbSlave$DescriptorImpl":
	default:
		// NodeDescriptor.all().find(type) is null and Jenkins fails with a NullPointerException.
		oops(q.w, "java.lang.NullPointerException: Cannot invoke \"hudson.model.Descriptor.newInstance\" because the descriptor for type "+strconv.Quote(t)+" is null")
		return
	}
	n, err := bindDumbSlave(name, form, q.lang)
	if err != nil {
		failure(q.w, err.Error())
		return
	}
	s.mu.Lock()
	if _, exists := s.nodes[name]; exists {
		s.mu.Unlock()
		failure(q.w, msg(q.lang, "ComputerSet.SlaveAlreadyExists", name))
		return
	}
	n.created = time.Now()
	s.nodeSeq++
	n.seq = s.nodeSeq
	s.nodes[name] = n
	s.nodeAdded(n)
	s.log.Info("node created", zap.String("agent", name), zap.String("label", n.labelString))
	s.maintain()
	s.mu.Unlock()
	http.Redirect(q.w, q.r, s.url+"computer/", http.StatusFound)
}

// bindDumbSlave binds the form's JSON to a DumbSlave with a JNLPLauncher, checking what the
// DumbSlave constructor and Stapler's binding check.
func bindDumbSlave(name string, f map[string]any, l lang) (*node, error) {
	str := func(key string) (string, error) {
		switch v := f[key].(type) {
		case nil:
			return "", nil
		case string:
			return v, nil
		default:
			return "", fmt.Errorf("Failed to bind %q: expected a string, got %v", key, v)
		}
	}
	n := &node{name: name, numExecutors: 1, mode: "NORMAL", executors: nil}
	var err error
	if n.description, err = str("nodeDescription"); err != nil {
		return nil, err
	}
	if n.remoteFS, err = str("remoteFS"); err != nil {
		return nil, err
	}
	if n.labelString, err = str("labelString"); err != nil {
		return nil, err
	}
	n.labelString = strings.TrimSpace(n.labelString)
	if v, ok := f["numExecutors"]; ok && v != nil {
		switch x := v.(type) {
		case float64:
			if x != float64(int(x)) {
				return nil, fmt.Errorf("Failed to bind \"numExecutors\": %v is not an integer", x)
			}
			n.numExecutors = int(x)
		case string:
			i, err := strconv.Atoi(strings.TrimSpace(x))
			if err != nil {
				return nil, fmt.Errorf("Failed to bind \"numExecutors\": %q is not a number", x)
			}
			n.numExecutors = i
		default:
			return nil, fmt.Errorf("Failed to bind \"numExecutors\": %v is not a number", x)
		}
	}
	if n.numExecutors < 1 {
		return nil, fmt.Errorf("%s", msg(l, "Slave.InvalidConfig.Executors", name))
	}
	mode, err := str("mode")
	if err != nil {
		return nil, err
	}
	switch mode {
	case "", "NORMAL":
	case "EXCLUSIVE":
		n.mode = "EXCLUSIVE"
	default:
		return nil, fmt.Errorf("No enum constant hudson.model.Node.Mode.%s", mode)
	}
	if rs, ok := f["retentionStrategy"]; ok && rs != nil {
		m, ok := rs.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("Failed to bind \"retentionStrategy\": expected an object")
		}
		switch staplerClass(m) {
		case "hudson.slaves.RetentionStrategy$Always", "hudson.slaves.RetentionStrategy$Demand", "":
		default:
			return nil, fmt.Errorf("Failed to instantiate class %s", staplerClass(m))
		}
	}
	if lv, ok := f["launcher"]; ok && lv != nil {
		m, ok := lv.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("Failed to bind \"launcher\": expected an object")
		}
		if c := staplerClass(m); c != "hudson.slaves.JNLPLauncher" {
			return nil, fmt.Errorf("Failed to instantiate class %s: the emulator supports hudson.slaves.JNLPLauncher only", c)
		}
		switch ws := m["webSocket"].(type) {
		case nil:
		case bool:
			n.webSocket = ws
		case string:
			n.webSocket = ws == "true" || ws == "on"
		default:
			return nil, fmt.Errorf("Failed to bind \"webSocket\": %v", ws)
		}
		if t, ok := m["tunnel"].(string); ok {
			n.tunnel = strings.TrimSpace(t)
		}
	}
	for i := 0; i < n.numExecutors; i++ {
		n.executors = append(n.executors, &executor{number: i})
	}
	return n, nil
}

func staplerClass(m map[string]any) string {
	if c, ok := m["stapler-class"].(string); ok {
		return c
	}
	if c, ok := m["$class"].(string); ok {
		return c
	}
	return ""
}

// handleDeleteNode is Computer.doDoDelete: the node goes, its agent is disconnected ("Node is
// being removed") and builds running there are aborted.
func (s *Server) handleDeleteNode(q *request) {
	n := s.computerFor(q, AgentDelete)
	if n == nil {
		return
	}
	if n.builtIn {
		jettyError(q.w, q.r, http.StatusBadRequest, "Bad Request")
		return
	}
	s.deleteNode(n.name)
	http.Redirect(q.w, q.r, s.url+"computer/", http.StatusFound)
}

func (s *Server) deleteNode(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodes[name]
	if n == nil {
		return
	}
	delete(s.nodes, name)
	s.nodeRemoved(n)
	s.nodeLost(n, func(*run) string { return "ABORTED" })
	if n.conn != nil {
		n.conn.kick()
		n.conn = nil
	}
	s.log.Info("node deleted", zap.String("agent", name))
	s.maintain()
}

// handleToggleOffline is Computer.doToggleOffline: going offline needs Agent/Disconnect, coming
// back Agent/Connect.
func (s *Server) handleToggleOffline(q *request) {
	s.mu.Lock()
	n := s.nodeFor(q.segs[1])
	s.mu.Unlock()
	if n == nil {
		notFound(q)
		return
	}
	s.mu.Lock()
	goingOffline := !n.tempOffline
	s.mu.Unlock()
	perm := AgentConnect
	if goingOffline {
		perm = AgentDisconnect
	}
	if !s.check(q, perm) {
		return
	}
	s.mu.Lock()
	if goingOffline {
		s.setTempOffline(n, strings.TrimSpace(q.r.FormValue("offlineMessage")))
	} else {
		n.tempOffline, n.cause = false, nil
	}
	s.maintain()
	s.mu.Unlock()
	http.Redirect(q.w, q.r, s.computerURL(n), http.StatusFound)
}

// handleChangeOfflineCause is Computer.doChangeOfflineCause: temporarily offline with a reason.
func (s *Server) handleChangeOfflineCause(q *request) {
	n := s.computerFor(q, AgentDisconnect)
	if n == nil {
		return
	}
	s.mu.Lock()
	s.setTempOffline(n, strings.TrimSpace(q.r.FormValue("offlineMessage")))
	s.maintain()
	s.mu.Unlock()
	http.Redirect(q.w, q.r, s.computerURL(n), http.StatusFound)
}

// handleDisconnect is Computer.doDoDisconnect: the agent is dropped with a UserCause, without
// marking the computer temporarily offline.
func (s *Server) handleDisconnect(q *request) {
	n := s.computerFor(q, AgentDisconnect)
	if n == nil {
		return
	}
	s.mu.Lock()
	if n.conn != nil {
		n.conn.kick()
		n.conn = nil
		s.nodeLost(n, func(*run) string { return "ABORTED" })
	}
	if !n.builtIn {
		n.cause = &offlineCause{class: "hudson.slaves.OfflineCause$UserCause",
			reason: strings.TrimSpace(q.r.FormValue("offlineMessage")), timestamp: time.Now()}
	}
	s.maintain()
	s.mu.Unlock()
	http.Redirect(q.w, q.r, s.computerURL(n), http.StatusFound)
}

// handlePage answers the HTML pages clients land on after a redirect (the dashboard, the node
// list, one node) with 200 and a minimal page, as browsers and gojenkins expect.
func (s *Server) handlePage(q *request) {
	title := "Dashboard"
	if len(q.segs) >= 1 {
		title = "Nodes"
	}
	if len(q.segs) == 2 {
		s.mu.Lock()
		n := s.nodeFor(q.segs[1])
		s.mu.Unlock()
		if n == nil {
			notFound(q)
			return
		}
		title = n.displayName(q.lang)
	}
	jenkinsPage(q.w, http.StatusOK, title, "<h1>"+html.EscapeString(title)+"</h1>")
}

func (s *Server) setTempOffline(n *node, message string) {
	n.tempOffline = true
	n.cause = &offlineCause{class: "hudson.slaves.OfflineCause$UserCause", reason: message, timestamp: time.Now()}
}

func (s *Server) computerURL(n *node) string {
	if n.builtIn {
		return s.url + "computer/(built-in)/"
	}
	return s.url + "computer/" + pathEscape(n.name) + "/"
}

func (s *Server) handleJNLP(q *request) {
	s.mu.Lock()
	n := s.nodeFor(q.segs[1])
	s.mu.Unlock()
	if n == nil || n.builtIn {
		notFound(q)
		return
	}
	if !s.check(q, AgentConnect) {
		return
	}
	s.mu.Lock()
	body := s.jnlp(n)
	s.mu.Unlock()
	q.w.Header().Set("Content-Type", "application/x-java-jnlp-file")
	_, _ = q.w.Write([]byte(body)) // a client gone away is not the emulator's problem
}

func (s *Server) handleJob(q *request) {
	s.mu.Lock()
	j := s.jobs[q.segs[1]]
	s.mu.Unlock()
	if j == nil || !q.pr.user.has(JobRead) {
		notFound(q) // Jenkins hides jobs a user cannot read
		return
	}
	s.writeBean(q, func() *bean { return s.jobBean(j, q.lang) })
}

func (s *Server) handleRun(q *request) {
	num, err := strconv.Atoi(q.segs[2])
	s.mu.Lock()
	var r *run
	if j := s.jobs[q.segs[1]]; j != nil && err == nil {
		for _, x := range j.runs {
			if x.number == num {
				r = x
			}
		}
	}
	s.mu.Unlock()
	if r == nil || !q.pr.user.has(JobRead) {
		notFound(q)
		return
	}
	s.writeBean(q, func() *bean { return s.runBean(r, q.lang) })
}

// handleBuild is ParameterizedJobMixIn.doBuild: 201 with the queue item's URL in Location.
func (s *Server) handleBuild(q *request) {
	s.mu.Lock()
	j := s.jobs[q.segs[1]]
	s.mu.Unlock()
	if j == nil || !q.pr.user.has(JobRead) {
		notFound(q)
		return
	}
	if !s.check(q, JobBuild) {
		return
	}
	quiet := s.opts.QuietPeriod
	if d := q.r.FormValue("delay"); d != "" {
		v, err := parseDelay(d)
		if err != nil {
			failure(q.w, err.Error())
			return
		}
		quiet = v
	}
	id, err := s.schedule(j.name, quiet, q.pr.name())
	if err != nil {
		notFound(q)
		return
	}
	q.w.Header().Set("Location", s.url+"queue/item/"+strconv.FormatInt(id, 10)+"/")
	q.w.WriteHeader(http.StatusCreated)
}

// parseDelay is TimeDuration.fromString: "5", "5sec", "500ms", "2min".
func parseDelay(v string) (time.Duration, error) {
	v = strings.TrimSpace(strings.ToLower(v))
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"ms", time.Millisecond}, {"secs", time.Second}, {"sec", time.Second}, {"s", time.Second},
		{"mins", time.Minute}, {"min", time.Minute}, {"m", time.Minute}, {"", time.Second}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(v, u.suffix); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
			if err != nil || f < 0 {
				continue
			}
			return time.Duration(f * float64(u.unit)), nil
		}
	}
	return 0, fmt.Errorf("Invalid time duration value: %s", v)
}

func (s *Server) handleLabel(q *request) {
	raw := q.segs[1]
	lbl, err := parseLabel(raw)
	if err != nil {
		notFound(q)
		return
	}
	atom := labelexprIsAtom(lbl)
	class := labelClass(lbl.str, atom)
	s.writeBean(q, func() *bean { return s.labelBean(lbl, class, q.lang) })
}

func labelexprIsAtom(l *label) bool { return l.name != l.str || !strings.ContainsAny(l.str, "&|!<>()") }
