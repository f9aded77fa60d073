// Command provisioner-demo runs the whole product on this machine with nothing given: a real
// kube-apiserver and etcd, the Jenkins emulator with labelled jobs, the node simulator as kubelet,
// and the real controller (built by internal/wiring, as `provisioner run` builds it) with the demo
// templates. It narrates what happens and ends with a summary. `make demo` builds and runs it.
//
// It is its own main, not a subcommand of cmd/provisioner, because it links the test rigs
// (internal/testenv, internal/jenkins/jenkinstest, internal/nodesim) the production binary must not.
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins"
	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins/jenkinstest"
	"github.com/jenkins-agent-provisioner/provisioner/internal/lifecycle"
	"github.com/jenkins-agent-provisioner/provisioner/internal/nodesim"
	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
	"github.com/jenkins-agent-provisioner/provisioner/internal/testenv"
	"github.com/jenkins-agent-provisioner/provisioner/internal/wiring"
)

//go:embed demo-templates.yaml
var demoTemplates []byte

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := demoCommand(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func demoCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("provisioner-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	perKind := fs.Int("builds", 4, "builds to queue per kind (maven, linux&&docker, pipeline node('nodejs'))")
	listen := fs.String("listen", "127.0.0.1:0", "address of the status page while the demo runs")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: provisioner-demo [flags]\n\nRuns a local control plane, a Jenkins emulator, a simulated node and the provisioner, queues builds and prints what happens.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "provisioner-demo: unexpected arguments: %v\n", fs.Args())
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	d := &demo{out: stdout, start: time.Now(), created: map[string]bool{}, deleted: map[string]bool{}}
	ok, err := d.run(ctx, *perKind, *listen)
	if err != nil {
		fmt.Fprintf(stderr, "provisioner-demo: %v\n", err)
		return 1
	}
	if !ok {
		return 1
	}
	return 0
}

type demo struct {
	out   io.Writer
	start time.Time

	mu               sync.Mutex
	created, deleted map[string]bool // agent pod names seen created and deleted
}

func (d *demo) say(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.out, "[%6.1fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

func (d *demo) run(ctx context.Context, perKind int, listen string) (bool, error) {
	logFile, err := os.CreateTemp("", "provisioner-demo-*.log")
	if err != nil {
		return false, err
	}
	defer logFile.Close()
	logger, err := wiring.NewLogger("info", "json", logFile)
	if err != nil {
		return false, err
	}
	wiring.RouteKlog(logger)

	d.say("starting a local control plane (kube-apiserver, etcd, garbage collector); logs go to %s", logFile.Name())
	env, err := testenv.Start(testenv.Options{GarbageCollector: true})
	if err != nil {
		return false, fmt.Errorf("start the local control plane: %w", err)
	}
	defer func() { _ = env.Stop() }()
	const ns = "jenkins-agents"
	if _, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return false, fmt.Errorf("create namespace %s: %w", ns, err)
	}

	jenk := jenkinstest.New(jenkinstest.Options{Logger: logger.Named("jenkins")})
	defer jenk.Close()
	const user, token = "provisioner", "5f0d1c2b3a4e5f60718293a4b5c6d7e8f9"
	jenk.AddUser(user, token, jenkinstest.OverallAdminister)
	d.say("Jenkins emulator at %s", jenk.URL())

	sim := nodesim.New(nodesim.Config{Client: env.Client, Namespace: ns, Logger: logger.Named("nodesim")})
	simCtx, stopSim := context.WithCancel(ctx)
	defer stopSim()
	go func() { _ = sim.Run(simCtx) }()

	dir, err := os.MkdirTemp("", "provisioner-demo-templates-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	templatesPath := filepath.Join(dir, "templates.yaml")
	if err := os.WriteFile(templatesPath, demoTemplates, 0o644); err != nil {
		return false, err
	}
	app, err := wiring.New(ctx, wiring.Settings{
		Logger:    logger,
		Jenkins:   jenkins.Config{URL: jenk.URL(), User: user, Token: token},
		Kube:      env.Config,
		Templates: templatesPath,
		Lifecycle: lifecycle.Config{
			Namespace:          ns,
			JenkinsURL:         jenk.URL(),
			PollInterval:       time.Second,
			BackoffBase:        2 * time.Second,
			BackoffMax:         8 * time.Second,
			OrphanGrace:        20 * time.Second,
			UnschedulableGrace: 30 * time.Second,
		},
	})
	if err != nil {
		return false, err
	}
	ctrl := app.Controller

	addr, stopServing, err := app.Serve(listen, app.Handler())
	if err != nil {
		return false, err
	}
	defer stopServing()
	d.say("status page at http://%s/", addr)

	d.narrate(ctx, env, ns)

	ctrlCtx, stopCtrl := context.WithCancel(ctx)
	defer stopCtrl()
	ctrlDone := make(chan error, 1)
	go func() { ctrlDone <- app.Run(ctrlCtx) }()
	d.say("provisioner running: templates %s", templateNames(app.Templates.Current()))

	// The builds: freestyle jobs for a label and a label expression, pipeline node() blocks, and one
	// build for a template whose image cannot be pulled.
	var good []string
	for i := 1; i <= perKind; i++ {
		for _, j := range []struct {
			name, label string
			pipeline    bool
		}{
			{fmt.Sprintf("compile-%d", i), "maven", false},
			{fmt.Sprintf("image-%d", i), "linux && docker", false},
			{fmt.Sprintf("web-%d", i), "nodejs", true},
		} {
			if j.pipeline {
				jenk.CreatePipelineJob(j.name, j.label, 3*time.Second)
			} else {
				jenk.CreateFreestyleJob(j.name, j.label, 3*time.Second)
			}
			good = append(good, j.name)
		}
	}
	jenk.CreateFreestyleJob("train-model", "gpu", 3*time.Second)
	labels := map[string]string{}
	for i := 1; i <= perKind; i++ {
		labels[fmt.Sprintf("compile-%d", i)] = "freestyle, label maven"
		labels[fmt.Sprintf("image-%d", i)] = "freestyle, label linux && docker"
		labels[fmt.Sprintf("web-%d", i)] = "pipeline, node('nodejs')"
	}
	for _, job := range good {
		id, err := jenk.Schedule(job)
		if err != nil {
			return false, fmt.Errorf("queue %s: %w", job, err)
		}
		d.say("%-19s %s (%s), queue item %d", "BuildQueued", job, labels[job], id)
	}
	brokenID, err := jenk.Schedule("train-model")
	if err != nil {
		return false, fmt.Errorf("queue train-model: %w", err)
	}
	d.say("%-19s train-model (freestyle, label gpu), queue item %d: its template's image cannot be pulled", "BuildQueued", brokenID)

	// Wait for the good builds, and for the broken template to have failed a few times.
	allRan := waitFor(ctx, time.Second, func() bool { return doneBuilds(jenk) >= len(good) })
	waitFor(ctx, time.Second, func() bool { return failuresOf(ctrl, "broken") >= 2 })
	d.say("cancelling train-model after %d failed attempts (a user would fix the image)", failuresOf(ctrl, "broken"))
	_ = jenk.Cancel(brokenID)

	left := func() (int, int, []string) {
		sel := metav1.ListOptions{LabelSelector: lifecycle.ManagedSelector().String()}
		pods, _ := env.Client.CoreV1().Pods(ns).List(context.WithoutCancel(ctx), sel)
		secrets, _ := env.Client.CoreV1().Secrets(ns).List(context.WithoutCancel(ctx), sel)
		var nodes []string
		for _, n := range jenk.Nodes() {
			if n.Name != lifecycle.PlaceholderNodeName {
				nodes = append(nodes, n.Name)
			}
		}
		if pods == nil || secrets == nil {
			return -1, -1, nodes
		}
		return len(pods.Items), len(secrets.Items), nodes
	}
	waitFor(ctx, 500*time.Millisecond, func() bool { p, s, n := left(); return p == 0 && s == 0 && len(n) == 0 })
	stopCtrl()
	<-ctrlDone

	// The summary.
	status := ctrl.Status()
	pods, secrets, nodes := left()
	created, deleted := d.podCounts()
	fmt.Fprintln(d.out)
	fmt.Fprintln(d.out, "Summary")
	fmt.Fprintf(d.out, "  builds run:        %d of %d (each on its own agent pod)\n", doneBuilds(jenk), len(good))
	fmt.Fprintf(d.out, "  pods created:      %d\n", created)
	fmt.Fprintf(d.out, "  pods deleted:      %d\n", deleted)
	fmt.Fprintf(d.out, "  failures:          %d\n", len(status.Failures))
	reasons := map[string]int{}
	for _, f := range status.Failures {
		reasons[f.Template+": "+f.Reason]++
	}
	for _, r := range sortedKeys(reasons) {
		fmt.Fprintf(d.out, "    %d × %s\n", reasons[r], r)
	}
	leftOver := pods + secrets + len(nodes)
	fmt.Fprintf(d.out, "  resources left over: %d (pods %d, secrets %d, Jenkins nodes %d)\n", leftOver, pods, secrets, len(nodes))
	ok := allRan && leftOver == 0
	if !ok {
		fmt.Fprintln(d.out, "  RESULT: FAILED (see the log file above)")
	} else {
		fmt.Fprintln(d.out, "  RESULT: ok")
	}
	return ok, nil
}

// narrate prints the Events the provisioner records on agent pods, and pods appearing and going.
func (d *demo) narrate(ctx context.Context, env *testenv.Env, ns string) {
	factory := informers.NewSharedInformerFactoryWithOptions(env.Client, 0, informers.WithNamespace(ns))
	evInf := factory.Core().V1().Events().Informer()
	podInf := factory.Core().V1().Pods().Informer()
	since := time.Now()
	_, _ = evInf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		ev, ok := obj.(*corev1.Event)
		if !ok || ev.Source.Component != "jenkins-agent-provisioner" || ev.CreationTimestamp.Time.Before(since.Add(-time.Second)) {
			return
		}
		d.say("%-19s %s", ev.Reason, ev.Message)
	}})
	_, _ = podInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if pod, ok := obj.(*corev1.Pod); ok {
				d.countPod(pod.Name, true)
			}
		},
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				d.countPod(pod.Name, false)
				d.say("%-19s pod %s is gone", "PodGone", pod.Name)
			}
		},
	})
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
}

func (d *demo) countPod(name string, created bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if created {
		d.created[name] = true
	} else {
		d.deleted[name] = true
	}
}

func (d *demo) podCounts() (int, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.created), len(d.deleted)
}

func doneBuilds(j *jenkinstest.Server) int {
	n := 0
	for _, b := range j.Builds() {
		if b.Done {
			n++
		}
	}
	return n
}

func failuresOf(c *lifecycle.Controller, template string) int {
	n := 0
	for _, f := range c.Status().Failures {
		if f.Template == template {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds (true) or ctx ends (false).
func waitFor(ctx context.Context, every time.Duration, cond func() bool) bool {
	return wait.PollUntilContextCancel(ctx, every, true, func(context.Context) (bool, error) { return cond(), nil }) == nil
}

func templateNames(s *podtemplate.Set) string {
	var names []string
	for _, t := range s.Templates {
		if len(t.Labels) > 0 {
			names = append(names, fmt.Sprintf("%s %v", t.Name, t.Labels))
		}
	}
	return strings.Join(names, ", ")
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
