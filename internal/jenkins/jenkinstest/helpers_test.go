package jenkinstest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jenkins-agent-provisioner/provisioner/internal/waitfor"
)

// testClient is a bare HTTP client that does not follow redirects, so tests see Jenkins' own
// status codes and Location headers.
type testClient struct {
	t      *testing.T
	base   string
	user   string
	secret string
	lang   string
	hc     *http.Client
	header map[string]string
}

func newTestServer(t *testing.T, opts Options) *Server {
	t.Helper()
	s := New(opts)
	t.Cleanup(s.Close)
	s.AddUser("admin", "admin-token", OverallAdminister)
	return s
}

func newClient(t *testing.T, s *Server, user, secret string) *testClient {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &testClient{t: t, base: s.URL(), user: user, secret: secret, lang: "en", header: map[string]string{},
		hc: &http.Client{Jar: jar, Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type testResponse struct {
	status int
	header http.Header
	body   []byte
}

func (r *testResponse) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v\n%s", err, r.body)
	}
	return m
}

func (c *testClient) do(method, path string, form url.Values) *testResponse {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(context.Background(), method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.secret)
	}
	if c.lang != "" {
		req.Header.Set("Accept-Language", c.lang)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return &testResponse{status: resp.StatusCode, header: resp.Header, body: b}
}

func (c *testClient) get(path string) *testResponse { return c.do(http.MethodGet, path, nil) }

func (c *testClient) post(path string, form url.Values) *testResponse {
	if form == nil {
		form = url.Values{}
	}
	return c.do(http.MethodPost, path, form)
}

// mustStatus fails unless the response has the status.
func (r *testResponse) mustStatus(t *testing.T, want int) *testResponse {
	t.Helper()
	if r.status != want {
		t.Fatalf("status = %d, want %d; body:\n%s", r.status, want, r.body)
	}
	return r
}

// createNode posts the form the provisioner's client sends.
func createNode(t *testing.T, c *testClient, name, labels, mode string, webSocket bool) *testResponse {
	t.Helper()
	j, err := json.Marshal(map[string]any{
		"name": name, "nodeDescription": "[jenkins-agent-provisioner] test", "numExecutors": 1,
		"remoteFS": "/home/jenkins/agent", "labelString": labels, "mode": mode,
		"retentionStrategy": map[string]any{"stapler-class": "hudson.slaves.RetentionStrategy$Always"},
		"nodeProperties":    map[string]any{"stapler-class-bag": "true"},
		"launcher":          map[string]any{"stapler-class": "hudson.slaves.JNLPLauncher", "webSocket": webSocket},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c.post("computer/doCreateItem", url.Values{"name": {name}, "type": {"hudson.slaves.DumbSlave"}, "json": {string(j)}})
}

// connect connects a node's agent with the secret from its jnlp file.
func connect(t *testing.T, s *Server, name string) *AgentSession {
	t.Helper()
	var secret string
	for _, n := range s.Nodes() {
		if n.Name == name {
			secret = n.Secret
		}
	}
	a, err := ConnectAgent(context.Background(), s.URL(), name, secret)
	if err != nil {
		t.Fatalf("connecting %s: %v", name, err)
	}
	t.Cleanup(a.Close)
	return a
}

// eventually polls cond every 5 ms until it holds or 20 s pass (the scale tests' thousand builds
// need that long on a loaded machine; the others hold within milliseconds).
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	waitfor.Eventually(tb, 20*time.Second, 5*time.Millisecond, what, func() (bool, string) { return cond(), "not yet" })
}

// queueWhys returns id → why of the queue's items, in the answer's order.
func queueWhys(t *testing.T, c *testClient) ([]int64, map[int64]string) {
	t.Helper()
	m := c.get("queue/api/json?tree=items[id,why]").mustStatus(t, http.StatusOK).json(t)
	var ids []int64
	whys := map[int64]string{}
	for _, it := range m["items"].([]any) {
		o := it.(map[string]any)
		id := int64(o["id"].(float64))
		ids = append(ids, id)
		whys[id], _ = o["why"].(string)
	}
	return ids, whys
}
