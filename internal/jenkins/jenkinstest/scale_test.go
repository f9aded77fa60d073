package jenkinstest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// The provisioner's benchmarks drive the emulator at the scale of a busy controller: a thousand
// builds queued at once, a thousand agents created, connected and each running a build, and
// pollers reading the queue and the computer list several times a second. The benchmarks here
// pin what that costs the emulator, and TestScaleThousand checks that at this size every build
// still lands on exactly one agent.

// The trees the provisioner's client asks for (internal/jenkins queue.go and computers.go).
const (
	scaleQueueTree     = "queue/api/json?tree=items%5Bid%2Cwhy%2Cblocked%2Cbuildable%2Cstuck%2Cpending%2CinQueueSince%2CbuildableStartMilliseconds%2Ctask%5Bname%2Curl%5D%5D"
	scaleComputersTree = "computer/api/json?tree=computer%5BdisplayName%2Cdescription%2Coffline%2CtemporarilyOffline%2Cidle%2CnumExecutors%2CjnlpAgent%2CofflineCauseReason%2CassignedLabels%5Bname%5D%2Cexecutors%5Bidle%2CcurrentExecutable%5Burl%2Cnumber%5D%5D%2ConeOffExecutors%5Bidle%2CcurrentExecutable%5Burl%2Cnumber%5D%5D%5D"
)

// scaleRig is an emulator with an HTTP client that works under both tests and benchmarks.
type scaleRig struct {
	tb testing.TB
	s  *Server
	hc *http.Client
}

func newScaleRig(tb testing.TB, opts Options) *scaleRig {
	tb.Helper()
	s := New(opts)
	tb.Cleanup(s.Close)
	s.AddUser("admin", "admin-token", OverallAdminister)
	tr := &http.Transport{MaxIdleConnsPerHost: 32, Proxy: nil}
	tb.Cleanup(tr.CloseIdleConnections)
	return &scaleRig{tb: tb, s: s, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends one request as admin and returns the status and body. It is safe for concurrent use
// and reports failures with Errorf, so it can run on goroutines other than the test's own.
func (r *scaleRig) do(method, path string, form url.Values) (int, []byte) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(context.Background(), method, r.s.URL()+path, body)
	if err != nil {
		r.tb.Errorf("%s %s: %v", method, path, err)
		return 0, nil
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.SetBasicAuth("admin", "admin-token")
	resp, err := r.hc.Do(req)
	if err != nil {
		r.tb.Errorf("%s %s: %v", method, path, err)
		return 0, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.tb.Errorf("%s %s: reading body: %v", method, path, err)
	}
	return resp.StatusCode, b
}

func (r *scaleRig) mustDo(method, path string, form url.Values, want int) []byte {
	status, body := r.do(method, path, form)
	if status != want {
		r.tb.Errorf("%s %s: status %d, want %d: %.300s", method, path, status, want, body)
	}
	return body
}

// createNode posts the provisioner client's form for an exclusive one-executor WebSocket agent.
func (r *scaleRig) createNode(name, labels string) {
	j, err := json.Marshal(map[string]any{
		"name": name, "nodeDescription": "[jenkins-agent-provisioner] scale", "numExecutors": 1,
		"remoteFS": "/home/jenkins/agent", "labelString": labels, "mode": "EXCLUSIVE",
		"retentionStrategy": map[string]any{"stapler-class": "hudson.slaves.RetentionStrategy$Always"},
		"nodeProperties":    map[string]any{"stapler-class-bag": "true"},
		"launcher":          map[string]any{"stapler-class": "hudson.slaves.JNLPLauncher", "webSocket": true},
	})
	if err != nil {
		r.tb.Fatal(err)
	}
	r.mustDo(http.MethodPost, "computer/doCreateItem",
		url.Values{"name": {name}, "type": {"hudson.slaves.DumbSlave"}, "json": {string(j)}}, http.StatusFound)
}

var jnlpSecret = regexp.MustCompile(`<argument>([0-9a-f]{64})</argument>`)

// connect reads the node's secret from jenkins-agent.jnlp, as the inbound agent's launcher does,
// and connects the agent.
func (r *scaleRig) connect(name string) *AgentSession {
	body := r.mustDo(http.MethodGet, "computer/"+url.PathEscape(name)+"/jenkins-agent.jnlp", nil, http.StatusOK)
	m := jnlpSecret.FindSubmatch(body)
	if m == nil {
		r.tb.Errorf("no secret in the jnlp file of %s: %s", name, body)
		return nil
	}
	a, err := ConnectAgent(context.Background(), r.s.URL(), name, string(m[1]))
	if err != nil {
		r.tb.Errorf("connecting %s: %v", name, err)
		return nil
	}
	r.tb.Cleanup(a.Close)
	return a
}

// parallel runs f(0..n-1) on a few goroutines; the emulator serialises on its lock anyway, so
// more would only add scheduling noise on a small machine.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}

// busyQueue builds the state the provisioner's benchmarks poll: nodes agents labelled linux, of
// which the first connected ones are busy with hour-long builds, one idle connected exclusive
// agent labelled "special" (so unlabelled items show the composite of refusals), and items queue
// items spread over a label served by busy agents, a label no node has, an expression and no label.
func busyQueue(tb testing.TB, nodes, connected, items int) *scaleRig {
	tb.Helper()
	r := newScaleRig(tb, Options{})
	parallel(nodes, func(i int) { r.createNode(fmt.Sprintf("agent-%04d", i), "linux") })
	for i := 0; i < connected; i++ {
		name := fmt.Sprintf("agent-%04d", i)
		r.s.CreateFreestyleJob("occupy-"+name, name, time.Hour)
		if _, err := r.s.Schedule("occupy-" + name); err != nil {
			tb.Fatal(err)
		}
	}
	parallel(connected, func(i int) { r.connect(fmt.Sprintf("agent-%04d", i)) })
	r.createNode("special", "special")
	r.connect("special")
	labels := []string{"linux", "windows", "linux&&docker", ""}
	for i := 0; i < items; i++ {
		name := fmt.Sprintf("job-%04d", i)
		r.s.CreateFreestyleJob(name, labels[i%len(labels)], time.Minute)
		if _, err := r.s.Schedule(name); err != nil {
			tb.Fatal(err)
		}
	}
	eventually(tb, "the busy agents to start their builds", func() bool {
		n := 0
		for _, b := range r.s.Builds() {
			if !b.Started.IsZero() {
				n++
			}
		}
		return n == connected
	})
	return r
}

// BenchmarkScheduleThousand queues a thousand builds of labelled jobs while ten agents with the
// label exist but are offline, so every item stays buildable and is re-examined on each change.
// One op is all thousand Schedule calls.
func BenchmarkScheduleThousand(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		r := newScaleRig(b, Options{})
		for i := 0; i < 10; i++ {
			r.createNode(fmt.Sprintf("offline-%d", i), "linux")
		}
		for i := 0; i < 1000; i++ {
			r.s.CreateFreestyleJob(fmt.Sprintf("job-%04d", i), "linux", time.Minute)
		}
		b.StartTimer()
		for i := 0; i < 1000; i++ {
			if _, err := r.s.Schedule(fmt.Sprintf("job-%04d", i)); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		r.s.Close()
		b.StartTimer()
	}
}

// BenchmarkQueueGET1000 is one poll of the queue holding a thousand items, with a thousand
// agents, as the provisioner's client asks for it and as a client without tree= does.
func BenchmarkQueueGET1000(b *testing.B) {
	r := busyQueue(b, 1000, 100, 1000)
	for _, path := range []struct{ name, path string }{
		{"tree", scaleQueueTree},
		{"depth0", "queue/api/json"},
	} {
		b.Run(path.name, func(b *testing.B) {
			for b.Loop() {
				r.mustDo(http.MethodGet, path.path, nil, http.StatusOK)
			}
		})
	}
}

// BenchmarkComputersGET1000 is one poll of the computer list with a thousand agents, a tenth of
// them connected and busy, as the provisioner's client asks for it and as gojenkins does
// (depth=1, monitor data included).
func BenchmarkComputersGET1000(b *testing.B) {
	r := busyQueue(b, 1000, 100, 1000)
	for _, path := range []struct{ name, path string }{
		{"tree", scaleComputersTree},
		{"depth1", "computer/api/json?depth=1"},
	} {
		b.Run(path.name, func(b *testing.B) {
			for b.Loop() {
				r.mustDo(http.MethodGet, path.path, nil, http.StatusOK)
			}
		})
	}
}

// BenchmarkCreateDeleteNode creates and deletes one agent (two requests) next to a thousand
// agents and a thousand queued items; also the other per-agent calls the provisioner makes at
// that rate.
func BenchmarkCreateDeleteNode(b *testing.B) {
	r := busyQueue(b, 1000, 100, 1000)
	b.Run("createDelete", func(b *testing.B) {
		for b.Loop() {
			r.createNode("churn", "linux")
			r.mustDo(http.MethodPost, "computer/churn/doDelete", url.Values{}, http.StatusFound)
		}
	})
	b.Run("jnlp", func(b *testing.B) {
		for b.Loop() {
			r.mustDo(http.MethodGet, "computer/agent-0500/jenkins-agent.jnlp", nil, http.StatusOK)
		}
	})
	b.Run("changeOfflineCause", func(b *testing.B) {
		for b.Loop() {
			r.mustDo(http.MethodPost, "computer/agent-0500/changeOfflineCause",
				url.Values{"offlineMessage": {"draining"}}, http.StatusFound)
		}
	})
}

// TestScaleThousand queues a thousand builds, then creates and connects a thousand agents that
// each can take any of them: every build must start exactly once, each agent running one, with
// polls of the queue and the computer list going on throughout.
func TestScaleThousand(t *testing.T) {
	if testing.Short() {
		t.Skip("a thousand agents hold two thousand sockets and a few thousand goroutines")
	}
	const n = 1000
	start := time.Now()
	r := newScaleRig(t, Options{KeepAlive: 5 * time.Second})
	ids := map[int64]bool{}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("job-%04d", i)
		r.s.CreateFreestyleJob(name, "k8s", time.Hour)
		id, err := r.s.Schedule(name)
		if err != nil {
			t.Fatal(err)
		}
		ids[id] = true
	}
	t.Logf("scheduled %d items in %v", n, time.Since(start))

	ctx, cancel := context.WithCancel(context.Background())
	var polls sync.WaitGroup
	for _, path := range []string{scaleQueueTree, scaleComputersTree} {
		polls.Add(1)
		go func() {
			defer polls.Done()
			for ctx.Err() == nil {
				r.mustDo(http.MethodGet, path, nil, http.StatusOK)
				time.Sleep(200 * time.Millisecond)
			}
		}()
	}
	step := time.Now()
	parallel(n, func(i int) { r.createNode(fmt.Sprintf("k8s-%04d", i), "k8s") })
	t.Logf("created %d nodes in %v", n, time.Since(step))
	step = time.Now()
	parallel(n, func(i int) { r.connect(fmt.Sprintf("k8s-%04d", i)) })
	t.Logf("connected %d agents in %v", n, time.Since(step))
	step = time.Now()
	eventually(t, "every build to start", func() bool {
		started := 0
		for _, b := range r.s.Builds() {
			if !b.Started.IsZero() {
				started++
			}
		}
		return started == n
	})
	t.Logf("all builds started %v after the last connection", time.Since(step))
	cancel()
	polls.Wait()

	perNode := map[string]int{}
	perItem := map[int64]int{}
	for _, b := range r.s.Builds() {
		perNode[b.Node]++
		perItem[b.QueueID]++
		if b.Done {
			t.Errorf("build %s #%d ended (%s) while its agent is connected", b.Job, b.Number, b.Result)
		}
	}
	for id := range ids {
		if perItem[id] != 1 {
			t.Errorf("queue item %d started %d builds, want 1", id, perItem[id])
		}
	}
	if len(perItem) != n {
		t.Errorf("%d queue items started builds, want %d", len(perItem), n)
	}
	for _, node := range r.s.Nodes() {
		if perNode[node.Name] != 1 || !node.Busy || !node.Connected {
			t.Errorf("agent %s: %d builds, busy %v, connected %v; want 1, busy and connected",
				node.Name, perNode[node.Name], node.Busy, node.Connected)
		}
	}
	body := r.mustDo(http.MethodGet, scaleQueueTree, nil, http.StatusOK)
	var q struct{ Items []any }
	if err := json.Unmarshal(body, &q); err != nil {
		t.Fatal(err)
	}
	if len(q.Items) != 0 {
		t.Errorf("queue has %d items left, want none", len(q.Items))
	}
	t.Logf("total %v", time.Since(start))
}
