package podtemplate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/jenkins-agent-provisioner/provisioner/internal/waitfor"
)

// configMapDir lays out a directory the way the kubelet mounts a ConfigMap: the files live in a
// timestamped directory, ..data points at it, and each key is a symlink through ..data. An update
// writes a new timestamped directory and swaps ..data in one rename.
type configMapDir struct {
	t    *testing.T
	root string
	n    int
}

func newConfigMapDir(t *testing.T, files map[string]string) *configMapDir {
	d := &configMapDir{t: t, root: t.TempDir()}
	d.update(files)
	for name := range files {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(d.root, name)); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func (d *configMapDir) update(files map[string]string) {
	d.t.Helper()
	d.n++
	dir := fmt.Sprintf("..2026_11_25_20_00_%02d.%d", d.n, d.n)
	if err := os.Mkdir(filepath.Join(d.root, dir), 0o755); err != nil {
		d.t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(d.root, dir, name), []byte(content), 0o644); err != nil {
			d.t.Fatal(err)
		}
	}
	tmp := filepath.Join(d.root, "..data_tmp")
	if err := os.Symlink(dir, tmp); err != nil {
		d.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(d.root, "..data")); err != nil {
		d.t.Fatal(err)
	}
}

func templateNames(s *Set) string {
	var names []string
	for _, t := range s.Templates {
		names = append(names, t.Name)
	}
	return strings.Join(names, ",")
}

// waitFor polls cond every 5 ms until it holds or 5 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitfor.Eventually(t, 5*time.Second, 5*time.Millisecond, what, func() (bool, string) { return cond(), "not yet" })
}

func TestWatcherReloadsConfigMapUpdates(t *testing.T) {
	dir := newConfigMapDir(t, map[string]string{
		"a.yaml": "templates:\n  - name: maven\n    labels: [maven]\n",
		"b.yaml": "templates:\n  - name: node\n    labels: [node]\n    inheritFrom: [maven]\n",
	})
	core, logs := observer.New(zapcore.InfoLevel)
	w, err := NewWatcher(dir.root, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	w.Interval = 10 * time.Millisecond
	first := w.Current()
	if got := templateNames(first); got != "maven,node" {
		t.Fatalf("initial templates %q, want maven,node (files in name order)", got)
	}
	inFlight, _ := first.Get("maven")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	// A valid change is picked up.
	dir.update(map[string]string{
		"a.yaml": "templates:\n  - name: maven\n    labels: [maven]\n    maxAgents: 2\n",
		"b.yaml": "templates:\n  - name: node\n    labels: [node]\n",
	})
	waitFor(t, "the reload", func() bool { return w.Current() != first })
	second := w.Current()
	if m, _ := second.Get("maven"); m.MaxAgents != 2 {
		t.Errorf("after reload maven maxAgents = %d, want 2", m.MaxAgents)
	}
	// An agent made from the old set keeps its template.
	if inFlight.MaxAgents != DefaultMaxAgents {
		t.Errorf("in-flight template changed: maxAgents = %d", inFlight.MaxAgents)
	}

	// An invalid change is logged and the last good set stays.
	dir.update(map[string]string{
		"a.yaml": "templates:\n  - name: maven\n    labels: [maven]\n    maxAgents: 0\n",
		"b.yaml": "templates:\n  - name: node\n    labels: [node]\n",
	})
	waitFor(t, "the rejection to be logged", func() bool {
		return logs.FilterMessage("changed pod templates are invalid; keeping the last good set").Len() == 1
	})
	if w.Current() != second {
		t.Errorf("an invalid change replaced the templates")
	}
	entry := logs.FilterMessage("changed pod templates are invalid; keeping the last good set").All()[0]
	if got := fmt.Sprint(entry.ContextMap()["error"]); !strings.Contains(got, "a.yaml:4: templates[0].maxAgents: must be at least 1, got 0") {
		t.Errorf("logged error %q does not name the problem", got)
	}

	// Fixing it reloads again; the rejection was logged once, not on every poll.
	dir.update(map[string]string{
		"a.yaml": "templates:\n  - name: maven\n    labels: [maven]\n    maxAgents: 4\n",
		"b.yaml": "templates:\n  - name: node\n    labels: [node]\n",
	})
	waitFor(t, "the reload after the fix", func() bool {
		m, _ := w.Current().Get("maven")
		return m.MaxAgents == 4
	})
	if n := logs.FilterMessage("changed pod templates are invalid; keeping the last good set").Len(); n != 1 {
		t.Errorf("rejection logged %d times, want once", n)
	}
	if n := logs.FilterMessage("reloaded pod templates").Len(); n != 2 {
		t.Errorf("reload logged %d times, want 2", n)
	}
}

func TestNewWatcherFailsOnInvalidTemplates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.yaml")
	if err := os.WriteFile(path, []byte("templates:\n  - name: Bad\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewWatcher(path, nil); err == nil || !strings.Contains(err.Error(), "t.yaml:2: templates[0].name:") {
		t.Errorf("NewWatcher error = %v, want the invalid name reported", err)
	}
}

func TestLoadDirectorySkipsOtherFiles(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"b.yaml":       "templates:\n  - name: b\n    labels: [b]\n",
		"a.yaml":       "templates:\n  - name: a\n    labels: [a]\n",
		"notes.txt":    "not yaml",
		".hidden.yaml": "not: [valid",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := templateNames(set); got != "a,b" {
		t.Errorf("templates %q, want a,b", got)
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Errorf("Load of a missing path succeeded")
	}
	empty := t.TempDir()
	if _, err := Load(empty); err == nil || !strings.Contains(err.Error(), "no *.yaml files") {
		t.Errorf("Load of an empty directory: %v", err)
	}
}
