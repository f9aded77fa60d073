// Package e2e runs the provisioner end to end: a real kube-apiserver, etcd and garbage collector
// (internal/testenv), the Jenkins emulator (internal/jenkins/jenkinstest), the node simulator playing
// kubelet and inbound agent (internal/nodesim), and the real controller, in process or as the built
// binary.
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins"
	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins/jenkinstest"
	"github.com/jenkins-agent-provisioner/provisioner/internal/lifecycle"
	"github.com/jenkins-agent-provisioner/provisioner/internal/nodesim"
	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
	"github.com/jenkins-agent-provisioner/provisioner/internal/testenv"
	"github.com/jenkins-agent-provisioner/provisioner/internal/waitfor"
	"github.com/jenkins-agent-provisioner/provisioner/internal/wiring"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{GarbageCollector: true}, &env) }

const (
	jenkinsUser  = "provisioner"
	jenkinsToken = "11e2a0c4b5d6e7f8091a2b3c4d5e6f7a8b"
)

// templatesYAML serves the three kinds of demand the tests queue: a plain label, a label expression
// and a pipeline node() block.
const templatesYAML = `templates:
  - name: base
    pod:
      metadata: {labels: {team: ci}}
  - name: maven
    inheritFrom: [base]
    labels: [maven, jdk17]
    maxAgents: %[1]d
    pod:
      spec:
        containers:
          - {name: maven, image: "maven:3.9-eclipse-temurin-17", command: [sleep, infinity]}
  - name: docker
    inheritFrom: [base]
    labels: [linux, docker]
    maxAgents: %[1]d
  - name: nodejs
    inheritFrom: [base]
    labels: [nodejs, linux]
    maxAgents: %[1]d
  - name: broken
    labels: [broken]
    maxAgents: %[1]d
    connectTimeout: %[2]s
    pod:
      metadata:
        annotations: {%[3]s}
`

type rigOptions struct {
	maxPerTemplate int
	maxAgents      int
	connectTimeout time.Duration
	// brokenAnnotation is put on the broken template's pods (a nodesim behaviour), e.g.
	// `nodesim.jenkins-agent-provisioner/behaviour: crash`.
	brokenAnnotation string
	brokenImage      string
	config           func(*lifecycle.Config)
	// jenkins adjusts the emulator's options (a resume timeout, say).
	jenkins      func(*jenkinstest.Options)
	noController bool
	// templates replaces templatesYAML when set; startUp is every pod's simulated start-up.
	templates string
	startUp   nodesim.StartUp
}

// rig is one scenario's world: its own namespace, Jenkins, simulated node and controller.
type rig struct {
	t         *testing.T
	ns        string
	jenkins   *jenkinstest.Server
	sim       *nodesim.Simulator
	templates string
	pods      *podTracker
	ctx       context.Context
	stopCtrl  context.CancelFunc
	ctrlDone  chan error
	ctrl      *lifecycle.Controller
	client    *jenkins.Client
	opts      rigOptions
}

func newRig(t *testing.T, opts rigOptions) *rig {
	t.Helper()
	if opts.maxPerTemplate == 0 {
		opts.maxPerTemplate = 20
	}
	if opts.connectTimeout == 0 {
		opts.connectTimeout = 5 * time.Minute
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	r := &rig{t: t, ctx: ctx, ns: newNamespace(t), opts: opts}

	jopts := jenkinstest.Options{Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Named("jenkins")}
	if opts.jenkins != nil {
		opts.jenkins(&jopts)
	}
	r.jenkins = jenkinstest.New(jopts)
	t.Cleanup(r.jenkins.Close)
	r.jenkins.AddUser(jenkinsUser, jenkinsToken, jenkinstest.OverallAdminister)

	// One simulated node per scenario: scenarios run in parallel, and Node objects are cluster-wide.
	r.sim = nodesim.New(nodesim.Config{Client: env.Client, Namespace: r.ns, NodeName: "node-" + r.ns, StartUp: opts.startUp,
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Named("nodesim")})
	simDone := make(chan error, 1)
	go func() { simDone <- r.sim.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-simDone; err != nil {
			t.Errorf("node simulator: %v", err)
		}
	})

	r.pods = trackPods(ctx, t, r.ns)
	r.templates = filepath.Join(t.TempDir(), "templates.yaml")
	r.writeTemplates(opts.brokenAnnotation, opts.brokenImage, opts.connectTimeout)

	client, err := jenkins.New(jenkins.Config{URL: r.jenkins.URL(), User: jenkinsUser, Token: jenkinsToken,
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Named("client")})
	if err != nil {
		t.Fatal(err)
	}
	r.client = client
	if !opts.noController {
		r.startController()
	}
	return r
}

func (r *rig) writeTemplates(brokenAnnotation, brokenImage string, connectTimeout time.Duration) {
	r.t.Helper()
	y := fmt.Sprintf(templatesYAML, r.opts.maxPerTemplate, connectTimeout, brokenAnnotation)
	if r.opts.templates != "" {
		y = r.opts.templates
	}
	if brokenImage != "" {
		y += fmt.Sprintf("    agent: {image: %q}\n", brokenImage)
	}
	tmp := r.templates + ".tmp"
	if err := os.WriteFile(tmp, []byte(y), 0o644); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Rename(tmp, r.templates); err != nil {
		r.t.Fatal(err)
	}
}

// startController runs the real controller in this process, built by internal/wiring as
// `provisioner run` builds it, until the test ends or stopController.
func (r *rig) startController() {
	r.t.Helper()
	cfg := lifecycle.Config{
		Namespace:          r.ns,
		JenkinsURL:         r.jenkins.URL(),
		MaxAgents:          r.opts.maxAgents,
		PollInterval:       200 * time.Millisecond,
		ReleaseGrace:       2 * time.Second,
		OrphanGrace:        5 * time.Second,
		UnschedulableGrace: 3 * time.Second,
		BackoffBase:        time.Second,
		BackoffMax:         4 * time.Second,
	}
	if r.opts.config != nil {
		r.opts.config(&cfg)
	}
	app, err := wiring.New(r.ctx, wiring.Settings{
		Logger:            zaptest.NewLogger(r.t, zaptest.Level(zap.InfoLevel)),
		Jenkins:           jenkins.Config{URL: r.jenkins.URL(), User: jenkinsUser, Token: jenkinsToken},
		Kube:              env.Config,
		Templates:         r.templates,
		TemplatesInterval: 200 * time.Millisecond,
		Lifecycle:         cfg,
	})
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(r.ctx)
	r.ctrl, r.stopCtrl, r.ctrlDone = app.Controller, cancel, make(chan error, 1)
	go func() { r.ctrlDone <- app.Run(ctx) }()
	r.t.Cleanup(r.stopController)
}

func (r *rig) stopController() {
	if r.stopCtrl == nil {
		return
	}
	r.stopCtrl()
	select {
	case err := <-r.ctrlDone:
		if err != nil {
			r.t.Errorf("controller stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		r.t.Error("controller did not stop within 30s of its context ending")
	}
	r.stopCtrl = nil
}

func newNamespace(t *testing.T) string {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(name) > 40 {
		name = name[:40]
	}
	name = strings.Trim(name, "-") + "-" + fmt.Sprint(time.Now().UnixNano()%100000)
	_, err := env.Client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return name
}

// queue schedules n builds of each job, round robin, and returns their queue ids.
func (r *rig) queue(n int, jobs ...string) []int64 {
	r.t.Helper()
	var ids []int64
	for i := range n {
		id, err := r.jenkins.Schedule(jobs[i%len(jobs)])
		if err != nil {
			r.t.Fatalf("schedule %s: %v", jobs[i%len(jobs)], err)
		}
		ids = append(ids, id)
	}
	return ids
}

// waitBuilds waits until n builds are done.
func (r *rig) waitBuilds(n int, timeout time.Duration) []jenkinstest.BuildRecord {
	r.t.Helper()
	var done []jenkinstest.BuildRecord
	eventually(r.t, timeout, func() (bool, string) {
		done = done[:0]
		for _, b := range r.jenkins.Builds() {
			if b.Done {
				done = append(done, b)
			}
		}
		return len(done) >= n, fmt.Sprintf("%d of %d builds done; pods now: %s", len(done), n, r.pods.summary())
	})
	return done
}

// assertNothingLeft waits until no pod, Secret or Jenkins agent node of ours is left.
func (r *rig) assertNothingLeft(timeout time.Duration) {
	r.t.Helper()
	eventually(r.t, timeout, func() (bool, string) {
		sel := metav1.ListOptions{LabelSelector: lifecycle.ManagedSelector().String()}
		pods, err := env.Client.CoreV1().Pods(r.ns).List(context.Background(), sel)
		if err != nil {
			return false, err.Error()
		}
		secrets, err := env.Client.CoreV1().Secrets(r.ns).List(context.Background(), sel)
		if err != nil {
			return false, err.Error()
		}
		var nodes []string
		for _, n := range r.jenkins.Nodes() {
			// Ours: the agents' marker (the placeholder is meant to stay).
			if strings.HasPrefix(n.Description, "[jenkins-agent-provisioner] template=") {
				nodes = append(nodes, n.Name)
			}
		}
		left := len(pods.Items) + len(secrets.Items) + len(nodes)
		return left == 0, fmt.Sprintf("left: %d pods, %d secrets, Jenkins nodes %v", len(pods.Items), len(secrets.Items), nodes)
	})
}

// podTracker follows every pod of ours in a namespace through a watch and remembers the most that
// were alive at once, in total and per template.
type podTracker struct {
	mu          sync.Mutex
	live        map[string]string // name → template
	created     map[string]string
	createdAt   map[string]time.Time
	maxTotal    int
	maxTemplate map[string]int
}

func trackPods(ctx context.Context, t *testing.T, ns string) *podTracker {
	p := &podTracker{live: map[string]string{}, created: map[string]string{}, createdAt: map[string]time.Time{}, maxTemplate: map[string]int{}}
	factory := informers.NewSharedInformerFactoryWithOptions(env.Client, 0, informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = lifecycle.ManagedSelector().String() }))
	inf := factory.Core().V1().Pods().Informer()
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { p.add(obj.(*corev1.Pod)) },
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				p.remove(pod.Name)
			}
		},
	})
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("pod tracker did not sync")
	}
	return p
}

func (p *podTracker) add(pod *corev1.Pod) {
	p.mu.Lock()
	defer p.mu.Unlock()
	tmpl := pod.Labels[podtemplate.LabelTemplate]
	p.live[pod.Name] = tmpl
	if _, seen := p.created[pod.Name]; !seen {
		p.created[pod.Name] = tmpl
		p.createdAt[pod.Name] = time.Now()
	}
	p.maxTotal = max(p.maxTotal, len(p.live))
	n := 0
	for _, t := range p.live {
		if t == tmpl {
			n++
		}
	}
	p.maxTemplate[tmpl] = max(p.maxTemplate[tmpl], n)
}

func (p *podTracker) remove(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.live, name)
}

func (p *podTracker) createdNames() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]string{}
	for k, v := range p.created {
		out[k] = v
	}
	return out
}

func (p *podTracker) createdFor(template string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, t := range p.created {
		if t == template {
			n++
		}
	}
	return n
}

// creationGaps is the time between consecutive pod creations of a template, as the watch saw them.
func (p *podTracker) creationGaps(template string) []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var times []time.Time
	for name, t := range p.created {
		if t == template {
			times = append(times, p.createdAt[name])
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	var gaps []time.Duration
	for i := 1; i < len(times); i++ {
		gaps = append(gaps, times[i].Sub(times[i-1]))
	}
	return gaps
}

func (p *podTracker) liveCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.live)
}

func (p *podTracker) summary() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	names := make([]string, 0, len(p.live))
	for n := range p.live {
		names = append(names, n)
	}
	sort.Strings(names)
	return fmt.Sprintf("%d live %v, %d created", len(p.live), names, len(p.created))
}

// eventually polls cond every 100 ms until it holds or timeout passes, then fails with cond's last
// word.
func eventually(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	waitfor.Eventually(t, timeout, 100*time.Millisecond, "the condition", cond)
}

// events lists the Events of a namespace with the given reason.
func events(t *testing.T, ns, reason string) []corev1.Event {
	t.Helper()
	list, err := env.Client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "reason=" + reason})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}
