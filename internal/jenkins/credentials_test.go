package jenkins

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// tokenServer accepts one token at a time and records the tokens it was sent.
type tokenServer struct {
	mu     sync.Mutex
	accept string
	sent   []string
}

func (s *tokenServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, tok, _ := r.BasicAuth()
	s.mu.Lock()
	s.sent = append(s.sent, tok)
	ok := tok == s.accept
	s.mu.Unlock()
	if !ok {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte("<html><head><title>Error 401 Unauthorized</title></head></html>"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(emptyQueue))
}

func (s *tokenServer) set(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accept = tok
}

func (s *tokenServer) takeSent() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.sent
	s.sent = nil
	return out
}

// secretVolume lays out a directory as the kubelet writes a Secret volume: the file is a symlink
// through ..data to a timestamped directory, and an update writes a new directory and swaps ..data.
type secretVolume struct {
	t   *testing.T
	dir string
	gen int
}

func (v *secretVolume) write(token string) {
	v.t.Helper()
	v.gen++
	ts := filepath.Join(v.dir, "..2026_12_01_"+string(rune('a'+v.gen)))
	if err := os.Mkdir(ts, 0o755); err != nil {
		v.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ts, "token"), []byte(token+"\n"), 0o440); err != nil {
		v.t.Fatal(err)
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		v.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		v.t.Fatal(err)
	}
	if v.gen == 1 {
		if err := os.Symlink("..data/token", filepath.Join(v.dir, "token")); err != nil {
			v.t.Fatal(err)
		}
	}
}

func (v *secretVolume) path() string { return filepath.Join(v.dir, "token") }

const (
	tokenA = "11aa22bb33cc44dd55ee66ff7788990011"
	tokenB = "99ff88ee77dd66cc55bb44aa3322110099"
	tokenC = "c0ffee00c0ffee00c0ffee00c0ffee00c0"
)

// TestTokenFileRotation: a Secret rotated under a running client takes effect at the next request
// (symlink swap), and a token changed without a visible stamp change is picked up after the 401 it
// causes, with one more try. Before, the token was read once at start: a rotation needed a restart.
func TestTokenFileRotation(t *testing.T) {
	ts := &tokenServer{accept: tokenA}
	srv := httptest.NewServer(ts)
	defer srv.Close()
	vol := &secretVolume{t: t, dir: t.TempDir()}
	vol.write(tokenA)
	cfg := testConfig(srv.URL + "/")
	cfg.Token, cfg.TokenFile = "", vol.path()
	c := newClient(t, cfg)
	ctx := context.Background()

	if _, err := c.Queue(ctx); err != nil {
		t.Fatalf("Queue with token A: %v", err)
	}
	// Rotation: Jenkins now takes B only, and the kubelet swaps the volume to B.
	ts.set(tokenB)
	vol.write(tokenB)
	ts.takeSent()
	if _, err := c.Queue(ctx); err != nil {
		t.Fatalf("Queue after the swap: %v", err)
	}
	if diff := cmp.Diff([]string{tokenB}, ts.takeSent()); diff != "" {
		t.Errorf("tokens sent after the swap (-want +got):\n%s", diff)
	}

	// Written in place with the same size and modification time: the stamp cannot tell, the 401 does.
	target, err := filepath.EvalSymlinks(vol.path())
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(target)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(target, []byte(tokenC+"\n"), 0o440); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(target, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	ts.set(tokenC)
	if _, err := c.Queue(ctx); err != nil {
		t.Fatalf("Queue after an in-place change: %v", err)
	}
	if diff := cmp.Diff([]string{tokenB, tokenC}, ts.takeSent()); diff != "" {
		t.Errorf("tokens sent after the in-place change (-want +got):\n%s", diff)
	}
	if n := c.ConsecutiveUnauthorized(); n != 0 {
		t.Errorf("ConsecutiveUnauthorized after a success = %d, want 0", n)
	}
}

// TestConsecutiveUnauthorized counts 401s in a row, for the leader to give up its Lease on.
func TestConsecutiveUnauthorized(t *testing.T) {
	ts := &tokenServer{accept: "something else"}
	srv := httptest.NewServer(ts)
	defer srv.Close()
	c := newClient(t, testConfig(srv.URL+"/"))
	ctx := context.Background()
	var got []int
	for range 3 {
		if _, err := c.Queue(ctx); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("Queue error = %v, want ErrUnauthorized", err)
		}
		got = append(got, c.ConsecutiveUnauthorized())
	}
	ts.set(testConfig("").Token)
	if _, err := c.Queue(ctx); err != nil {
		t.Fatal(err)
	}
	got = append(got, c.ConsecutiveUnauthorized())
	if diff := cmp.Diff([]int{1, 2, 3, 0}, got); diff != "" {
		t.Errorf("ConsecutiveUnauthorized (-want +got):\n%s", diff)
	}
}

func TestTokenFileErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]Config{
		"missing file": {URL: "https://j/", User: "u", TokenFile: filepath.Join(dir, "nope")},
		"empty file":   {URL: "https://j/", User: "u", TokenFile: empty},
		"both":         {URL: "https://j/", User: "u", Token: "t", TokenFile: empty},
		"no user":      {URL: "https://j/", TokenFile: empty},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

// TestWarnsAboutPlainHTTPCredentials: credentials over http:// are said at start, once.
func TestWarnsAboutPlainHTTPCredentials(t *testing.T) {
	tests := []struct {
		url, token string
		want       int
	}{
		{"http://jenkins:8080/", "tok", 1},
		{"https://jenkins/", "tok", 0},
		{"http://jenkins:8080/", "", 0},
	}
	for _, tt := range tests {
		core, logs := observer.New(zapcore.WarnLevel)
		cfg := Config{URL: tt.url, User: "u", Token: tt.token, Logger: zap.New(core), Timeout: time.Second}
		if tt.token == "" {
			cfg.User = ""
		}
		if _, err := New(cfg); err != nil {
			t.Fatal(err)
		}
		if got := logs.FilterMessageSnippet("plain http://").Len(); got != tt.want {
			t.Errorf("%s with token %q: %d warnings, want %d", tt.url, tt.token, got, tt.want)
		}
	}
}
