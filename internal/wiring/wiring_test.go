package wiring

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins"
	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins/jenkinstest"
	"github.com/jenkins-agent-provisioner/provisioner/internal/lifecycle"
)

const (
	user  = "provisioner"
	token = "0123456789abcdef0123456789abcdef01"
)

// settings are for an app that is built but never run: the Kubernetes address is never dialled,
// since the controller's informers start only in Run.
func settings(t *testing.T, jenkinsURL, tok string) Settings {
	t.Helper()
	templates := filepath.Join(t.TempDir(), "templates.yaml")
	if err := os.WriteFile(templates, []byte("templates:\n  - name: maven\n    labels: [maven]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return Settings{
		Jenkins:   jenkins.Config{URL: jenkinsURL, User: user, Token: tok},
		Kube:      &rest.Config{Host: "http://127.0.0.1:1"},
		Templates: templates,
		Lifecycle: lifecycle.Config{Namespace: "agents", JenkinsURL: jenkinsURL},
	}
}

func emulator(t *testing.T) *jenkinstest.Server {
	t.Helper()
	j := jenkinstest.New(jenkinstest.Options{})
	t.Cleanup(j.Close)
	j.AddUser(user, token, jenkinstest.OverallAdminister)
	return j
}

// Wrong credentials stop the start with the client's typed error; an unreachable Jenkins does not.
func TestNewJenkinsAtStart(t *testing.T) {
	j := emulator(t)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	tests := []struct {
		name, url, token string
		wantErr          error // nil: New succeeds
	}{
		{"reachable, right token", j.URL(), token, nil},
		{"wrong token", j.URL(), "ffffffffffffffffffffffffffffffffff", jenkins.ErrUnauthorized},
		{"unreachable: the polls retry", closed.URL, token, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The unreachable case would retry until the ping's own timeout; the context ends it.
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			app, err := New(ctx, settings(t, tt.url, tt.token))
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("New: err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && (app.Jenkins == nil || app.Kube == nil || app.Templates == nil || app.Controller == nil) {
				t.Errorf("New left a part unbuilt: %+v", app)
			}
		})
	}
}

func TestNewNeedsKubeConfig(t *testing.T) {
	s := settings(t, emulator(t).URL(), token)
	s.Kube = nil
	if _, err := New(context.Background(), s); err == nil {
		t.Fatal("New without a Kubernetes configuration succeeded")
	}
}

func TestNewBadTemplates(t *testing.T) {
	s := settings(t, emulator(t).URL(), token)
	s.Templates = filepath.Join(t.TempDir(), "missing.yaml")
	_, err := New(context.Background(), s)
	if err == nil || !strings.Contains(err.Error(), s.Templates) {
		t.Fatalf("New with missing templates: err = %v, want one naming %s", err, s.Templates)
	}
}

// The endpoints as a leader without election, and as a follower, before the controller has synced.
func TestHandler(t *testing.T) {
	j := emulator(t)
	follow := func(ctx context.Context, _ kubernetes.Interface, _ func(context.Context) error) error {
		<-ctx.Done()
		return nil
	}
	type answer struct {
		Code int
		Has  string
	}
	tests := []struct {
		name    string
		elector Elector
		want    map[string]answer
	}{
		{"no election", nil, map[string]answer{
			"/healthz": {200, "ok"},
			"/readyz":  {503, "not ready"},
			"/metrics": {200, "provisioner_jenkins_requests_total"}, // the start's ping was counted
			"/":        {200, "<html"},
			"/nothing": {404, ""},
		}},
		{"following", follow, map[string]answer{
			"/healthz": {200, "ok"},
			"/readyz":  {200, "ok: following"},
			"/metrics": {200, "provisioner_leader 0"},
			"/":        {200, "follower"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := settings(t, j.URL(), token)
			s.Elector = tt.elector
			app, err := New(context.Background(), s)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.elector != nil {
				// A follower waits in its Elector; the page and /readyz say so meanwhile.
				done := make(chan error, 1)
				go func() { done <- app.Run(ctx) }()
				defer func() { cancel(); <-done }()
			}
			srv := httptest.NewServer(app.Handler())
			defer srv.Close()
			got := map[string]answer{}
			for path, want := range tt.want {
				resp, err := http.Get(srv.URL + path)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				a := answer{Code: resp.StatusCode}
				if want.Has != "" && strings.Contains(string(body), want.Has) {
					a.Has = want.Has
				}
				got[path] = a
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("answers (-want +got):\n%s", diff)
			}
		})
	}
}

// Serve binds the address asked (port 0: one chosen), serves until stop, and then frees it.
func TestServe(t *testing.T) {
	app := &App{Logger: zap.NewNop()}
	addr, stop, err := app.Serve("127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "served")
	}))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr.String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if got, want := string(body), "served"; got != want {
		t.Errorf("body = %q, want %q", got, want)
	}
	stop()
	if _, err := http.Get("http://" + addr.String() + "/"); err == nil {
		t.Error("still served after stop")
	}
	if _, _, err := app.Serve(addr.String()+"x", http.NotFoundHandler()); err == nil {
		t.Error("Serve on a malformed address succeeded")
	}
}

func TestNewLogger(t *testing.T) {
	tests := []struct {
		level, format string
		wantErr       bool
	}{
		{"info", "json", false},
		{"debug", "console", false},
		{"warn", "", false},
		{"loud", "json", true},
		{"info", "xml", true},
	}
	for _, tt := range tests {
		var b strings.Builder
		logger, err := NewLogger(tt.level, tt.format, &b)
		if (err != nil) != tt.wantErr {
			t.Errorf("NewLogger(%q, %q): err = %v, want an error: %v", tt.level, tt.format, err, tt.wantErr)
			continue
		}
		if err == nil {
			logger.Warn("hello")
			if !strings.Contains(b.String(), "hello") {
				t.Errorf("NewLogger(%q, %q) wrote %q, want the warning", tt.level, tt.format, b.String())
			}
		}
	}
}
