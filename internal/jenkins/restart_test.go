package jenkins

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins/jenkinstest"
)

// Jenkins down or starting is recognisable: refused connections and timeouts are ErrUnavailable
// with no status, the start-up page is ErrStarting (which is ErrUnavailable too), and once Jenkins
// is back a queue item that had left before the restart is ErrNotFound.
func TestClientAcrossARestart(t *testing.T) {
	srv := builtInEmulator(t)
	c, _ := emuClient(t, srv)
	ctx := context.Background()
	srv.CreateFreestyleJob("f", "", time.Millisecond)
	id, err := srv.Schedule("f")
	if err != nil {
		t.Fatal(err)
	}
	eventuallyDone(t, srv)
	var left struct{ ID int64 }
	if err := c.getJSON(ctx, "queueItem", "queue/item/"+itoaID(id)+"/api/json", &left); err != nil || left.ID != id {
		t.Fatalf("left item before the restart: %+v, %v", left, err)
	}

	srv.Restart(time.Hour, 0) // down until Close
	var he *HTTPError
	_, err = c.Queue(ctx)
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrStarting) || !errors.As(err, &he) || he.Status != 0 {
		t.Errorf("Queue while Jenkins is down: %v, want ErrUnavailable without a status", err)
	}

	srv2 := newEmulator(t)
	c2, _ := emuClient(t, srv2)
	other := newClient(t, Config{URL: srv2.URL(), User: "nobody", Token: "wrong", Timeout: 2 * time.Second, RetryMax: 1,
		RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond})
	up2 := srv2.Restart(0, time.Hour)
	for name, cl := range map[string]*Client{"provisioner": c2, "wrong credentials": other} {
		_, err := cl.Computers(ctx)
		if !errors.Is(err, ErrStarting) || !errors.Is(err, ErrUnavailable) || !errors.As(err, &he) || he.Status != http.StatusServiceUnavailable {
			t.Errorf("%s: Computers while Jenkins starts: %v, want ErrStarting (and ErrUnavailable) with 503", name, err)
		}
		if !strings.Contains(err.Error(), "(Jenkins is starting up)") {
			t.Errorf("%s: error %q does not say Jenkins is starting", name, err)
		}
	}
	select {
	case <-up2:
		t.Fatal("up while starting")
	default:
	}

	srv3 := builtInEmulator(t)
	c3, _ := emuClient(t, srv3)
	srv3.CreateFreestyleJob("f", "", time.Millisecond)
	id3, _ := srv3.Schedule("f")
	eventuallyDone(t, srv3)
	<-srv3.Restart(0, 0)
	err = c3.getJSON(ctx, "queueItem", "queue/item/"+itoaID(id3)+"/api/json", &left)
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("left item after the restart: %v, want ErrNotFound", err)
	}
	if _, err := c3.Queue(ctx); err != nil {
		t.Errorf("Queue once Jenkins is up: %v", err)
	}
}

// An answer that never comes in time is ErrUnavailable, not a hang.
func TestClientTimeoutAgainstEmulator(t *testing.T) {
	srv := newEmulator(t)
	srv.Faults().SetLatency(time.Minute)
	c := newClient(t, Config{URL: srv.URL(), User: emuUser, Token: emuToken, Timeout: 50 * time.Millisecond, RetryMax: 1,
		RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond})
	_, err := c.Queue(context.Background())
	var he *HTTPError
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrStarting) || !errors.As(err, &he) || he.Status != 0 {
		t.Errorf("Queue with answers a minute late: %v, want ErrUnavailable without a status", err)
	}
}

// Only Jenkins' own start-up and restart pages are ErrStarting; other 503s stay ErrUnavailable.
func TestKindForResponse(t *testing.T) {
	loading := `<!DOCTYPE html><html><head><title>Starting Jenkins</title></head><body><div class="app-jenkins-booting">` +
		`<h1 class="loading">Jenkins is getting ready to work</h1></div></body></html>`
	restarting := `<!DOCTYPE html><html><head><title>Restarting Jenkins</title></head><body><div class="app-jenkins-booting">` +
		`Jenkins is restarting</div></body></html>`
	html := http.Header{"Content-Type": {"text/html;charset=UTF-8"}}
	withVersion := http.Header{"Content-Type": {"text/html;charset=UTF-8"}, "X-Jenkins": {"2.492.3"}}
	for _, tt := range []struct {
		name   string
		status int
		header http.Header
		body   string
		want   error
	}{
		{"HudsonIsLoading", 503, html, loading, ErrStarting},
		{"HudsonIsRestarting with X-Jenkins", 503, withVersion, restarting, ErrStarting},
		{"older start page, title only", 503, html, "<html><head><title>Starting Jenkins</title></head></html>", ErrStarting},
		{"title only but X-Jenkins set", 503, withVersion, "<html><head><title>Starting Jenkins</title></head></html>", ErrUnavailable},
		{"nginx 503", 503, html, "<html><head><title>503 Service Temporarily Unavailable</title></head></html>", ErrUnavailable},
		{"empty 503", 503, http.Header{}, "", ErrUnavailable},
		{"start page with another status", 500, html, loading, ErrUnavailable},
		{"404", 404, html, loading, ErrNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := kindForResponse(tt.status, tt.header, []byte(tt.body)); got != tt.want {
				t.Errorf("kindForResponse = %v, want %v", got, tt.want)
			}
		})
	}
}

func itoaID(id int64) string { return strconv.FormatInt(id, 10) }

// builtInEmulator is an emulator whose built-in node has an executor, so a job runs without agents.
func builtInEmulator(t *testing.T) *jenkinstest.Server {
	t.Helper()
	srv := jenkinstest.New(jenkinstest.Options{BuiltInExecutors: 1})
	t.Cleanup(srv.Close)
	srv.AddUser(emuUser, emuToken, jenkinstest.OverallAdminister)
	return srv
}

// eventuallyDone waits until every build of srv is done.
func eventuallyDone(t *testing.T, srv *jenkinstest.Server) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		bs := srv.Builds()
		done := len(bs) > 0
		for _, b := range bs {
			done = done && b.Done
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("builds not done: %+v", bs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// After a restart, a pipeline node block waiting for its agent is demand for that node by name:
// the "‘NODE’ is offline" why names it, the task is the block ("part of J #N").
func TestResumedNodeBlockIsNodeDemand(t *testing.T) {
	srv := newEmulator(t)
	c, _ := emuClient(t, srv)
	ctx := context.Background()
	spec := NodeSpec{Name: "maven-x7k2p", Description: ourMark + " test", Labels: []string{"maven"}, WebSocket: true}
	if err := c.CreateNode(ctx, spec); err != nil {
		t.Fatal(err)
	}
	secret, err := c.NodeSecret(ctx, spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := jenkinstest.ConnectAgent(ctx, srv.URL(), spec.Name, secret)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	srv.CreatePipelineJob("p", "maven", time.Hour)
	if _, err := srv.Schedule("p"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(srv.Builds()) == 0 || srv.Builds()[0].Node != spec.Name {
		if time.Now().After(deadline) {
			t.Fatalf("node block never ran: %+v", srv.Builds())
		}
		time.Sleep(5 * time.Millisecond)
	}
	<-srv.Restart(0, 0)
	// The restart cut the client's kept-alive connections; GETs are retried on a fresh one.
	demand, err := c.Queue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	resumed := srv.Builds()[0].ResumedQueueID
	if len(demand) != 1 {
		t.Fatalf("demand %+v, want the resumed block only", demand)
	}
	got := demand[0]
	got.InQueueSince = time.Time{}
	want := Demand{QueueID: resumed, Node: spec.Name, Kind: KindPipeline, TaskName: "part of p #1",
		TaskURL: srv.URL() + "job/p/1/", Stuck: true, Why: "‘maven-x7k2p’ is offline"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("demand after the restart (-want +got):\n%s", diff)
	}
}
