package jenkins

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// These tests put precise server behaviours (a reset after the request was read, a 401 page, a
// crumb that expires) in front of the client with httptest; emulator_test.go runs the client
// against the Jenkins emulator.

const emptyQueue = `{"_class":"hudson.model.Queue","discoverableItems":[],"items":[]}`

func testConfig(url string) Config {
	return Config{
		URL: url, User: "bob", Token: "11aa22bb33cc44dd55ee66ff77889900aa",
		Timeout: 2 * time.Second, RetryMax: 3, RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond,
	}
}

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// attempts counts requests per path at the server.
type attempts struct {
	mu sync.Mutex
	n  map[string]int
}

func (a *attempts) add(r *http.Request) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n == nil {
		a.n = map[string]int{}
	}
	a.n[r.URL.Path]++
	return a.n[r.URL.Path]
}

func (a *attempts) get(path string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n[path]
}

// resetConn drops the connection without an answer, after the request was read.
func resetConn(t *testing.T, w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // RST, not FIN
	}
	_ = conn.Close()
}

func TestEveryRequestSendsEnglishAndToken(t *testing.T) {
	var mu sync.Mutex
	var seen []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		switch r.URL.Path {
		case "/queue/api/json":
			fmt.Fprint(w, emptyQueue)
		case "/computer/api/json":
			fmt.Fprint(w, `{"computer":[]}`)
		case "/computer/doCreateItem":
			w.Header().Set("Location", "/computer/")
			w.WriteHeader(http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c := newClient(t, testConfig(srv.URL))
	ctx := context.Background()
	if _, err := c.Queue(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Computers(ctx); err != nil {
		t.Fatal(err)
	}
	// A POST answered with Jenkins' usual 302 is success (gojenkins #342), and with a token no
	// crumb is fetched.
	if err := c.CreateNode(ctx, NodeSpec{Name: "a-1", Description: "d"}); err != nil {
		t.Fatalf("CreateNode answered 302: %v", err)
	}
	if len(seen) != 3 {
		t.Fatalf("%d requests, want 3 (no crumb request with an API token)", len(seen))
	}
	for i, h := range seen {
		if got := h.Get("Accept-Language"); got != "en" {
			t.Errorf("request %d: Accept-Language %q, want en", i, got)
		}
		r := &http.Request{Header: h}
		user, pass, ok := r.BasicAuth()
		if !ok || user != "bob" || pass != "11aa22bb33cc44dd55ee66ff77889900aa" {
			t.Errorf("request %d: basic auth %q/%q/%v", i, user, pass, ok)
		}
		if h.Get("Jenkins-Crumb") != "" {
			t.Errorf("request %d sent a crumb with token auth", i)
		}
	}
}

func TestReadsRetryOn5xxAndResets(t *testing.T) {
	tests := []struct {
		name string
		fail func(t *testing.T, w http.ResponseWriter)
	}{
		{"502 from a proxy", func(t *testing.T, w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprint(w, "<html><head><title>502 Bad Gateway</title></head></html>")
		}},
		{"500 Oops", func(t *testing.T, w http.ResponseWriter) { w.WriteHeader(http.StatusInternalServerError) }},
		{"connection reset", resetConn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a attempts
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if a.add(r) <= 2 {
					tt.fail(t, w)
					return
				}
				fmt.Fprint(w, emptyQueue)
			}))
			defer srv.Close()
			var observed []int
			cfg := testConfig(srv.URL)
			cfg.Observe = func(endpoint string, status int, _ time.Duration) {
				if endpoint != "queue" {
					t.Errorf("endpoint %q, want queue", endpoint)
				}
				observed = append(observed, status)
			}
			c := newClient(t, cfg)
			got, err := c.Queue(context.Background())
			if err != nil {
				t.Fatalf("Queue after two failures: %v", err)
			}
			if len(got) != 0 || a.get("/queue/api/json") != 3 {
				t.Errorf("demand %v after %d attempts, want none after 3", got, a.get("/queue/api/json"))
			}
			if len(observed) != 3 || observed[2] != http.StatusOK {
				t.Errorf("Observe saw %v, want 3 attempts ending in 200", observed)
			}
		})
	}
}

func TestCreateNodeIsNotRepeatedOnceItMayHaveBeenApplied(t *testing.T) {
	tests := []struct {
		name string
		fail func(t *testing.T, w http.ResponseWriter)
	}{
		{"500", func(t *testing.T, w http.ResponseWriter) { w.WriteHeader(http.StatusInternalServerError) }},
		{"502", func(t *testing.T, w http.ResponseWriter) { w.WriteHeader(http.StatusBadGateway) }},
		{"503", func(t *testing.T, w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) }},
		{"reset after the request was read", resetConn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a attempts
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				a.add(r)
				_, _ = io.ReadAll(r.Body)
				tt.fail(t, w)
			}))
			defer srv.Close()
			c := newClient(t, testConfig(srv.URL))
			err := c.CreateNode(context.Background(), NodeSpec{Name: "a-1", Description: "d"})
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("CreateNode error = %v, want ErrUnavailable", err)
			}
			if n := a.get("/computer/doCreateItem"); n != 1 {
				t.Errorf("doCreateItem sent %d times, want 1", n)
			}
		})
	}
	// Idempotent writes are repeated: deleting twice is harmless.
	t.Run("delete is repeated", func(t *testing.T) {
		var a attempts
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if a.add(r) == 1 {
				resetConn(t, w)
				return
			}
			w.WriteHeader(http.StatusFound)
		}))
		defer srv.Close()
		c := newClient(t, testConfig(srv.URL))
		if err := c.DeleteNode(context.Background(), "a-1"); err != nil {
			t.Fatalf("DeleteNode: %v", err)
		}
		if n := a.get("/computer/a-1/doDelete"); n != 2 {
			t.Errorf("doDelete sent %d times, want 2", n)
		}
	})
}

func TestCreateNodeRetriesWhenNeverSent(t *testing.T) {
	// Nothing listens: every dial fails, so the POST never reached anyone and may be repeated.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	var statuses []int
	cfg := testConfig("http://" + addr + "/")
	cfg.Observe = func(_ string, status int, _ time.Duration) { statuses = append(statuses, status) }
	c := newClient(t, cfg)
	err = c.CreateNode(context.Background(), NodeSpec{Name: "a-1", Description: "d"})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("error = %v, want ErrUnavailable", err)
	}
	if diff := cmp.Diff([]int{0, 0, 0, 0}, statuses); diff != "" {
		t.Errorf("attempts (-want +got):\n%s", diff)
	}
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != 0 || he.Endpoint != "createNode" {
		t.Errorf("error %#v, want an HTTPError for createNode without status", err)
	}
}

func TestRetryAfter(t *testing.T) {
	t.Run("honoured", func(t *testing.T) {
		var a attempts
		var first time.Time
		var gap time.Duration
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch a.add(r) {
			case 1:
				first = time.Now()
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
			default:
				gap = time.Since(first)
				fmt.Fprint(w, emptyQueue)
			}
		}))
		defer srv.Close()
		c := newClient(t, testConfig(srv.URL))
		if _, err := c.Queue(context.Background()); err != nil {
			t.Fatal(err)
		}
		if gap < 900*time.Millisecond {
			t.Errorf("retried %s after a Retry-After of 1s", gap)
		}
	})
	t.Run("too long fails at once", func(t *testing.T) {
		var a attempts
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			a.add(r)
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusServiceUnavailable)
		}))
		defer srv.Close()
		c := newClient(t, testConfig(srv.URL))
		start := time.Now()
		_, err := c.Queue(context.Background())
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "retry after 1h0m0s") {
			t.Errorf("error = %v, want ErrUnavailable naming the Retry-After", err)
		}
		if a.get("/queue/api/json") != 1 || time.Since(start) > time.Second {
			t.Errorf("%d attempts in %s, want 1 at once", a.get("/queue/api/json"), time.Since(start))
		}
	})
}

// Jetty's page for sendError(401), as Jenkins' BasicHeaderProcessor answers a bad token.
const jetty401 = `<html>
<head>
<meta http-equiv="Content-Type" content="text/html;charset=utf-8"/>
<title>Error 401 Invalid password/token for user: bob</title>
</head>
<body><h2>HTTP ERROR 401 Invalid password/token for user: bob</h2>
<table><tr><th>URI:</th><td>/queue/api/json</td></tr></table>
</body>
</html>`

// Jenkins' "Oops!" page for an uncaught exception.
const oops500 = `<!DOCTYPE html><html><head><title>Jenkins [Jenkins]</title></head><body>
<h1>Oops!</h1><div id="error-description"><h2>A problem occurred while processing the request</h2>
<p>Logging ID=8f2</p></div><pre>java.lang.NullPointerException
	at hudson.model.Queue.getItems(Queue.java:1)</pre></body></html>`

func TestErrorsNameTheCause(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		kind       error
		want       HTTPError // fields compared: Status, Title, Permission, User
		wantInText []string
	}{
		{"401 bad token", 401, map[string]string{"WWW-Authenticate": `Basic realm="Jenkins"`}, jetty401, ErrUnauthorized,
			HTTPError{Status: 401, Title: "Error 401 Invalid password/token for user: bob"},
			[]string{"401 Unauthorized", "Invalid password/token for user: bob", "check the user name and API token"}},
		{"500 Oops page", 500, nil, oops500, ErrUnavailable,
			HTTPError{Status: 500, Title: "Jenkins [Jenkins]"},
			[]string{"500 Internal Server Error", "Jenkins [Jenkins]", "A problem occurred while processing the request"}},
		{"403 missing permission", 403, map[string]string{"X-You-Are-Authenticated-As": "bob", "X-Required-Permission": "hudson.model.Computer.Create"},
			`<html><head><title>Access Denied [Jenkins]</title></head><body><h1>Access Denied</h1><p>bob is missing the Agent/Create permission</p></body></html>`,
			ErrForbidden, HTTPError{Status: 403, Title: "Access Denied [Jenkins]", Permission: "Agent/Create", User: "bob"},
			[]string{`user "bob" lacks permission Agent/Create`}},
		{"403 anonymous", 403, map[string]string{"X-You-Are-Authenticated-As": "anonymous", "X-Required-Permission": "hudson.model.Hudson.Read"},
			"<html><body>Authentication required</body></html>", ErrForbidden,
			HTTPError{Status: 403, Permission: "hudson.model.Hudson.Read", User: "anonymous"},
			[]string{"Authentication required", "treated the request as anonymous"}},
		{"404", 404, nil, "<html><head><title>Error 404 Not Found</title></head></html>", ErrNotFound,
			HTTPError{Status: 404, Title: "Error 404 Not Found"}, []string{"404 Not Found"}},
		{"login page where JSON was expected", 200, map[string]string{"Content-Type": "text/html;charset=utf-8"},
			"<html><head><title>Sign in [Jenkins]</title></head><body><form>login</form></body></html>", ErrUnexpectedResponse,
			HTTPError{Status: 200, Title: "Sign in [Jenkins]"}, []string{"expected JSON, got text/html", "Sign in [Jenkins]"}},
		{"truncated JSON", 200, map[string]string{"Content-Type": "application/json"}, `{"items":[{"id":1,`, ErrUnexpectedResponse,
			HTTPError{Status: 200}, []string{"decode JSON"}},
		{"redirect to login", 302, map[string]string{"Location": "/login?from=%2Fqueue%2Fapi%2Fjson"}, "", ErrUnauthorized,
			HTTPError{Status: 302}, []string{"login page"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				if w.Header().Get("Content-Type") == "" {
					w.Header().Set("Content-Type", "text/html;charset=utf-8")
				}
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			}))
			defer srv.Close()
			c := newClient(t, testConfig(srv.URL))
			_, err := c.Queue(context.Background())
			if !errors.Is(err, tt.kind) {
				t.Fatalf("error = %v, want %v", err, tt.kind)
			}
			var he *HTTPError
			if !errors.As(err, &he) {
				t.Fatalf("error %T is not an *HTTPError", err)
			}
			got := HTTPError{Status: he.Status, Title: he.Title, Permission: he.Permission, User: he.User}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(HTTPError{})); diff != "" {
				t.Errorf("HTTPError (-want +got):\n%s", diff)
			}
			if he.Endpoint != "queue" || he.Method != http.MethodGet {
				t.Errorf("endpoint/method %q/%q", he.Endpoint, he.Method)
			}
			for _, s := range tt.wantInText {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err.Error(), s)
				}
			}
			if strings.Contains(err.Error(), "11aa22bb33cc44dd55ee66ff77889900aa") {
				t.Errorf("error text contains the token")
			}
		})
	}
}

func TestOutageIsATypedErrorNotAHang(t *testing.T) {
	t.Run("nothing listening", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		c := newClient(t, testConfig("http://"+addr+"/"))
		_, err = c.Computers(context.Background())
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("error = %v, want ErrUnavailable", err)
		}
	})
	t.Run("answers never come", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(release)
		cfg := testConfig(srv.URL)
		cfg.Timeout, cfg.RetryMax = 200*time.Millisecond, 1
		c := newClient(t, cfg)
		start := time.Now()
		_, err := c.Queue(context.Background())
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("error = %v, want ErrUnavailable", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("took %s with 2 attempts of 200ms", d)
		}
	})
	t.Run("the caller's deadline wins", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(release)
		c := newClient(t, testConfig(srv.URL))
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.Queue(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error = %v, want context.DeadlineExceeded", err)
		}
		if errors.Is(err, ErrUnavailable) {
			t.Errorf("a caller's deadline reported as Jenkins unavailable: %v", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("took %s after a 100ms deadline", d)
		}
	})
}

// fakeCSRF is Jenkins' crumb protection as a password-authenticated client meets it: the crumb is
// bound to the session, and a POST without both is 403.
type fakeCSRF struct {
	mu       sync.Mutex
	session  int
	crumbs   map[string]string // session cookie → crumb
	issued   int
	rejected int
	expire   bool // drop all sessions once, as a restart does
	posts    int
}

func (f *fakeCSRF) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if u, p, ok := r.BasicAuth(); !ok || u != "alice" || p != "s3cret" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	switch r.URL.Path {
	case "/crumbIssuer/api/json":
		f.session++
		sid := fmt.Sprintf("s%d", f.session)
		f.crumbs[sid] = fmt.Sprintf("%064x", f.session)
		f.issued++
		http.SetCookie(w, &http.Cookie{Name: "JSESSIONID.abcd1234", Value: sid, Path: "/"})
		fmt.Fprintf(w, `{"_class":"hudson.security.csrf.DefaultCrumbIssuer","crumb":%q,"crumbRequestField":"Jenkins-Crumb"}`, f.crumbs[sid])
	default:
		if f.expire {
			f.crumbs, f.expire = map[string]string{}, false
		}
		ck, err := r.Cookie("JSESSIONID.abcd1234")
		if err != nil || f.crumbs[ck.Value] == "" || r.Header.Get("Jenkins-Crumb") != f.crumbs[ck.Value] {
			f.rejected++
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, "<html><head><title>Error 403 No valid crumb was included in the request</title></head></html>")
			return
		}
		f.posts++
		w.WriteHeader(http.StatusFound)
	}
}

func TestPasswordAuthUsesCrumbAndSession(t *testing.T) {
	f := &fakeCSRF{crumbs: map[string]string{}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := testConfig(srv.URL)
	cfg.User, cfg.Token, cfg.Password = "alice", "", "s3cret"
	core, logs := observer.New(zap.DebugLevel)
	cfg.Logger = zap.New(core)
	c := newClient(t, cfg)
	ctx := context.Background()
	for _, name := range []string{"a-1", "a-2"} {
		if err := c.DeleteNode(ctx, name); err != nil {
			t.Fatalf("DeleteNode(%s): %v", name, err)
		}
	}
	if f.issued != 1 || f.posts != 2 || f.rejected != 0 {
		t.Errorf("crumbs issued %d, posts %d, rejected %d; want 1, 2, 0", f.issued, f.posts, f.rejected)
	}
	// The session ends (Jenkins restarted): the rejected crumb is replaced and the POST repeated once.
	f.expire = true
	if err := c.SetTemporarilyOffline(ctx, "a-3", "busy"); err != nil {
		t.Fatalf("SetTemporarilyOffline after the session ended: %v", err)
	}
	if f.issued != 2 || f.posts != 3 || f.rejected != 1 {
		t.Errorf("crumbs issued %d, posts %d, rejected %d; want 2, 3, 1", f.issued, f.posts, f.rejected)
	}
	for _, e := range logs.All() {
		for _, v := range e.ContextMap() {
			if strings.Contains(fmt.Sprint(v), "s3cret") {
				t.Errorf("log %q carries the password", e.Message)
			}
		}
	}
}

func TestTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, emptyQueue)
	}))
	defer srv.Close()
	t.Run("verified by default", func(t *testing.T) {
		var n atomic.Int32
		cfg := testConfig(srv.URL)
		cfg.Observe = func(string, int, time.Duration) { n.Add(1) }
		c := newClient(t, cfg)
		_, err := c.Queue(context.Background())
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("error = %v, want a certificate error", err)
		}
		if n.Load() != 1 {
			t.Errorf("%d attempts: a certificate error is not retried", n.Load())
		}
	})
	t.Run("custom CA bundle", func(t *testing.T) {
		ca := filepath.Join(t.TempDir(), "ca.pem")
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
		if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := testConfig(srv.URL)
		cfg.CAFile = ca
		c := newClient(t, cfg)
		if _, err := c.Queue(context.Background()); err != nil {
			t.Errorf("Queue with the server's CA: %v", err)
		}
	})
	t.Run("bad bundle", func(t *testing.T) {
		ca := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(ca, []byte("not a certificate"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := testConfig(srv.URL)
		cfg.CAFile = ca
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
			t.Errorf("New with a bad bundle: %v", err)
		}
	})
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no URL", Config{}, "URL is required"},
		{"relative URL", Config{URL: "jenkins.example.com"}, "absolute http(s) URL"},
		{"credentials in URL", Config{URL: "https://bob:tok@jenkins.example.com/"}, "must not contain credentials"},
		{"token and password", Config{URL: "https://j/", User: "u", Token: "t", Password: "p"}, "either Token or Password"},
		{"token without user", Config{URL: "https://j/", Token: "t"}, "User is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New error = %v, want %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "tok@") {
				t.Errorf("error repeats the credentials: %v", err)
			}
		})
	}
}

func TestJobLabelExpressionRebasesAndCaches(t *testing.T) {
	var a attempts
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.add(r)
		switch {
		case r.URL.Path == "/ci/job/folder/job/app/api/json" && r.URL.Query().Get("tree") == "labelExpression":
			fmt.Fprint(w, `{"_class":"hudson.model.FreeStyleProject","labelExpression":"linux && docker"}`)
		case r.URL.Path == "/ci/job/any/api/json":
			fmt.Fprint(w, `{"_class":"hudson.model.FreeStyleProject","labelExpression":null}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c := newClient(t, testConfig(srv.URL+"/ci"))
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	ctx := context.Background()
	tests := []struct{ taskURL, want string }{
		// Jenkins' configured root URL is the public name; the client talks to the Service.
		{"https://jenkins.example.com/ci/job/folder/job/app/", "linux&&docker"},
		{srv.URL + "/ci/job/folder/job/app/", "linux&&docker"},
		{"job/any/", ""},
	}
	for _, tt := range tests {
		got, err := c.JobLabelExpression(ctx, tt.taskURL)
		if err != nil || got != tt.want {
			t.Errorf("JobLabelExpression(%q) = %q, %v; want %q", tt.taskURL, got, err, tt.want)
		}
	}
	if n := a.get("/ci/job/folder/job/app/api/json"); n != 1 {
		t.Errorf("job read %d times, want 1 (cached)", n)
	}
	now = now.Add(defaultJobLabelTTL + time.Second)
	if _, err := c.JobLabelExpression(ctx, "https://jenkins.example.com/ci/job/folder/job/app/"); err != nil {
		t.Fatal(err)
	}
	if n := a.get("/ci/job/folder/job/app/api/json"); n != 2 {
		t.Errorf("job read %d times after the TTL, want 2", n)
	}
	if _, err := c.JobLabelExpression(ctx, "https://jenkins.example.com/ci/view/all/"); err == nil {
		t.Errorf("a view URL was taken for a job")
	}
	// A pipeline placeholder's task URL is its run's: no label there.
	if _, err := c.JobLabelExpression(ctx, "https://jenkins.example.com/ci/job/pipe/12/"); err == nil {
		t.Errorf("a run URL was taken for a job")
	}
}

func TestPingThroughGojenkins(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Jenkins", "2.492.3")
		if u, _, _ := r.BasicAuth(); u != "bob" || r.Header.Get("Accept-Language") != "en" {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, jetty401)
			return
		}
		if r.URL.Path != "/api/json" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, `{"_class":"hudson.model.Hudson","mode":"EXCLUSIVE","nodeDescription":"the Jenkins controller's built-in node","jobs":[]}`)
	}))
	defer srv.Close()
	v, err := newClient(t, testConfig(srv.URL)).Ping(context.Background())
	if err != nil || v != "2.492.3" {
		t.Errorf("Ping = %q, %v; want 2.492.3", v, err)
	}
	cfg := testConfig(srv.URL)
	cfg.User = "mallory"
	_, err = newClient(t, cfg).Ping(context.Background())
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "Invalid password/token") {
		t.Errorf("Ping with a wrong user: %v, want ErrUnauthorized naming the cause", err)
	}
}
