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

// outcome is what one request saw: a status, or "reset".
func outcome(t *testing.T, s *Server, path string) (string, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, s.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("admin", "admin-token")
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "EOF") {
			return "reset", nil, ""
		}
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body) // a short body still has a status worth checking
	return http.StatusText(resp.StatusCode), resp.Header, string(b)
}

func TestFaultsDeterministic(t *testing.T) {
	run := func(seed uint64) []string {
		s := newTestServer(t, Options{})
		s.Faults().Seed(seed)
		s.Faults().SetErrorRate(0.3)
		s.Faults().SetResetRate(0.2)
		var got []string
		for i := 0; i < 40; i++ {
			o, _, _ := outcome(t, s, "queue/api/json")
			got = append(got, o)
		}
		return got
	}
	a, b, c := run(7), run(7), run(8)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("same seed, different faults (-first +second):\n%s", diff)
	}
	if cmp.Equal(a, c) {
		t.Errorf("different seeds gave identical fault sequences %v", a)
	}
	kinds := map[string]int{}
	for _, o := range a {
		kinds[o]++
	}
	for _, want := range []string{"OK", "reset"} {
		if kinds[want] == 0 {
			t.Errorf("no %q among %v", want, kinds)
		}
	}
	if kinds["Internal Server Error"]+kinds["Bad Gateway"]+kinds["Service Unavailable"] == 0 {
		t.Errorf("no 5xx among %v", kinds)
	}
}

func TestFaultPages(t *testing.T) {
	for _, tt := range []struct {
		status   int
		wantText string
		wantBody string
	}{
		{500, "Internal Server Error", "Oops!"},
		{502, "Bad Gateway", "502 Bad Gateway"},
		{503, "Service Unavailable", "getting ready to work"},
	} {
		s := newTestServer(t, Options{Version: "2.1.1"})
		s.Faults().SetErrorRate(1, tt.status)
		got, h, body := outcome(t, s, "computer/api/json")
		if got != tt.wantText {
			t.Errorf("status %s, want %s", got, tt.wantText)
		}
		if !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(body, tt.wantBody) {
			t.Errorf("%d: Content-Type %q, body lacks %q:\n%s", tt.status, h.Get("Content-Type"), tt.wantBody, body)
		}
		// HudsonIsLoading's page comes before Jenkins exists, so without X-Jenkins.
		wantVersion := "2.1.1"
		if tt.status == http.StatusServiceUnavailable {
			wantVersion = ""
		}
		if got := h.Get("X-Jenkins"); got != wantVersion {
			t.Errorf("%d: X-Jenkins %q, want %q", tt.status, got, wantVersion)
		}
		if n := s.Faults().Counts().Errors; n != 1 {
			t.Errorf("Errors count = %d, want 1", n)
		}
	}
}

func TestFaultOutageLatencyAndScope(t *testing.T) {
	s := newTestServer(t, Options{})
	f := s.Faults()
	f.OutageFor(150 * time.Millisecond)
	if got, _, _ := outcome(t, s, "api/json"); got != "Service Unavailable" {
		t.Errorf("during the outage: %s", got)
	}
	time.Sleep(200 * time.Millisecond)
	if got, _, _ := outcome(t, s, "api/json"); got != "OK" {
		t.Errorf("after the outage: %s", got)
	}

	f.SetLatency(100 * time.Millisecond)
	start := time.Now()
	outcome(t, s, "api/json")
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("request took %v with 100ms latency", d)
	}
	f.Clear()

	f.SetErrorRate(1)
	f.Only("queue")
	if got, _, _ := outcome(t, s, "computer/api/json"); got != "OK" {
		t.Errorf("computers hit by a queue-only fault: %s", got)
	}
	if got, _, _ := outcome(t, s, "queue/api/json"); got == "OK" {
		t.Errorf("queue not hit by a queue-only fault")
	}
}

func TestStats(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, "admin", "admin-token")
	s.ResetStats()
	for i := 0; i < 3; i++ {
		c.get("queue/api/json")
	}
	c.get("computer/api/json?tree=computer[displayName]")
	c.get("nowhere")
	st := s.Stats()
	if diff := cmp.Diff(map[string]int64{"queue": 3, "computers": 1, "other": 1},
		map[string]int64{"queue": st.Requests("queue"), "computers": st.Requests("computers"), "other": st.Requests("other")}); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if st.Total() != 5 {
		t.Errorf("Total = %d, want 5", st.Total())
	}
	body := c.get("queue/api/json").body
	if got := s.Stats().Endpoints["queue"].Bytes; got != 4*int64(len(body)) {
		t.Errorf("queue bytes = %d, want 4 × %d", got, len(body))
	}
	if got := st.Endpoints["other"].Status[404]; got != 1 {
		t.Errorf("404s recorded = %d", got)
	}
}
