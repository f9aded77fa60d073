package jenkins

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins/jenkinstest"
	"github.com/jenkins-agent-provisioner/provisioner/internal/waitfor"
)

// The client against the Jenkins emulator: the same requests a real Jenkins gets, answered in its
// shapes (HTML errors, composite whys, crumbs, 302s).

const (
	emuUser  = "provisioner"
	emuToken = "1189c7f7e4a9ad5b2e2c1de6a4ad3b7c9d"
	ourMark  = "[jenkins-agent-provisioner]"
)

// countingTransport counts the HTTP requests that leave the client and remembers their headers.
type countingTransport struct {
	next    http.RoundTripper
	n       atomic.Int64
	mu      sync.Mutex
	headers []http.Header
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	t.mu.Lock()
	t.headers = append(t.headers, r.Header.Clone())
	t.mu.Unlock()
	return t.next.RoundTrip(r)
}

func newEmulator(t *testing.T) *jenkinstest.Server {
	t.Helper()
	srv := jenkinstest.New(jenkinstest.Options{})
	t.Cleanup(srv.Close)
	srv.AddUser(emuUser, emuToken, jenkinstest.OverallAdminister)
	return srv
}

func emuClient(t *testing.T, srv *jenkinstest.Server) (*Client, *countingTransport) {
	t.Helper()
	ct := &countingTransport{next: http.DefaultTransport.(*http.Transport).Clone()}
	cfg := Config{URL: srv.URL(), User: emuUser, Token: emuToken, Transport: ct,
		Timeout: 2 * time.Second, RetryMax: 4, RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond,
		MaxRetryAfter: time.Second}
	return newClient(t, cfg), ct
}

func nodeByName(nodes []jenkinstest.NodeSnapshot, name string) (jenkinstest.NodeSnapshot, bool) {
	for _, n := range nodes {
		if n.Name == name {
			return n, true
		}
	}
	return jenkinstest.NodeSnapshot{}, false
}

func computerByName(cs []Computer, name string) (Computer, bool) {
	for _, c := range cs {
		if c.Name == name {
			return c, true
		}
	}
	return Computer{}, false
}

// eventually polls cond every 20ms until it holds or 10s pass.
func eventually(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	waitfor.Eventually(t, 10*time.Second, 20*time.Millisecond, what, func() (bool, string) {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return ok, "not yet"
	})
}

const (
	placeholderName = "jenkins-agent-provisioner-placeholder"
	placeholderDesc = ourMark + " placeholder: never connects; makes Jenkins name the labels builds wait for"
)

func TestEmulatorNodeLifecycle(t *testing.T) {
	srv := newEmulator(t)
	c, _ := emuClient(t, srv)
	ctx := context.Background()

	// With no agent node Jenkins names no label, whatever the build asks for.
	srv.CreatePipelineJob("pipe", "linux && docker", 300*time.Millisecond)
	if _, err := srv.Schedule("pipe"); err != nil {
		t.Fatal(err)
	}
	var demand []Demand
	eventually(t, "the pipeline's node() item", func() (bool, error) {
		d, err := c.Queue(ctx)
		demand = d
		return len(d) == 1, err
	})
	if d := demand[0]; !d.Ambiguous || d.Label != "" || d.Kind != KindPipeline {
		t.Errorf("demand before the placeholder = %+v, want ambiguous pipeline demand", d)
	}

	// The placeholder makes Jenkins name the label.
	if err := c.EnsurePlaceholderNode(ctx, placeholderName, placeholderName, placeholderDesc); err != nil {
		t.Fatalf("EnsurePlaceholderNode: %v", err)
	}
	ph, ok := nodeByName(srv.Nodes(), placeholderName)
	if !ok || !ph.TemporarilyOffline || ph.Connected || ph.Mode != "EXCLUSIVE" || ph.Description != placeholderDesc ||
		!slices.Contains(ph.Labels, placeholderName) {
		t.Fatalf("placeholder node = %+v (found %v), want EXCLUSIVE, temporarily offline, never connected", ph, ok)
	}
	srv.ResetStats()
	if err := c.EnsurePlaceholderNode(ctx, placeholderName, placeholderName, placeholderDesc); err != nil {
		t.Fatalf("EnsurePlaceholderNode again: %v", err)
	}
	if got := srv.Stats().Total(); got != 1 {
		t.Errorf("EnsurePlaceholderNode with the placeholder in place made %d requests, want 1", got)
	}
	demand, err := c.Queue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(demand) != 1 || demand[0].Label != "linux&&docker" || demand[0].Kind != KindPipeline ||
		demand[0].TaskName != "part of pipe #1" || !strings.HasPrefix(demand[0].TaskURL, srv.URL()+"job/pipe/") {
		t.Fatalf("demand with the placeholder = %+v, want linux&&docker for pipe", demand)
	}

	// Create the agent; repeating it is success, a foreign node of that name is not.
	spec := NodeSpec{Name: "linux-x7k2p", Description: ourMark + " template linux", Labels: []string{"linux", "docker"}, WebSocket: true}
	for i := 0; i < 2; i++ {
		if err := c.CreateNode(ctx, spec); err != nil {
			t.Fatalf("CreateNode #%d: %v", i+1, err)
		}
	}
	foreign := spec
	foreign.Description = "someone's build machine"
	if err := c.CreateNode(ctx, foreign); !errors.Is(err, ErrNodeExists) {
		t.Errorf("CreateNode over a foreign description: %v, want ErrNodeExists", err)
	}
	n, ok := nodeByName(srv.Nodes(), spec.Name)
	if !ok {
		t.Fatalf("node %s not in Jenkins", spec.Name)
	}
	if diff := cmp.Diff(
		jenkinstest.NodeSnapshot{Name: spec.Name, Description: spec.Description, LabelString: "linux docker",
			NumExecutors: 1, Mode: "EXCLUSIVE", RemoteFS: DefaultRemoteFS, WebSocket: true},
		jenkinstest.NodeSnapshot{Name: n.Name, Description: n.Description, LabelString: n.LabelString,
			NumExecutors: n.NumExecutors, Mode: n.Mode, RemoteFS: n.RemoteFS, WebSocket: n.WebSocket}); diff != "" {
		t.Errorf("created node (-want +got):\n%s", diff)
	}

	// The secret from jenkins-agent.jnlp is the one the agent connects with.
	j, err := c.NodeJNLP(ctx, spec.Name)
	if err != nil {
		t.Fatalf("NodeJNLP: %v", err)
	}
	if j.Secret != n.Secret || !j.WebSocket || j.URL != srv.URL() || j.Name != spec.Name {
		t.Errorf("jnlp = %+v, want the node's secret, WebSocket and %s", j, srv.URL())
	}
	secret, err := c.NodeSecret(ctx, spec.Name)
	if err != nil || secret != n.Secret {
		t.Errorf("NodeSecret = %q, %v", secret, err)
	}

	computers, err := c.Computers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(computers) != 3 || !computers[0].BuiltIn {
		t.Errorf("computers = %+v, want the built-in node first, then 2 agents", computers)
	}
	agent, _ := computerByName(computers, spec.Name)
	if !agent.Offline || !agent.JNLPAgent || agent.Busy() || agent.Description != spec.Description ||
		!slices.Contains(agent.Labels, "linux") || !slices.Contains(agent.Labels, "docker") || !slices.Contains(agent.Labels, spec.Name) {
		t.Errorf("new agent = %+v, want offline, not busy, labels linux docker and its name", agent)
	}

	// The agent connects; the build starts on it (read from the executors), and the node is taken
	// out of rotation while it runs.
	sess, err := jenkinstest.ConnectAgent(ctx, srv.URL(), spec.Name, secret)
	if err != nil {
		t.Fatalf("ConnectAgent: %v", err)
	}
	defer sess.Close()
	var running Computer
	eventually(t, "the build on the agent", func() (bool, error) {
		cs, err := c.Computers(ctx)
		running, _ = computerByName(cs, spec.Name)
		return running.Busy(), err
	})
	build := running.Executors[0].Build
	if running.Offline || build == nil || !strings.HasPrefix(build.URL, srv.URL()+"job/pipe/") || build.Number != 1 {
		t.Errorf("busy agent = %+v (build %+v), want online running pipe #1", running, build)
	}
	if err := c.SetTemporarilyOffline(ctx, spec.Name, "running pipe #1; deleted when it ends"); err != nil {
		t.Fatalf("SetTemporarilyOffline: %v", err)
	}
	cs, err := c.Computers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := computerByName(cs, spec.Name); !a.TemporarilyOffline || a.OfflineReason != "running pipe #1; deleted when it ends" {
		t.Errorf("agent after SetTemporarilyOffline = %+v", a)
	}
	if d, err := c.Queue(ctx); err != nil || len(d) != 0 {
		t.Errorf("queue while the build runs = %+v, %v; want empty", d, err)
	}
	eventually(t, "the build's end", func() (bool, error) {
		cs, err := c.Computers(ctx)
		a, _ := computerByName(cs, spec.Name)
		return !a.Busy(), err
	})

	// Delete: the agent is disconnected; deleting again is success.
	if err := c.DeleteNode(ctx, spec.Name); err != nil {
		t.Fatalf("DeleteNode: %v", err)
	}
	select {
	case <-sess.Done():
	case <-time.After(5 * time.Second):
		t.Errorf("agent still connected after its node was deleted")
	}
	if _, ok := nodeByName(srv.Nodes(), spec.Name); ok {
		t.Errorf("node %s still in Jenkins", spec.Name)
	}
	if err := c.DeleteNode(ctx, spec.Name); err != nil {
		t.Errorf("DeleteNode of a node already gone: %v", err)
	}
	if _, err := c.NodeSecret(ctx, spec.Name); !errors.Is(err, ErrNotFound) {
		t.Errorf("NodeSecret of a deleted node: %v, want ErrNotFound", err)
	}
	builds := srv.Builds()
	if len(builds) != 1 || !builds[0].Done || builds[0].Node != spec.Name || builds[0].Result != "SUCCESS" {
		t.Errorf("builds = %+v, want pipe #1 done on %s", builds, spec.Name)
	}
}

func TestEmulatorFreestyleJobLabel(t *testing.T) {
	srv := newEmulator(t)
	c, _ := emuClient(t, srv)
	ctx := context.Background()
	srv.CreateFreestyleJob("app", "maven && jdk21", time.Second)
	got, err := c.JobLabelExpression(ctx, srv.URL()+"job/app/")
	if err != nil || got != "maven&&jdk21" {
		t.Errorf("JobLabelExpression = %q, %v; want maven&&jdk21", got, err)
	}
	srv.CreateFreestyleJob("roam", "", time.Second)
	if got, err := c.JobLabelExpression(ctx, srv.URL()+"job/roam/"); err != nil || got != "" {
		t.Errorf("JobLabelExpression of a job without label = %q, %v", got, err)
	}
	if _, err := c.JobLabelExpression(ctx, srv.URL()+"job/nope/"); !errors.Is(err, ErrNotFound) {
		t.Errorf("JobLabelExpression of a missing job: %v, want ErrNotFound", err)
	}
}

func TestEmulatorSendsEnglish(t *testing.T) {
	srv := newEmulator(t)
	c, ct := emuClient(t, srv)
	ctx := context.Background()
	if err := c.EnsurePlaceholderNode(ctx, placeholderName, placeholderName, placeholderDesc); err != nil {
		t.Fatal(err)
	}
	srv.CreateFreestyleJob("app", "maven", time.Second)
	if _, err := srv.Schedule("app"); err != nil {
		t.Fatal(err)
	}
	// A German browser gets a German why, which ParseWhy cannot read...
	req, _ := http.NewRequest(http.MethodGet, srv.URL()+queuePath, nil)
	req.SetBasicAuth(emuUser, emuToken)
	req.Header.Set("Accept-Language", "de-DE,de;q=0.9")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	german, err := parseQueue(body, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(german) != 1 || german[0].Label != "" {
		t.Fatalf("German queue read as %+v; the emulator should answer in German", german)
	}
	// ...the client always asks in English and reads the label.
	ct.mu.Lock()
	ct.headers = nil
	ct.mu.Unlock()
	demand, err := c.Queue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(demand) != 1 || demand[0].Label != "maven" || demand[0].Kind != KindFreestyle {
		t.Errorf("demand = %+v, want maven", demand)
	}
	ct.mu.Lock()
	defer ct.mu.Unlock()
	for _, h := range ct.headers {
		if h.Get("Accept-Language") != "en" {
			t.Errorf("request sent Accept-Language %q", h.Get("Accept-Language"))
		}
	}
}

func TestEmulatorRetries(t *testing.T) {
	for _, tt := range []struct {
		name   string
		inject func(*jenkinstest.Faults)
	}{
		{"5xx pages", func(f *jenkinstest.Faults) { f.SetErrorRate(0.3, 500, 502, 503, 504) }},
		{"connection resets", func(f *jenkinstest.Faults) { f.SetResetRate(0.3) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newEmulator(t)
			c, ct := emuClient(t, srv)
			f := srv.Faults()
			f.Seed(7)
			f.Only("queue", "computers")
			tt.inject(f)
			ctx := context.Background()
			const polls = 20
			for i := 0; i < polls; i++ {
				if _, err := c.Queue(ctx); err != nil {
					t.Fatalf("Queue #%d: %v", i, err)
				}
				if _, err := c.Computers(ctx); err != nil {
					t.Fatalf("Computers #%d: %v", i, err)
				}
			}
			counts := f.Counts()
			injected := counts.Errors + counts.Resets
			if injected == 0 {
				t.Fatalf("no fault injected in %d requests", ct.n.Load())
			}
			// Every failed attempt was repeated, and nothing else was. Counted at Jenkins: Go's
			// transport itself repeats a GET whose reused connection was reset, below the client.
			want := int64(2*polls) + injected
			got := settledRequests(srv, want, "queue", "computers")
			if got != want {
				t.Errorf("Jenkins saw %d requests for %d calls and %d faults, want %d", got, 2*polls, injected, want)
			}
			if ct.n.Load() < int64(2*polls) {
				t.Errorf("%d requests left the client for %d calls", ct.n.Load(), 2*polls)
			}
		})
	}
	t.Run("createNode is not repeated", func(t *testing.T) {
		srv := newEmulator(t)
		c, _ := emuClient(t, srv)
		f := srv.Faults()
		f.Only("createNode")
		ctx := context.Background()
		spec := NodeSpec{Name: "linux-b4n6m", Description: ourMark + " linux", Labels: []string{"linux"}}
		for _, inject := range []func(){func() { f.SetErrorRate(1, 500) }, func() { f.SetErrorRate(1, 502) }, func() { f.SetResetRate(1) }} {
			f.Clear()
			f.Only("createNode")
			inject()
			srv.ResetStats()
			if err := c.CreateNode(ctx, spec); !errors.Is(err, ErrUnavailable) {
				t.Errorf("CreateNode under a fault: %v, want ErrUnavailable", err)
			}
			if n := settledRequests(srv, 1, "createNode"); n != 1 {
				t.Errorf("doCreateItem reached Jenkins %d times, want 1", n)
			}
		}
		f.Clear()
		if err := c.CreateNode(ctx, spec); err != nil {
			t.Errorf("CreateNode once Jenkins is healthy: %v", err)
		}
	})
}

// settledRequests is the emulator's request count for the endpoints once it reaches want (or 2s
// pass), plus a moment for any request beyond it to show. The emulator counts a reset request
// after closing its connection, so the client can be done before the count is.
func settledRequests(srv *jenkinstest.Server, want int64, endpoints ...string) int64 {
	count := func() int64 {
		st := srv.Stats()
		var n int64
		for _, e := range endpoints {
			n += st.Requests(e)
		}
		return n
	}
	deadline := time.Now().Add(2 * time.Second)
	for count() < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	return count()
}

func TestEmulatorOutage(t *testing.T) {
	srv := newEmulator(t)
	c, _ := emuClient(t, srv)
	ctx := context.Background()
	srv.Faults().OutageFor(time.Minute)
	start := time.Now()
	_, err := c.Queue(ctx)
	var he *HTTPError
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &he) || he.Status != http.StatusServiceUnavailable {
		t.Errorf("Queue during an outage: %v, want ErrUnavailable with 503", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Queue during an outage took %s", d)
	}
	srv.Faults().Clear()
	if _, err := c.Queue(ctx); err != nil {
		t.Errorf("Queue after the outage: %v", err)
	}
	srv.Close()
	start = time.Now()
	if _, err := c.Computers(ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Computers with Jenkins gone: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Computers with Jenkins gone took %s", d)
	}
}

func TestEmulatorErrorsNameTheCause(t *testing.T) {
	srv := newEmulator(t)
	srv.AddUser("reader", "0badc0ffee0badc0ffee0badc0ffee0bad", jenkinstest.OverallRead)
	ctx := context.Background()

	wrong := newClient(t, Config{URL: srv.URL(), User: emuUser, Token: "not-the-token", RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond})
	_, err := wrong.Queue(ctx)
	var he *HTTPError
	if !errors.Is(err, ErrUnauthorized) || !errors.As(err, &he) || he.Status != 401 || !strings.Contains(err.Error(), emuUser) {
		t.Errorf("wrong token: %v, want ErrUnauthorized naming the user", err)
	}
	if strings.Contains(err.Error(), "not-the-token") {
		t.Errorf("error repeats the token: %v", err)
	}

	reader := newClient(t, Config{URL: srv.URL(), User: "reader", Token: "0badc0ffee0badc0ffee0badc0ffee0bad"})
	err = reader.CreateNode(ctx, NodeSpec{Name: "n-1", Description: ourMark})
	if !errors.Is(err, ErrForbidden) || !errors.As(err, &he) || he.Permission != "Agent/Create" {
		t.Errorf("reader creating a node: %v, want ErrForbidden naming Agent/Create", err)
	}

	c, _ := emuClient(t, srv)
	srv.Faults().Only("computers")
	srv.Faults().SetErrorRate(1, 500)
	_, err = c.Computers(ctx)
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &he) || he.Status != 500 || he.Title == "" {
		t.Fatalf("HTML 500: %v, want ErrUnavailable with the page's title", err)
	}
	if !strings.Contains(err.Error(), he.Title) || strings.Contains(err.Error(), "invalid character") {
		t.Errorf("HTML 500 error %q should name the page, not a JSON error", err)
	}
}

// One poll costs Jenkins exactly two requests however long the queue and however many agents.
func TestEmulatorPollCost(t *testing.T) {
	for _, tt := range []struct{ queued, agents int }{{0, 0}, {100, 10}, {1000, 40}} {
		queued, agents := tt.queued, tt.agents
		t.Run(fmt.Sprintf("%d queued, %d agents", queued, agents), func(t *testing.T) {
			srv := newEmulator(t)
			c, ct := emuClient(t, srv)
			ctx := context.Background()
			if err := c.EnsurePlaceholderNode(ctx, placeholderName, placeholderName, placeholderDesc); err != nil {
				t.Fatal(err)
			}
			// Items first, agents after: the emulator re-runs its queue maintenance on every
			// change, which is slow with many offline agents and many items.
			for i := 0; i < queued; i++ {
				name := fmt.Sprintf("job-%04d", i)
				srv.CreateFreestyleJob(name, fmt.Sprintf("l%d", i%5), time.Minute)
				if _, err := srv.Schedule(name); err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; i < agents; i++ {
				spec := NodeSpec{Name: fmt.Sprintf("l%d-%05d", i%5, i), Description: ourMark, Labels: []string{fmt.Sprintf("l%d", i%5)}}
				if err := c.CreateNode(ctx, spec); err != nil {
					t.Fatal(err)
				}
			}
			srv.ResetStats()
			before := ct.n.Load()

			demand, err := c.Queue(ctx)
			if err != nil {
				t.Fatal(err)
			}
			computers, err := c.Computers(ctx)
			if err != nil {
				t.Fatal(err)
			}

			if got := ct.n.Load() - before; got != 2 {
				t.Errorf("one poll sent %d requests, want 2", got)
			}
			st := srv.Stats()
			if st.Total() != 2 || st.Requests("queue") != 1 || st.Requests("computers") != 1 {
				t.Errorf("Jenkins saw %+v for one poll, want 1 queue + 1 computers", st.Endpoints)
			}
			if len(demand) != queued || len(computers) != agents+2 {
				t.Errorf("poll read %d demands and %d computers, want %d and %d", len(demand), len(computers), queued, agents+2)
			}
			for _, d := range demand {
				if d.Label == "" || d.Kind != KindFreestyle {
					t.Errorf("demand %+v names no label", d)
					break
				}
			}
		})
	}
}

// With a password (not an API token) every POST needs a crumb from the same session: one crumb
// request serves all writes of the session.
func TestEmulatorPasswordAuth(t *testing.T) {
	srv := newEmulator(t)
	srv.AddPasswordUser("alice", "correct horse battery staple", jenkinstest.OverallAdminister)
	c := newClient(t, Config{URL: srv.URL(), User: "alice", Password: "correct horse battery staple",
		RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond})
	ctx := context.Background()
	version, err := c.Ping(ctx)
	if err != nil || version != "2.492.3" {
		t.Fatalf("Ping = %q, %v; want the emulator's version", version, err)
	}
	srv.ResetStats()
	spec := NodeSpec{Name: "linux-q2w3e", Description: ourMark + " linux", Labels: []string{"linux"}}
	if err := c.CreateNode(ctx, spec); err != nil {
		t.Fatalf("CreateNode: %v", err)
	}
	if err := c.SetTemporarilyOffline(ctx, spec.Name, "draining"); err != nil {
		t.Fatalf("SetTemporarilyOffline: %v", err)
	}
	if err := c.DeleteNode(ctx, spec.Name); err != nil {
		t.Fatalf("DeleteNode: %v", err)
	}
	st := srv.Stats()
	if st.Requests("crumb") != 1 || st.Requests("createNode") != 1 || st.Requests("changeOfflineCause") != 1 || st.Requests("deleteNode") != 1 {
		t.Errorf("requests %+v, want one crumb for three writes", st.Endpoints)
	}
	if _, ok := nodeByName(srv.Nodes(), spec.Name); ok {
		t.Errorf("node %s still exists", spec.Name)
	}
}
