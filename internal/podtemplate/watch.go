package podtemplate

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// DefaultWatchInterval is how often a Watcher looks at the template files. A mounted ConfigMap is
// updated by the kubelet within about a minute anyway, so a few seconds costs nothing noticeable.
const DefaultWatchInterval = 5 * time.Second

// Watcher keeps the current template Set and reloads it when the files change. It polls a digest of
// the files' contents rather than watching inotify events: a ConfigMap update replaces a symlink
// (..data) in one rename, which inotify reports on a path the provisioner never opened, and polling
// the contents sees that, an edited file, and an added or removed file alike.
//
// A change that fails validation is logged and ignored: the last good Set stays current. Sets are
// immutable, so agents made from an older Set keep their *Template.
type Watcher struct {
	path   string
	opts   Options
	logger *zap.Logger
	// Interval between looks at the files; set it before Run. Zero means DefaultWatchInterval.
	Interval time.Duration

	current atomic.Pointer[Set]
	digest  string // of the files last loaded or rejected, so a bad change is logged once
}

// NewWatcher loads path; it fails if the templates there are not valid, since a provisioner
// without templates cannot do anything useful.
func NewWatcher(path string, logger *zap.Logger) (*Watcher, error) {
	return NewWatcherWith(path, logger, Options{})
}

// NewWatcherWith is NewWatcher loading, and reloading, with the deployment's options.
func NewWatcherWith(path string, logger *zap.Logger, opts Options) (*Watcher, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	w := &Watcher{path: path, opts: opts, logger: logger}
	digest, err := filesDigest(path)
	if err != nil {
		return nil, err
	}
	set, err := LoadWith(path, opts)
	if err != nil {
		return nil, err
	}
	w.current.Store(set)
	w.digest = digest
	w.warn(set)
	return w, nil
}

// warn logs, once per load, what `templates check` reports without refusing: warm counts cut by
// their bounds. (Risky pod settings are left to `templates check`: they are deliberate.)
func (w *Watcher) warn(set *Set) {
	for _, t := range set.Templates {
		for _, wn := range WarmWarnings(t) {
			w.logger.Warn("warm block cut by its bounds", zap.String("template", t.Name), zap.String("source", t.Source),
				zap.String("field", wn.Field), zap.String("problem", wn.Msg))
		}
	}
}

// Current returns the last valid Set.
func (w *Watcher) Current() *Set { return w.current.Load() }

// Run polls until ctx is done.
func (w *Watcher) Run(ctx context.Context) {
	interval := w.Interval
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			w.check()
		}
	}
}

// check reloads when the files' digest changed.
func (w *Watcher) check() {
	digest, err := filesDigest(w.path)
	if err != nil {
		if w.digest != "" {
			w.logger.Error("cannot read pod templates; keeping the last good set", zap.String("path", w.path), zap.Error(err))
			w.digest = ""
		}
		return
	}
	if digest == w.digest {
		return
	}
	w.digest = digest
	set, err := LoadWith(w.path, w.opts)
	if err != nil {
		w.logger.Error("changed pod templates are invalid; keeping the last good set", zap.String("path", w.path), zap.Error(err))
		return
	}
	w.current.Store(set)
	names := make([]string, 0, len(set.Templates))
	for _, t := range set.Templates {
		names = append(names, t.Name)
	}
	w.logger.Info("reloaded pod templates", zap.String("path", w.path), zap.Strings("templates", names))
	w.warn(set)
}

// filesDigest hashes the names and contents of the files Load would read.
func filesDigest(path string) (string, error) {
	files, err := templateFiles(path)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("read templates: %w", err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(data))
		h.Write(data)
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}
