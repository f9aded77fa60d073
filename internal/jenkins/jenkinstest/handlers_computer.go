package jenkinstest

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// The computers' handlers: /computer/api, a computer's page and API, createItem, doDelete,
// toggleOffline, changeOfflineCause, doDisconnect and the JNLP file (hudson.model.ComputerSet,
// hudson.slaves.SlaveComputer).

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
	s.changeComputer(q, n, func() {
		if goingOffline {
			s.setTempOffline(n, strings.TrimSpace(q.r.FormValue("offlineMessage")))
		} else {
			n.tempOffline, n.cause = false, nil
		}
	})
}

// handleChangeOfflineCause is Computer.doChangeOfflineCause: temporarily offline with a reason.
func (s *Server) handleChangeOfflineCause(q *request) {
	if n := s.computerFor(q, AgentDisconnect); n != nil {
		s.changeComputer(q, n, func() { s.setTempOffline(n, strings.TrimSpace(q.r.FormValue("offlineMessage"))) })
	}
}

// handleDisconnect is Computer.doDoDisconnect: the agent is dropped with a UserCause, without
// marking the computer temporarily offline.
func (s *Server) handleDisconnect(q *request) {
	n := s.computerFor(q, AgentDisconnect)
	if n == nil {
		return
	}
	s.changeComputer(q, n, func() {
		if n.conn != nil {
			n.conn.kick()
			n.conn = nil
			s.nodeLost(n, func(*run) string { return "ABORTED" })
		}
		if !n.builtIn {
			n.cause = &offlineCause{class: "hudson.slaves.OfflineCause$UserCause",
				reason: strings.TrimSpace(q.r.FormValue("offlineMessage")), timestamp: time.Now()}
		}
	})
}

// changeComputer applies a computer action's change under s.mu, lets the queue react to it
// (Queue.maintain, as Jenkins schedules after every node change) and redirects to the computer's
// page, as Stapler's HttpResponses.redirectToDot does for these actions.
func (s *Server) changeComputer(q *request, n *node, change func()) {
	s.mu.Lock()
	change()
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
