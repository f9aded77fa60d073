package jenkinstest

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCreateNodeValidation(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, "admin", "admin-token")
	createNode(t, c, "taken", "", "NORMAL", false).mustStatus(t, http.StatusFound)
	good := `{"name":"x","numExecutors":1,"remoteFS":"/a","mode":"NORMAL","launcher":{"stapler-class":"hudson.slaves.JNLPLauncher"}}`
	tests := []struct {
		name       string
		form       url.Values
		wantStatus int
		wantBody   string
	}{
		{"name taken", url.Values{"name": {"taken"}, "type": {"hudson.slaves.DumbSlave"}, "json": {good}}, 400, "Agent called ‘taken’ already exists"},
		{"unsafe character", url.Values{"name": {"a/b"}, "type": {"hudson.slaves.DumbSlave"}, "json": {good}}, 400, "‘/’ is an unsafe character"},
		{"empty name", url.Values{"name": {" "}, "type": {"hudson.slaves.DumbSlave"}, "json": {good}}, 400, "No name is specified"},
		{"no json", url.Values{"name": {"n"}, "type": {"hudson.slaves.DumbSlave"}}, 400, "expects a form submission"},
		{"bad json", url.Values{"name": {"n"}, "type": {"hudson.slaves.DumbSlave"}, "json": {`{"name":`}}, 400, "Failed to parse form data"},
		{"zero executors", url.Values{"name": {"n"}, "type": {"hudson.slaves.DumbSlave"}, "json": {`{"numExecutors":0}`}}, 400, "Invalid # of executors"},
		{"bad mode", url.Values{"name": {"n"}, "type": {"hudson.slaves.DumbSlave"}, "json": {`{"mode":"SOMETIMES"}`}}, 400, "No enum constant"},
		{"other launcher", url.Values{"name": {"n"}, "type": {"hudson.slaves.DumbSlave"}, "json": {`{"launcher":{"stapler-class":"hudson.slaves.CommandLauncher"}}`}}, 400, "CommandLauncher"},
		{"unknown type", url.Values{"name": {"n"}, "type": {"hudson.slaves.Nope"}, "json": {good}}, 500, "Oops!"},
		{"descriptor type, executors as string", url.Values{"name": {"ok"}, "type": {"hudson.slaves.DumbSlave$DescriptorImpl"},
			"json": {`{"numExecutors":"2","launcher":{"$class":"hudson.slaves.JNLPLauncher","webSocket":"true"}}`}}, 302, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.post("computer/doCreateItem", tt.form).mustStatus(t, tt.wantStatus)
			if !strings.Contains(string(r.body), tt.wantBody) {
				t.Errorf("body lacks %q:\n%s", tt.wantBody, r.body)
			}
			if ct := r.header.Get("Content-Type"); r.status >= 400 && !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type = %q, want an HTML error page", ct)
			}
		})
	}
	var names []string
	for _, n := range s.Nodes() {
		names = append(names, n.Name)
	}
	if diff := cmp.Diff([]string{"ok", "taken"}, names); diff != "" {
		t.Errorf("nodes (-want +got):\n%s", diff)
	}
}

func TestJNLP(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, "admin", "admin-token")
	createNode(t, c, "ws", "linux", "EXCLUSIVE", true).mustStatus(t, http.StatusFound)
	createNode(t, c, "tcp", "linux", "EXCLUSIVE", false).mustStatus(t, http.StatusFound)
	args := regexp.MustCompile(`<argument>([^<]*)</argument>`)
	for _, tt := range []struct {
		path     string
		node     string
		wantTail []string
	}{
		{"computer/ws/jenkins-agent.jnlp", "ws", []string{"ws", "-webSocket", "-workDir", "/home/jenkins/agent", "-internalDir", "remoting", "-url", s.URL()}},
		{"computer/ws/slave-agent.jnlp", "ws", []string{"ws", "-webSocket", "-workDir", "/home/jenkins/agent", "-internalDir", "remoting", "-url", s.URL()}},
		{"computer/tcp/jenkins-agent.jnlp", "tcp", []string{"tcp", "-workDir", "/home/jenkins/agent", "-internalDir", "remoting", "-url", s.URL()}},
	} {
		r := c.get(tt.path).mustStatus(t, http.StatusOK)
		body := string(r.body)
		if !strings.Contains(body, "<jnlp>") || !strings.Contains(body, "<application-desc>") || strings.Contains(body, "main-class") {
			t.Errorf("%s is not the 2.344+ format:\n%s", tt.path, body)
		}
		var got []string
		for _, m := range args.FindAllStringSubmatch(body, -1) {
			got = append(got, m[1])
		}
		if len(got) == 0 || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(got[0]) {
			t.Fatalf("%s: first argument %v is not a 64-hex secret", tt.path, got)
		}
		if diff := cmp.Diff(tt.wantTail, got[1:]); diff != "" {
			t.Errorf("%s arguments (-want +got):\n%s", tt.path, diff)
		}
		var secret string
		for _, n := range s.Nodes() {
			if n.Name == tt.node {
				secret = n.Secret
			}
		}
		if got[0] != secret {
			t.Errorf("%s: secret %s is not the node's %s", tt.path, got[0], secret)
		}
	}
	// The secret is per node and survives re-creation under the same name, as Jenkins' HMAC does.
	secrets := map[string]string{}
	for _, n := range s.Nodes() {
		secrets[n.Name] = n.Secret
	}
	if secrets["ws"] == secrets["tcp"] {
		t.Error("two nodes share a secret")
	}
	c.post("computer/ws/doDelete", nil).mustStatus(t, http.StatusFound)
	createNode(t, c, "ws", "linux", "EXCLUSIVE", true).mustStatus(t, http.StatusFound)
	for _, n := range s.Nodes() {
		if n.Name == "ws" && n.Secret != secrets["ws"] {
			t.Error("re-created node got a different secret")
		}
	}
	c.get("computer/(built-in)/jenkins-agent.jnlp").mustStatus(t, http.StatusNotFound)
}

func TestAgentHandshake(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, "admin", "admin-token")
	createNode(t, c, "a1", "linux", "EXCLUSIVE", true).mustStatus(t, http.StatusFound)
	secret := s.Nodes()[0].Secret
	ctx := context.Background()
	for _, tt := range []struct {
		name, node, secret string
		wantStatus         int
		wantMessage        string
	}{
		{"unknown node", "nope", secret, 400, "no such agent"},
		{"wrong secret", "a1", strings.Repeat("0", 64), 403, "Forbidden"},
	} {
		_, err := ConnectAgent(ctx, s.URL(), tt.node, tt.secret)
		var ae *AgentError
		if !errors.As(err, &ae) {
			t.Fatalf("%s: error %v is not an *AgentError", tt.name, err)
		}
		if diff := cmp.Diff(AgentError{Status: tt.wantStatus, Message: tt.wantMessage}, *ae); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
	a := connect(t, s, "a1")
	_, err := ConnectAgent(ctx, s.URL(), "a1", secret)
	var ae *AgentError
	if !errors.As(err, &ae) || ae.Status != http.StatusConflict {
		t.Errorf("second connection: %v, want 409", err)
	}
	a.Close()
	if a.Err() == nil {
		t.Error("Err is nil after Close")
	}
	eventually(t, "a1 offline after the agent went away", func() bool { return !s.Nodes()[0].Connected })
	m := c.get("computer/a1/api/json?tree=offline,offlineCause,offlineCauseReason").json(t)
	if m["offline"] != true || m["offlineCause"].(map[string]any)["_class"] != "hudson.slaves.OfflineCause$ChannelTermination" {
		t.Errorf("after the agent left: %v", m)
	}
	// It may come back.
	connect(t, s, "a1")
	eventually(t, "a1 online again", func() bool { return s.Nodes()[0].Connected })
}

// TestNodeLifecycle: create, never connected, connect, a build runs on it, delete disconnects.
func TestNodeLifecycle(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, "admin", "admin-token")
	createNode(t, c, "a1", "linux docker", "EXCLUSIVE", true).mustStatus(t, http.StatusFound)
	const tree = "computer/a1/api/json?tree=displayName,offline,temporarilyOffline,idle,jnlpAgent,offlineCause,assignedLabels[name],executors[idle,number,currentExecutable[url,number]]"
	idleExec := []any{map[string]any{"currentExecutable": nil, "idle": true, "number": 0.0}}
	labels := []any{map[string]any{"name": "a1"}, map[string]any{"name": "docker"}, map[string]any{"name": "linux"}}
	want := map[string]any{"_class": "hudson.slaves.SlaveComputer", "displayName": "a1", "offline": true, "temporarilyOffline": false,
		"idle": true, "jnlpAgent": true, "offlineCause": nil, "assignedLabels": labels, "executors": idleExec}
	if diff := cmp.Diff(want, c.get(tree).json(t)); diff != "" {
		t.Errorf("never connected (-want +got):\n%s", diff)
	}

	a := connect(t, s, "a1")
	want["offline"] = false
	if diff := cmp.Diff(want, c.get(tree).json(t)); diff != "" {
		t.Errorf("connected (-want +got):\n%s", diff)
	}

	s.CreateFreestyleJob("fs", "linux&&docker", time.Hour)
	qid, err := s.Schedule("fs")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the build to start on a1", func() bool { b := s.Builds(); return len(b) == 1 && b[0].Node == "a1" && !b[0].Started.IsZero() })
	// Jenkins hands an idle agent the next build at once: no waiting for a periodic tick.
	if b := s.Builds()[0]; b.Started.Sub(b.Queued) > 200*time.Millisecond {
		t.Errorf("build started %v after it was queued on an idle agent", b.Started.Sub(b.Queued))
	}
	want["idle"] = false
	want["executors"] = []any{map[string]any{"idle": false, "number": 0.0, "currentExecutable": map[string]any{
		"_class": "hudson.model.FreeStyleBuild", "number": 1.0, "url": s.URL() + "job/fs/1/"}}}
	if diff := cmp.Diff(want, c.get(tree).json(t)); diff != "" {
		t.Errorf("busy (-want +got):\n%s", diff)
	}
	left := c.get("queue/item/" + itoa(qid) + "/api/json?tree=cancelled,executable[number,url]").json(t)
	if diff := cmp.Diff(map[string]any{"_class": "hudson.model.Queue$LeftItem", "cancelled": false,
		"executable": map[string]any{"_class": "hudson.model.FreeStyleBuild", "number": 1.0, "url": s.URL() + "job/fs/1/"}}, left); diff != "" {
		t.Errorf("left item (-want +got):\n%s", diff)
	}

	c.post("computer/a1/doDelete", nil).mustStatus(t, http.StatusFound)
	select {
	case <-a.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("deleting the node did not disconnect its agent")
	}
	b := s.Builds()[0]
	if !b.Done || b.Result != "ABORTED" {
		t.Errorf("build on the deleted node: %+v, want done and ABORTED", b)
	}
	c.get("computer/a1/api/json").mustStatus(t, http.StatusNotFound)
}

func TestPipelineOnAgent(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, "admin", "admin-token")
	createNode(t, c, "a1", "linux", "EXCLUSIVE", true).mustStatus(t, http.StatusFound)
	connect(t, s, "a1")
	s.CreatePipelineJob("p", "linux", 300*time.Millisecond)
	if _, err := s.Schedule("p"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the node block to run on a1", func() bool { b := s.Builds(); return len(b) == 1 && b[0].Node == "a1" && !b[0].Started.IsZero() })
	got := c.get("computer/api/json?tree=computer[displayName,executors[currentExecutable[url,number]],oneOffExecutors[currentExecutable[url]]]").json(t)
	want := map[string]any{"_class": "hudson.model.ComputerSet", "computer": []any{
		map[string]any{"_class": "hudson.model.Hudson$MasterComputer", "displayName": "Built-In Node", "executors": []any{},
			"oneOffExecutors": []any{map[string]any{"currentExecutable": map[string]any{
				"_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun", "url": s.URL() + "job/p/1/"}}}},
		map[string]any{"_class": "hudson.slaves.SlaveComputer", "displayName": "a1", "oneOffExecutors": []any{},
			"executors": []any{map[string]any{"currentExecutable": map[string]any{
				"_class": "org.jenkinsci.plugins.workflow.support.steps.ExecutorStepExecution$PlaceholderTask$PlaceholderExecutable",
				"number": 1.0, "url": s.URL() + "job/p/1/"}}}},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("computers while the pipeline runs (-want +got):\n%s", diff)
	}
	eventually(t, "the pipeline to finish", func() bool { return s.Builds()[0].Done })
	if r := s.Builds()[0].Result; r != "SUCCESS" {
		t.Errorf("result %s", r)
	}
	run := c.get("job/p/1/api/json?tree=building,result").json(t)
	if diff := cmp.Diff(map[string]any{"_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun", "building": false, "result": "SUCCESS"}, run); diff != "" {
		t.Errorf("run (-want +got):\n%s", diff)
	}
}

func TestOfflineToggles(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, "admin", "admin-token")
	createNode(t, c, "a1", "linux", "EXCLUSIVE", true).mustStatus(t, http.StatusFound)
	connect(t, s, "a1")
	const tree = "computer/a1/api/json?tree=offline,temporarilyOffline,offlineCauseReason,offlineCause"
	state := func() map[string]any {
		m := c.get(tree).json(t)
		if oc, ok := m["offlineCause"].(map[string]any); ok {
			m["offlineCause"] = oc["_class"]
		}
		delete(m, "_class")
		return m
	}
	steps := []struct {
		path, message string
		wantLocation  string
		want          map[string]any
	}{
		{"toggleOffline", "maintenance", "computer/a1/", map[string]any{"offline": true, "temporarilyOffline": true,
			"offlineCauseReason": "maintenance", "offlineCause": "hudson.slaves.OfflineCause$UserCause"}},
		{"toggleOffline", "", "computer/a1/", map[string]any{"offline": false, "temporarilyOffline": false,
			"offlineCauseReason": "", "offlineCause": nil}},
		{"changeOfflineCause", "draining", "computer/a1/", map[string]any{"offline": true, "temporarilyOffline": true,
			"offlineCauseReason": "draining", "offlineCause": "hudson.slaves.OfflineCause$UserCause"}},
		{"changeOfflineCause", "still draining", "computer/a1/", map[string]any{"offline": true, "temporarilyOffline": true,
			"offlineCauseReason": "still draining", "offlineCause": "hudson.slaves.OfflineCause$UserCause"}},
	}
	for _, st := range steps {
		r := c.post("computer/a1/"+st.path+"?offlineMessage="+url.QueryEscape(st.message), nil).mustStatus(t, http.StatusFound)
		if got, want := r.header.Get("Location"), s.URL()+st.wantLocation; got != want {
			t.Errorf("%s Location %q, want %q", st.path, got, want)
		}
		if diff := cmp.Diff(st.want, state()); diff != "" {
			t.Errorf("after %s %q (-want +got):\n%s", st.path, st.message, diff)
		}
	}
	// A temporarily offline agent gets no builds.
	s.CreateFreestyleJob("j", "linux", time.Second)
	id, err := s.Schedule("j")
	if err != nil {
		t.Fatal(err)
	}
	_, whys := queueWhys(t, c)
	if diff := cmp.Diff("‘a1’ is offline", whys[id]); diff != "" {
		t.Errorf("why (-want +got):\n%s", diff)
	}
}

func TestComputerListOrder(t *testing.T) {
	s := newTestServer(t, Options{BuiltInExecutors: 2})
	c := newClient(t, s, "admin", "admin-token")
	for _, n := range []string{"b", "C", "a", "_x"} {
		createNode(t, c, n, "", "NORMAL", false).mustStatus(t, http.StatusFound)
	}
	m := c.get("computer/api/json?tree=computer[displayName,numExecutors],totalExecutors").json(t)
	var names []string
	for _, x := range m["computer"].([]any) {
		names = append(names, x.(map[string]any)["displayName"].(string))
	}
	// Built-in first, then String.compareTo order (upper case before '_' before lower case).
	if diff := cmp.Diff([]string{"Built-In Node", "C", "_x", "a", "b"}, names); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	if m["totalExecutors"] != 2.0 {
		t.Errorf("totalExecutors = %v, want the built-in node's 2 (agents are offline)", m["totalExecutors"])
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// absoluteRemotePath (SlaveComputer#getAbsoluteRemotePath) is the agent's remote FS root while its
// channel is up and null otherwise, whatever the temporarily-offline mark; a user without
// Computer/CONNECT always reads null.
func TestAbsoluteRemotePath(t *testing.T) {
	s := newTestServer(t, Options{})
	s.AddUser("reader", "reader-token", OverallRead)
	admin, reader := newClient(t, s, "admin", "admin-token"), newClient(t, s, "reader", "reader-token")
	createNode(t, admin, "a1", "linux", "EXCLUSIVE", true).mustStatus(t, http.StatusFound)
	const tree = "computer/api/json?tree=computer[displayName,offline,absoluteRemotePath]"
	read := func(c *testClient) map[string]any {
		for _, v := range c.get(tree).json(t)["computer"].([]any) {
			m := v.(map[string]any)
			if m["displayName"] == "a1" {
				delete(m, "_class")
				delete(m, "displayName")
				return m
			}
		}
		t.Fatal("a1 not in the computer list")
		return nil
	}
	offline := map[string]any{"offline": true, "absoluteRemotePath": nil}
	connected := func(offline bool) map[string]any {
		return map[string]any{"offline": offline, "absoluteRemotePath": "/home/jenkins/agent"}
	}
	var sess *AgentSession
	steps := []struct {
		name       string
		do         func()
		admin, rdr map[string]any
	}{
		{"never connected", func() {}, offline, offline},
		{"connected", func() { sess = connect(t, s, "a1") }, connected(false), map[string]any{"offline": false, "absoluteRemotePath": nil}},
		{"marked", func() {
			admin.post("computer/a1/toggleOffline", url.Values{"offlineMessage": {"busy"}}).mustStatus(t, http.StatusFound)
		}, connected(true), offline},
		{"connection dropped", func() { s.DisconnectAgent("a1") }, offline, offline},
		{"reconnected", func() {
			<-sess.Done()
			connect(t, s, "a1")
		}, connected(true), offline},
	}
	for _, st := range steps {
		st.do()
		if diff := cmp.Diff(st.admin, read(admin)); diff != "" {
			t.Errorf("%s, as admin (-want +got):\n%s", st.name, diff)
		}
		if diff := cmp.Diff(st.rdr, read(reader)); diff != "" {
			t.Errorf("%s, without Agent/Connect (-want +got):\n%s", st.name, diff)
		}
	}
}
