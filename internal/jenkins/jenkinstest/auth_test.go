package jenkinstest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestAuthentication(t *testing.T) {
	s := newTestServer(t, Options{Version: "2.999.1"})
	s.AddUser("reader", "reader-token", OverallRead)
	s.AddUser("nobody", "nobody-token")
	tests := []struct {
		name, user, secret, path string
		wantStatus               int
		wantHeaders              map[string]string
		wantBody                 string
	}{
		{"token user reads", "admin", "admin-token", "api/json", 200, map[string]string{"X-Jenkins": "2.999.1"}, `"_class":"hudson.model.Hudson"`},
		{"wrong token", "admin", "nope", "api/json", 401,
			map[string]string{"WWW-Authenticate": `Basic realm="Jenkins"`, "X-Jenkins": "2.999.1"}, "Invalid password/token for user: admin"},
		{"unknown user", "ghost", "x", "queue/api/json", 401, map[string]string{"X-Jenkins": "2.999.1"}, "Invalid password/token for user: ghost"},
		{"anonymous", "", "", "api/json", 403,
			map[string]string{"X-You-Are-Authenticated-As": "anonymous", "X-Jenkins": "2.999.1"}, "Authentication required"},
		{"anonymous crumb", "", "", "crumbIssuer/api/json", 403, map[string]string{"X-You-Are-Authenticated-As": "anonymous"}, "Authentication required"},
		{"user without Overall/Read", "nobody", "nobody-token", "computer/api/json", 403,
			map[string]string{"X-You-Are-Authenticated-As": "nobody", "X-Required-Permission": "hudson.model.Hudson.Read"},
			"nobody is missing the Overall/Read permission"},
		{"reader lacks Agent/Connect for the jnlp", "reader", "reader-token", "computer/n1/jenkins-agent.jnlp", 403,
			map[string]string{"X-Required-Permission": "hudson.model.Computer.Connect"}, "reader is missing the Agent/Connect permission"},
		{"not found is HTML", "admin", "admin-token", "no/such/thing", 404, map[string]string{"X-Jenkins": "2.999.1", "Content-Type": "text/html;charset=utf-8"}, "Not Found"},
	}
	admin := newClient(t, s, "admin", "admin-token")
	createNode(t, admin, "n1", "linux", "EXCLUSIVE", false).mustStatus(t, http.StatusFound)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newClient(t, s, tt.user, tt.secret).get(tt.path)
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d\n%s", r.status, tt.wantStatus, r.body)
			}
			for k, want := range tt.wantHeaders {
				if got := r.header.Get(k); got != want {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			if !strings.Contains(string(r.body), tt.wantBody) {
				t.Errorf("body lacks %q:\n%s", tt.wantBody, r.body)
			}
			if r.status >= 400 && strings.HasPrefix(strings.TrimSpace(string(r.body)), "{") {
				t.Errorf("error answered with JSON, Jenkins answers HTML:\n%s", r.body)
			}
		})
	}
}

func TestPermissions(t *testing.T) {
	s := newTestServer(t, Options{})
	s.AddUser("reader", "t", OverallRead)
	s.AddUser("creator", "t", OverallRead, AgentCreate)
	s.AddUser("deleter", "t", OverallRead, AgentDelete)
	s.AddUser("toggler", "t", OverallRead, AgentDisconnect)
	s.AddUser("builder", "t", OverallRead, JobRead)
	admin := newClient(t, s, "admin", "admin-token")
	createNode(t, admin, "n1", "linux", "EXCLUSIVE", false).mustStatus(t, http.StatusFound)
	s.CreateFreestyleJob("j", "", time.Second)

	tests := []struct {
		user, method, path string
		wantStatus         int
		wantMissing        Permission // "" when allowed
	}{
		{"reader", "POST", "computer/doCreateItem", 403, AgentCreate},
		{"reader", "POST", "computer/n1/doDelete", 403, AgentDelete},
		{"reader", "POST", "computer/n1/toggleOffline", 403, AgentDisconnect},
		{"reader", "POST", "computer/n1/changeOfflineCause", 403, AgentDisconnect},
		{"toggler", "POST", "computer/n1/toggleOffline", 302, ""},
		{"toggler", "POST", "computer/n1/toggleOffline", 403, AgentConnect}, // back online needs Connect
		{"reader", "GET", "job/j/api/json", 404, ""},                        // jobs a user cannot read are hidden
		{"builder", "POST", "job/j/build", 403, JobBuild},
		{"deleter", "POST", "computer/n1/doDelete", 302, ""},
	}
	for _, tt := range tests {
		c := newClient(t, s, tt.user, "t")
		r := c.do(tt.method, tt.path, url.Values{"name": {"x"}})
		if r.status != tt.wantStatus {
			t.Errorf("%s %s %s: status %d, want %d\n%s", tt.user, tt.method, tt.path, r.status, tt.wantStatus, r.body)
			continue
		}
		if tt.wantMissing != "" {
			want := tt.user + " is missing the " + string(tt.wantMissing) + " permission"
			if !strings.Contains(string(r.body), want) {
				t.Errorf("%s %s: body lacks %q", tt.user, tt.path, want)
			}
			if got, want := r.header.Get("X-Required-Permission"), javaName[tt.wantMissing]; got != want {
				t.Errorf("%s %s: X-Required-Permission %q, want %q", tt.user, tt.path, got, want)
			}
		}
	}
}

// TestCrumbFlow: password users need the crumb and the session it came from; token users none.
func TestCrumbFlow(t *testing.T) {
	s := newTestServer(t, Options{})
	s.AddPasswordUser("alice", "secret", OverallAdminister)
	s.CreateFreestyleJob("j", "", time.Second)

	t.Run("token user needs no crumb", func(t *testing.T) {
		newClient(t, s, "admin", "admin-token").post("job/j/build", nil).mustStatus(t, http.StatusCreated)
	})
	t.Run("password user without crumb", func(t *testing.T) {
		r := newClient(t, s, "alice", "secret").post("job/j/build", nil).mustStatus(t, http.StatusForbidden)
		if !strings.Contains(string(r.body), "No valid crumb was included in the request") {
			t.Errorf("body:\n%s", r.body)
		}
	})
	t.Run("password user with crumb and session", func(t *testing.T) {
		c := newClient(t, s, "alice", "secret")
		r := c.get("crumbIssuer/api/json").mustStatus(t, http.StatusOK)
		m := r.json(t)
		if m["crumbRequestField"] != "Jenkins-Crumb" || len(m["crumb"].(string)) != 64 {
			t.Fatalf("crumb answer %v", m)
		}
		if !strings.HasPrefix(r.header.Get("Set-Cookie"), "JSESSIONID.") {
			t.Errorf("Set-Cookie = %q, want a JSESSIONID.* session cookie", r.header.Get("Set-Cookie"))
		}
		c.header["Jenkins-Crumb"] = m["crumb"].(string)
		c.post("job/j/build", nil).mustStatus(t, http.StatusCreated)

		// The same crumb without the session cookie is refused.
		other := newClient(t, s, "alice", "secret")
		other.header["Jenkins-Crumb"] = m["crumb"].(string)
		other.post("job/j/build", nil).mustStatus(t, http.StatusForbidden)
	})
	t.Run("crumb as form field", func(t *testing.T) {
		c := newClient(t, s, "alice", "secret")
		crumb := c.get("crumbIssuer/api/json").json(t)["crumb"].(string)
		c.post("job/j/build", url.Values{"Jenkins-Crumb": {crumb}}).mustStatus(t, http.StatusCreated)
	})
}

func TestRequirePOST(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, "admin", "admin-token")
	createNode(t, c, "n1", "", "NORMAL", false).mustStatus(t, http.StatusFound)
	r := c.get("computer/n1/doDelete")
	if diff := cmp.Diff(http.StatusMethodNotAllowed, r.status); diff != "" {
		t.Errorf("GET doDelete status (-want +got):\n%s", diff)
	}
	if len(s.Nodes()) != 1 {
		t.Errorf("a GET deleted the node")
	}
}
