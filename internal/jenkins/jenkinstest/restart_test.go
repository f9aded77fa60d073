package jenkinstest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// build returns the record of job's build number n.
func build(t *testing.T, s *Server, job string, n int) BuildRecord {
	t.Helper()
	for _, b := range s.Builds() {
		if b.Job == job && b.Number == n {
			return b
		}
	}
	t.Fatalf("no build %s #%d in %+v", job, n, s.Builds())
	return BuildRecord{}
}

func waitUp(t *testing.T, up <-chan struct{}) {
	t.Helper()
	select {
	case <-up:
	case <-time.After(10 * time.Second):
		t.Fatal("Jenkins did not come back up")
	}
}

// A restart goes down (connections refused), then starts (503, HudsonIsLoading's page without
// X-Jenkins, whatever the path and credentials), then is up on the same address.
func TestRestartPhases(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, "admin", "admin-token")
	c.get("api/json").mustStatus(t, http.StatusOK)
	up := s.Restart(300*time.Millisecond, 300*time.Millisecond)
	if again := s.Restart(time.Hour, time.Hour); again != up {
		t.Error("a second Restart during a restart started another one")
	}

	_, err := http.Get(s.URL() + "api/json")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("GET while down: %v, want connection refused", err)
	}

	var starting *http.Response
	eventually(t, "the starting page", func() bool {
		req, _ := http.NewRequest(http.MethodGet, s.URL()+"queue/api/json", nil)
		req.SetBasicAuth("nobody", "wrong")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		starting = resp
		return true
	})
	body, _ := io.ReadAll(starting.Body)
	_ = starting.Body.Close()
	if starting.StatusCode != http.StatusServiceUnavailable || starting.Header.Get("X-Jenkins") != "" ||
		!strings.Contains(string(body), "<title>Starting Jenkins</title>") || !strings.Contains(string(body), "Jenkins is getting ready to work") {
		t.Errorf("while starting: %d, X-Jenkins %q, body:\n%s", starting.StatusCode, starting.Header.Get("X-Jenkins"), body)
	}
	waitUp(t, up)
	if got := c.get("api/json").mustStatus(t, http.StatusOK).header.Get("X-Jenkins"); got == "" {
		t.Error("no X-Jenkins once up")
	}
}

// What survives a restart: freestyle builds are aborted, a pipeline node block is queued again
// as a new item bound to its node and resumes there once the agent is back, ahead of an older
// item that could take the node; left items are forgotten.
func TestRestartResumesPipelineNodeBlocks(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, "admin", "admin-token")
	createNode(t, c, "free", "free", "EXCLUSIVE", true).mustStatus(t, http.StatusFound)
	createNode(t, c, "pipe", "linux", "EXCLUSIVE", true).mustStatus(t, http.StatusFound)
	connect(t, s, "free")
	pipe := connect(t, s, "pipe")
	s.CreateFreestyleJob("f", "free", time.Hour)
	s.CreatePipelineJob("p", "linux", 500*time.Millisecond)
	s.CreateFreestyleJob("later", "linux", 10*time.Millisecond)
	fID, _ := s.Schedule("f")
	if _, err := s.Schedule("p"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both builds running", func() bool {
		return len(s.Builds()) == 2 && !s.Builds()[0].Started.IsZero() && build(t, s, "p", 1).Node == "pipe"
	})
	laterID, _ := s.Schedule("later") // waits for pipe, busy with p's node block
	placeholderID := build(t, s, "p", 1).PlaceholderQueueID

	up := s.Restart(50*time.Millisecond, 50*time.Millisecond)
	<-pipe.Done() // every agent is disconnected
	if got := build(t, s, "f", 1); !got.Done || got.Result != "ABORTED" {
		t.Errorf("freestyle build after the shutdown: %+v, want ABORTED", got)
	}
	if got := build(t, s, "p", 1); got.Done {
		t.Errorf("pipeline build ended by the shutdown: %+v", got)
	}
	waitUp(t, up)

	for _, id := range []int64{fID, placeholderID} {
		c.get("queue/item/"+itoa(id)+"/api/json").mustStatus(t, http.StatusNotFound)
	}
	resumed := build(t, s, "p", 1).ResumedQueueID
	if resumed == 0 || resumed == placeholderID {
		t.Fatalf("resumed item id %d (node() item was %d): want a new item", resumed, placeholderID)
	}
	item := c.get("queue/item/"+itoa(resumed)+"/api/json?tree=why,task[name]").mustStatus(t, http.StatusOK).json(t)
	want := map[string]any{"_class": "hudson.model.Queue$BuildableItem", "why": "‘pipe’ is offline",
		"task": map[string]any{"_class": "org.jenkinsci.plugins.workflow.support.steps.ExecutorStepExecution$PlaceholderTask", "name": "part of p #1"}}
	if diff := cmp.Diff(want, item); diff != "" {
		t.Errorf("resumed item (-want +got):\n%s", diff)
	}
	ids, _ := queueWhys(t, c)
	if diff := cmp.Diff([]int64{resumed, laterID}, ids); diff != "" {
		t.Errorf("queue after start-up (-want +got):\n%s", diff)
	}

	connect(t, s, "pipe")
	eventually(t, "the pipeline build to finish", func() bool { return build(t, s, "p", 1).Done })
	if got := build(t, s, "p", 1); got.Result != "SUCCESS" || got.Node != "pipe" {
		t.Errorf("pipeline build %+v, want SUCCESS on pipe", got)
	}
	eventually(t, "the held-off build to run after it", func() bool {
		for _, b := range s.Builds() {
			if b.Job == "later" {
				return b.Done
			}
		}
		return false
	})
	if p, l := build(t, s, "p", 1), build(t, s, "later", 1); l.Started.Before(p.Finished) {
		t.Errorf("later started %s, before the resumed block ended %s: it was not held off", l.Started, p.Finished)
	}
}

// The resumed block waits ResumeTimeout for its node, then the build is aborted and its item
// cancelled; a node deleted meanwhile changes the why.
func TestRestartResumeTimeout(t *testing.T) {
	s := newTestServer(t, Options{ResumeTimeout: 300 * time.Millisecond})
	c := newClient(t, s, "admin", "admin-token")
	createNode(t, c, "gone", "linux", "EXCLUSIVE", true).mustStatus(t, http.StatusFound)
	// Another agent: with none at all BuildableItem.getCauseOfBlockage does not talk about nodes.
	createNode(t, c, "other", "windows", "EXCLUSIVE", true).mustStatus(t, http.StatusFound)
	connect(t, s, "gone")
	s.CreatePipelineJob("p", "linux", time.Hour)
	if _, err := s.Schedule("p"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the node block", func() bool { return build(t, s, "p", 1).Node == "gone" })
	waitUp(t, s.Restart(0, 0))
	// The restart cut the connections the test client keeps alive; a POST is not retried on one.
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	c.post("computer/gone/doDelete", nil).mustStatus(t, http.StatusFound)
	resumed := build(t, s, "p", 1).ResumedQueueID
	_, whys := queueWhys(t, c)
	if got, want := whys[resumed], "There are no nodes with the label ‘gone’"; got != want {
		t.Errorf("why with the node deleted = %q, want %q", got, want)
	}
	eventually(t, "the build aborted", func() bool { return build(t, s, "p", 1).Done })
	if got := build(t, s, "p", 1).Result; got != "ABORTED" {
		t.Errorf("result %s, want ABORTED", got)
	}
	item := c.get("queue/item/"+itoa(resumed)+"/api/json?tree=cancelled").mustStatus(t, http.StatusOK).json(t)
	if item["cancelled"] != true {
		t.Errorf("resumed item after the timeout: %v, want cancelled", item)
	}
}

// A temporarily-offline mark and its message survive a restart, and a temporarily-offline node
// is offered nothing, its own resumed block included, until it is brought online.
func TestRestartKeepsTemporaryOfflineMarks(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, "admin", "admin-token")
	createNode(t, c, "a1", "linux", "EXCLUSIVE", true).mustStatus(t, http.StatusFound)
	connect(t, s, "a1")
	s.CreatePipelineJob("p", "linux", 100*time.Millisecond)
	if _, err := s.Schedule("p"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the node block", func() bool { return build(t, s, "p", 1).Node == "a1" })
	c.post("computer/a1/toggleOffline", map[string][]string{"offlineMessage": {"single-use agent, build running"}}).mustStatus(t, http.StatusFound)
	waitUp(t, s.Restart(0, 0))
	nodes := s.Nodes()
	if len(nodes) != 1 || !nodes[0].TemporarilyOffline || nodes[0].OfflineReason != "single-use agent, build running" || nodes[0].Connected {
		t.Fatalf("node after the restart: %+v, want the mark kept, not connected", nodes)
	}
	connect(t, s, "a1")
	resumed := build(t, s, "p", 1).ResumedQueueID
	eventually(t, "the agent connected", func() bool { return s.Nodes()[0].Connected })
	_, whys := queueWhys(t, c)
	if got, want := whys[resumed], "‘a1’ is offline"; got != want {
		t.Errorf("why with a1 connected but temporarily offline = %q, want %q", got, want)
	}
	if build(t, s, "p", 1).Done {
		t.Fatal("the block resumed on a temporarily-offline node")
	}
	c.post("computer/a1/toggleOffline", nil).mustStatus(t, http.StatusFound)
	eventually(t, "the pipeline build to finish", func() bool { return build(t, s, "p", 1).Done })
	if got := build(t, s, "p", 1).Result; got != "SUCCESS" {
		t.Errorf("result %s, want SUCCESS", got)
	}
}

// DisconnectAgent drops one agent: a freestyle build on it fails, a node block waits for the
// agent and ends only once it is back, even when its step finished meanwhile.
func TestDisconnectAgent(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, "admin", "admin-token")
	createNode(t, c, "free", "free", "EXCLUSIVE", true).mustStatus(t, http.StatusFound)
	createNode(t, c, "pipe", "linux", "EXCLUSIVE", true).mustStatus(t, http.StatusFound)
	free, pipe := connect(t, s, "free"), connect(t, s, "pipe")
	s.CreateFreestyleJob("f", "free", time.Hour)
	const block = 200 * time.Millisecond
	s.CreatePipelineJob("p", "linux", block)
	_, _ = s.Schedule("f")
	_, _ = s.Schedule("p")
	eventually(t, "both builds running", func() bool {
		return build(t, s, "p", 1).Node == "pipe" && !build(t, s, "f", 1).Started.IsZero()
	})
	if s.DisconnectAgent("nope") {
		t.Error("DisconnectAgent of an unknown node reported a connection")
	}
	for _, name := range []string{"free", "pipe"} {
		if !s.DisconnectAgent(name) {
			t.Errorf("DisconnectAgent(%s) = false", name)
		}
	}
	<-free.Done()
	<-pipe.Done()
	if got := build(t, s, "f", 1); got.Result != "FAILURE" {
		t.Errorf("freestyle build after its agent dropped: %+v, want FAILURE", got)
	}
	comp := c.get("computer/pipe/api/json?tree=offline,offlineCause[_class],idle").json(t)
	if comp["offline"] != true || comp["idle"] != false {
		t.Errorf("pipe while disconnected: %v, want offline and busy with the node block", comp)
	}
	time.Sleep(2 * block) // the step ends on the agent meanwhile
	if got := build(t, s, "p", 1); got.Done {
		t.Fatalf("node block ended while its agent was away: %+v", got)
	}
	connect(t, s, "pipe")
	eventually(t, "the pipeline build to finish", func() bool { return build(t, s, "p", 1).Done })
	if got := build(t, s, "p", 1); got.Result != "SUCCESS" || got.Node != "pipe" {
		t.Errorf("pipeline build %+v, want SUCCESS on pipe", got)
	}
}

// Gaps third-party clients found: /queue/item/N/cancelQueue, X-Error on 400 pages, a node()
// item's executable, /me/api/json.
func TestThirdPartyClientEndpoints(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, "admin", "admin-token")
	s.CreateFreestyleJob("f", "nowhere", time.Second)
	id, _ := s.Schedule("f")

	c.get("queue/item/"+itoa(id)+"/cancelQueue").mustStatus(t, http.StatusMethodNotAllowed)
	c.post("queue/item/"+itoa(id)+"/cancelQueue", nil).mustStatus(t, http.StatusNoContent)
	item := c.get("queue/item/" + itoa(id) + "/api/json?tree=cancelled").json(t)
	if item["cancelled"] != true {
		t.Errorf("item after cancelQueue: %v, want cancelled", item)
	}
	c.post("queue/item/"+itoa(id)+"/cancelQueue", nil).mustStatus(t, http.StatusNoContent) // left: nothing to do
	c.post("queue/item/999/cancelQueue", nil).mustStatus(t, http.StatusNotFound)

	bad := createNode(t, c, "a/b", "x", "NORMAL", true).mustStatus(t, http.StatusBadRequest)
	if got := bad.header.Get("X-Error"); got == "" || !strings.Contains(string(bad.body), got) {
		t.Errorf("X-Error %q, want the page's message; body:\n%s", got, bad.body)
	}

	me := c.get("me/api/json").mustStatus(t, http.StatusOK).json(t)
	wantMe := map[string]any{"_class": "hudson.model.User", "absoluteUrl": s.URL() + "user/admin", "description": nil,
		"fullName": "admin", "id": "admin", "property": []any{}}
	if diff := cmp.Diff(wantMe, me); diff != "" {
		t.Errorf("/me (-want +got):\n%s", diff)
	}

	createNode(t, c, "a1", "linux", "EXCLUSIVE", true).mustStatus(t, http.StatusFound)
	connect(t, s, "a1")
	s.CreatePipelineJob("p", "linux", time.Hour)
	_, _ = s.Schedule("p")
	eventually(t, "the node block", func() bool { b := build(t, s, "p", 1); return b.Node == "a1" })
	ph := build(t, s, "p", 1).PlaceholderQueueID
	left := c.get("queue/item/" + itoa(ph) + "/api/json?tree=executable[number,url]").json(t)
	wantLeft := map[string]any{"_class": "hudson.model.Queue$LeftItem", "executable": map[string]any{
		"_class": "org.jenkinsci.plugins.workflow.support.steps.ExecutorStepExecution$PlaceholderTask$PlaceholderExecutable",
		"number": 1.0, "url": s.URL() + "job/p/1/"}}
	if diff := cmp.Diff(wantLeft, left); diff != "" {
		t.Errorf("node() item once started (-want +got):\n%s", diff)
	}
}

// An agent cannot connect while Jenkins starts.
func TestAgentsRefusedWhileStarting(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, "admin", "admin-token")
	createNode(t, c, "a1", "linux", "EXCLUSIVE", true).mustStatus(t, http.StatusFound)
	secret := s.Nodes()[0].Secret
	up := s.Restart(0, time.Hour)
	var err error
	eventually(t, "an answer", func() bool {
		_, err = ConnectAgent(context.Background(), s.URL(), "a1", secret)
		var ae *AgentError
		return errors.As(err, &ae)
	})
	var ae *AgentError
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable {
		t.Errorf("connecting while starting: %v, want a 503 refusal", err)
	}
	select {
	case <-up:
		t.Error("up while starting")
	default:
	}
}
