package harness

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins/jenkinstest"
	"github.com/jenkins-agent-provisioner/provisioner/internal/lifecycle"
	"github.com/jenkins-agent-provisioner/provisioner/internal/nodesim"
	"github.com/jenkins-agent-provisioner/provisioner/internal/waitfor"
)

const (
	jenkinsUser  = "provisioner"
	jenkinsToken = "5f0c1d2e3a4b5c6d7e8f90a1b2c3d4e5f6"
)

// Template is one agent template of a world: the labels it serves and its cap.
type Template struct {
	Name      string
	Labels    []string
	MaxAgents int
	// Warm is the template's warm block as inline YAML ("{adaptive: true}"); empty: none.
	Warm string
}

// WorldOptions shape one scenario's world.
type WorldOptions struct {
	Name      string     // namespace prefix and log folder
	Templates []Template // written to the templates file in this order
	MaxAgents int        // PROVISIONER_MAX_AGENTS
	// Env overrides or adds PROVISIONER_* settings for every provisioner of the world.
	Env map[string]string
	// NoSimulator leaves the node simulator off until StartSimulator: pods stay Pending and unbound.
	NoSimulator bool
	// JenkinsURL, when set, is what the provisioner dials instead of the emulator (a fault proxy in
	// front of it); agents still dial the emulator.
	JenkinsURL func(emulator string) string
	// StartUp is every pod's simulated start-up (scheduled, containers running, agent connected).
	StartUp nodesim.StartUp
	// TemplatesYAML, when set, is the templates file instead of the one Templates renders
	// (Templates still name the caps Check holds the world to).
	TemplatesYAML string
}

// World is one scenario run: a namespace of its own, an emulated Jenkins, a simulated node and
// the provisioner processes.
type World struct {
	P         *Plane
	NS        string
	Dir       string
	Jenkins   *jenkinstest.Server
	Sim       *nodesim.Simulator
	Pods      *PodTracker
	Templates []Template
	MaxAgents int

	opts      WorldOptions
	env       map[string]string
	ctx       context.Context
	cancel    context.CancelFunc
	closeLogs []func()
	simOn     atomic.Bool

	mu    sync.Mutex
	procs []*Proc
	jobs  int
	// restarts are when scenarios restarted Jenkins: a freestyle build it aborted then is Jenkins'
	// doing (Executor.interruptForShutdown), not a lost build.
	restarts []time.Time
}

var worldSeq atomic.Int64

// NewWorld creates the namespace, emulator, pod watch, templates file and (unless asked not to)
// the node simulator. Provisioners are started with StartProvisioner.
func (p *Plane) NewWorld(ctx context.Context, opts WorldOptions) (*World, error) {
	n := worldSeq.Add(1)
	ns := fmt.Sprintf("%s-%d-%d", opts.Name, time.Now().Unix()%100000, n)
	dir := filepath.Join(p.Dir, ns)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("world folder: %w", err)
	}
	wctx, cancel := context.WithCancel(ctx)
	w := &World{P: p, NS: ns, Dir: dir, Templates: opts.Templates, MaxAgents: opts.MaxAgents, opts: opts, ctx: wctx, cancel: cancel}
	ok := false
	defer func() {
		if !ok {
			w.Close()
		}
	}()
	if _, err := p.Env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("creating namespace %s: %w", ns, err)
	}
	jlog, closeJ, err := fileLogger(filepath.Join(dir, "jenkins.log"))
	if err != nil {
		return nil, err
	}
	w.closeLogs = append(w.closeLogs, closeJ)
	w.Jenkins = jenkinstest.New(jenkinstest.Options{Logger: jlog})
	w.Jenkins.AddUser(jenkinsUser, jenkinsToken, jenkinstest.OverallAdminister)

	slog, closeS, err := fileLogger(filepath.Join(dir, "nodesim.log"))
	if err != nil {
		return nil, err
	}
	w.closeLogs = append(w.closeLogs, closeS)
	w.Sim = nodesim.New(nodesim.Config{
		Client: p.Env.Client, Namespace: ns, NodeName: "nodesim-" + ns, Logger: slog,
		// Room for every agent of a 1000-build scenario and more; the default 1000 would make the
		// last pods unschedulable and measure the simulator instead of the provisioner.
		Capacity: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("5000")},
		Workers:  8,
		StartUp:  opts.StartUp,
	})
	if !opts.NoSimulator {
		w.StartSimulator()
	}
	w.Pods, err = TrackPods(wctx, p.Env.Client, ns, lifecycle.ManagedSelector().String())
	if err != nil {
		return nil, err
	}
	templates := filepath.Join(dir, "templates.yaml")
	text := templatesYAML(opts.Templates)
	if opts.TemplatesYAML != "" {
		text = opts.TemplatesYAML
	}
	if err := os.WriteFile(templates, []byte(text), 0o644); err != nil {
		return nil, fmt.Errorf("templates file: %w", err)
	}
	jenkinsURL := w.Jenkins.URL()
	if opts.JenkinsURL != nil {
		jenkinsURL = opts.JenkinsURL(w.Jenkins.URL())
	}
	w.env = map[string]string{
		"PROVISIONER_JENKINS_URL":       jenkinsURL,
		"PROVISIONER_AGENT_JENKINS_URL": w.Jenkins.URL(),
		"PROVISIONER_JENKINS_USER":      jenkinsUser,
		"PROVISIONER_JENKINS_TOKEN":     jenkinsToken,
		"PROVISIONER_TEMPLATES":         templates,
		"PROVISIONER_NAMESPACE":         ns,
		"PROVISIONER_KUBECONFIG":        p.Env.Kubeconfig,
		"PROVISIONER_MAX_AGENTS":        fmt.Sprint(opts.MaxAgents),
		"PROVISIONER_LOG_FORMAT":        "json",
		"PROVISIONER_LOG_LEVEL":         "info",
	}
	maps.Copy(w.env, opts.Env)
	ok = true
	return w, nil
}

// templatesYAML writes the templates: the agent container only (the pod every template gets),
// connectTimeout long enough that a slow 2-core machine under a 1000-pod burst never fails an
// agent for being slow to start.
func templatesYAML(ts []Template) string {
	var b strings.Builder
	b.WriteString("templates:\n")
	for _, t := range ts {
		fmt.Fprintf(&b, "  - name: %s\n    labels: [%s]\n    maxAgents: %d\n    connectTimeout: 10m\n", t.Name, strings.Join(t.Labels, ", "), t.MaxAgents)
		if t.Warm != "" {
			fmt.Fprintf(&b, "    warm: %s\n", t.Warm)
		}
	}
	return b.String()
}

// StartSimulator starts the node simulator (once).
func (w *World) StartSimulator() {
	if w.simOn.Swap(true) {
		return
	}
	go func() { _ = w.Sim.Run(w.ctx) }()
}

// StartReadyProvisioner starts the world's one provisioner, named "provisioner", with the world's
// settings, and waits up to two minutes for it to be ready.
func (w *World) StartReadyProvisioner(ctx context.Context) (*Proc, error) {
	proc, err := w.StartProvisioner("provisioner", nil)
	if err != nil {
		return nil, err
	}
	if err := proc.WaitReady(ctx, 2*time.Minute); err != nil {
		return nil, err
	}
	return proc, nil
}

// StartProvisioner starts one provisioner process with the world's settings plus extra.
func (w *World) StartProvisioner(name string, extra map[string]string) (*Proc, error) {
	env := maps.Clone(w.env)
	maps.Copy(env, extra)
	p, err := startProc(name, w.P.Bin, filepath.Join(w.Dir, name+".log"), env)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.procs = append(w.procs, p)
	w.mu.Unlock()
	return p, nil
}

// Close stops the provisioners (SIGTERM), the simulator, the watch and the emulator. Objects in
// the apiserver stay: the namespace is never reused.
func (w *World) Close() {
	w.mu.Lock()
	procs := w.procs
	w.mu.Unlock()
	for _, p := range procs {
		if err := p.Stop(30 * time.Second); err != nil {
			w.P.Log.Warn("stopping provisioner", zap.String("world", w.NS), zap.Error(err))
		}
	}
	w.cancel()
	if w.Jenkins != nil {
		w.Jenkins.Close()
	}
	for _, f := range w.closeLogs {
		f()
	}
}

// Build is one build a scenario queued: its job (one job per build, since Jenkins merges a second
// queue item of the same job into the first) and its queue id.
type Build struct {
	Job      string
	Label    string
	QueueID  int64
	Duration time.Duration
	// Pipeline: a pipeline job whose one node('Label') block lasts Duration.
	Pipeline bool
}

// NewJobs creates n freestyle jobs restricted to labels (round robin), each build lasting d, and
// returns them unscheduled.
func (w *World) NewJobs(n int, labels []string, d time.Duration) []Build {
	w.mu.Lock()
	first := w.jobs
	w.jobs += n
	w.mu.Unlock()
	out := make([]Build, n)
	for i := range n {
		out[i] = Build{Job: fmt.Sprintf("job-%05d", first+i), Label: labels[i%len(labels)], Duration: d}
		w.Jenkins.CreateFreestyleJob(out[i].Job, out[i].Label, d)
	}
	return out
}

// NewMixedJobs is NewJobs with every other job a pipeline whose node block asks for the label.
func (w *World) NewMixedJobs(n int, labels []string, d time.Duration) []Build {
	w.mu.Lock()
	first := w.jobs
	w.jobs += n
	w.mu.Unlock()
	out := make([]Build, n)
	for i := range n {
		out[i] = Build{Job: fmt.Sprintf("job-%05d", first+i), Label: labels[i%len(labels)], Duration: d, Pipeline: i%2 == 1}
		if out[i].Pipeline {
			w.Jenkins.CreatePipelineJob(out[i].Job, out[i].Label, d)
		} else {
			w.Jenkins.CreateFreestyleJob(out[i].Job, out[i].Label, d)
		}
	}
	return out
}

// RestartJenkins restarts the emulated Jenkins (down, then starting) and waits until it is up.
func (w *World) RestartJenkins(ctx context.Context, down, starting time.Duration) error {
	w.mu.Lock()
	w.restarts = append(w.restarts, time.Now())
	w.mu.Unlock()
	select {
	case <-w.Jenkins.Restart(down, starting):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// abortedByRestart reports whether a build ended within a moment of a Jenkins restart.
func (w *World) abortedByRestart(finished time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, at := range w.restarts {
		if d := finished.Sub(at); d > -time.Second && d < time.Second {
			return true
		}
	}
	return false
}

// Schedule queues one build of b's job and records its queue id.
func (w *World) Schedule(b *Build) error {
	id, err := w.Jenkins.Schedule(b.Job)
	if err != nil {
		return fmt.Errorf("scheduling %s: %w", b.Job, err)
	}
	b.QueueID = id
	return nil
}

// WaitBuilds waits until every build of bs is done, or timeout.
func (w *World) WaitBuilds(ctx context.Context, bs []Build, timeout time.Duration) error {
	want := map[int64]bool{}
	for _, b := range bs {
		want[b.QueueID] = true
	}
	deadline := time.Now().Add(timeout)
	for {
		done := 0
		for _, r := range w.Jenkins.Builds() {
			if want[r.QueueID] && r.Done {
				done++
			}
		}
		if done >= len(want) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d builds done after %s (%d agent pods live)", done, len(want), timeout, w.Pods.Live())
		}
		if !waitfor.Duration(ctx, 250*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// WaitStarted waits until n builds of bs have started on an agent.
func (w *World) WaitStarted(ctx context.Context, bs []Build, n int, timeout time.Duration) error {
	want := map[int64]bool{}
	for _, b := range bs {
		want[b.QueueID] = true
	}
	deadline := time.Now().Add(timeout)
	for {
		started := 0
		for _, r := range w.Jenkins.Builds() {
			if want[r.QueueID] && r.Node != "" {
				started++
			}
		}
		if started >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d builds started after %s (%d agent pods live)", started, n, timeout, w.Pods.Live())
		}
		if !waitfor.Duration(ctx, 250*time.Millisecond) {
			return ctx.Err()
		}
	}
}

// AgentOnline returns when each pod's agent first connected to Jenkins, from the simulator.
func (w *World) AgentOnline() map[string]time.Time {
	out := map[string]time.Time{}
	for _, e := range w.Sim.Events() {
		if e.Reason == "AgentConnected" {
			if _, ok := out[e.Pod]; !ok {
				out[e.Pod] = e.Time
			}
		}
	}
	return out
}
