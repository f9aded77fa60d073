package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

const (
	// defaultStartTimeout bounds each of etcd and kube-apiserver reaching healthy. envtest's 20 s
	// default is too short on the shared 2-core machine while other packages build and test.
	defaultStartTimeout = 2 * time.Minute
	// stopTimeout bounds a graceful stop before envtest (or we) send SIGKILL.
	stopTimeout = time.Minute
	// readyTimeout bounds the wait, after /healthz, for /readyz and the system namespaces; envtest's
	// Environment hard-codes 5 s for the namespaces, which a loaded machine can miss.
	readyTimeout = 2 * time.Minute
	// gcReadyTimeout bounds kube-controller-manager's start plus the garbage collector's first
	// cascade: it lists every resource type before its monitors sync, the slowest part of Start.
	gcReadyTimeout = 3 * time.Minute
	// pollInterval is short because every poll is a cheap local request and start time adds up
	// over every test package.
	pollInterval = 100 * time.Millisecond

	// startTimeoutEnv is envtest's own override, honoured for the same reason envtest has it:
	// slower machines (CI under load) need a longer start timeout without a code change.
	startTimeoutEnv = "KUBEBUILDER_CONTROLPLANE_START_TIMEOUT"
	// keepLogsEnv keeps the component logs after Stop, for debugging a passing-but-suspicious run.
	keepLogsEnv = "TESTENV_KEEP_LOGS"

	logEtcd              = "etcd.log"
	logAPIServer         = "kube-apiserver.log"
	logControllerManager = "kube-controller-manager.log"
	kubeconfigFile       = "kubeconfig"
)

// Options selects which parts of a control plane beyond etcd and kube-apiserver to run.
type Options struct {
	// GarbageCollector also runs kube-controller-manager (garbage collector, job and
	// ttl-after-finished controllers) against the apiserver, so ownerReference cascades happen as
	// in a real cluster. It adds several seconds to Start.
	GarbageCollector bool
	// Kueue also installs Kueue's CRDs and webhook configurations and runs the Kueue manager
	// (KueueVersion, from KueueAssetsDir) against the apiserver, with the pod integration only.
	// It implies GarbageCollector: Kueue's Workloads are owned by their pods, and without the
	// collector a deleted pod's Workload keeps its quota. It adds about 10 s to Start.
	Kueue bool
}

// Env is a running control plane. Config and Client act as cluster-admin (group system:masters);
// Kubeconfig is the path of an equivalent kubeconfig file for separate processes (the provisioner
// binary, kubectl). All three stay valid across RestartAPIServer.
type Env struct {
	Config     *rest.Config
	Client     kubernetes.Interface
	Kubeconfig string

	mu      sync.Mutex
	dir     string // everything this Env writes: etcd data, apiserver certs, logs, kubeconfig
	plane   *envtest.ControlPlane
	kcm     *child
	logs    []*os.File
	stopped bool
	apiDown bool // between StopAPIServer and StartAPIServer

	// With Options.Kueue: the Kueue process, the webhook configurations installed for it (with
	// their serving pair), and the dynamic client the Kueue helpers use.
	kueue      *child
	kueueHooks *envtest.WebhookInstallOptions
	dynOnce    sync.Once
	dyn        dynamic.Interface
	dynErr     error

	// Measured during Start, reported by Main under -v and logged by this package's tests, because
	// start time is the cost every test package pays and the number the team tunes against.
	startDuration time.Duration // Start called until everything requested is ready
	gcDuration    time.Duration // kube-controller-manager launched until its first cascade finished
}

// Start runs etcd and kube-apiserver (and kube-controller-manager with Options.GarbageCollector)
// from AssetsDir, each in one attempt with generous timeouts, and returns once the apiserver is
// ready and, when asked, the garbage collector has completed a cascade. On failure everything
// started is stopped and the error carries the tail of the failing component's log; the logs
// themselves are kept in the temporary folder the error names.
func Start(opts Options) (env *Env, err error) {
	begin := time.Now()
	timeout, err := startTimeout()
	if err != nil {
		return nil, err
	}
	assets, err := AssetsDir()
	if err != nil {
		return nil, err
	}
	if opts.Kueue {
		opts.GarbageCollector = true
		// Checked before anything starts: a missing build should cost no start-up.
		if _, err := KueueAssetsDir(); err != nil {
			return nil, fmt.Errorf("kueue requested: %w", err)
		}
	}
	if opts.GarbageCollector {
		if err := checkBinaries(assets, binControllerManager); err != nil {
			return nil, fmt.Errorf("garbage collector requested: %w", err)
		}
	}
	if reaped := reapOrphans(); len(reaped) > 0 {
		fmt.Fprintf(os.Stderr, "testenv: stopped components left running by dead processes in %s\n", strings.Join(reaped, ", "))
	}
	dir, err := os.MkdirTemp("", dirPattern)
	if err != nil {
		return nil, fmt.Errorf("creating the control plane folder: %w", err)
	}
	e := &Env{dir: dir}
	defer func() {
		if err != nil {
			if stopErr := e.teardown(true); stopErr != nil {
				err = errors.Join(err, stopErr)
			}
			err = fmt.Errorf("%w (component logs kept in %s)", err, dir)
		}
	}()
	if err := e.writeOwner(); err != nil {
		return nil, err
	}

	if err := e.startPlane(assets, timeout); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := e.waitReady(ctx); err != nil {
		return nil, fmt.Errorf("kube-apiserver healthy but not ready within %s: %w%s", readyTimeout, err, e.tail(logAPIServer))
	}
	if opts.Kueue {
		if err := e.installKueueCRDs(); err != nil {
			return nil, err
		}
	}
	if opts.GarbageCollector {
		if err := e.startGarbageCollector(assets); err != nil {
			return nil, err
		}
	}
	if opts.Kueue {
		if err := e.startKueue(); err != nil {
			return nil, err
		}
	}
	e.startDuration = time.Since(begin)
	return e, nil
}

// startTimeout returns the per-component start timeout: $KUBEBUILDER_CONTROLPLANE_START_TIMEOUT
// when set, else defaultStartTimeout.
func startTimeout() (time.Duration, error) {
	v := os.Getenv(startTimeoutEnv)
	if v == "" {
		return defaultStartTimeout, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive duration such as 3m", startTimeoutEnv, v)
	}
	return d, nil
}

// startPlane starts etcd and kube-apiserver with envtest's ControlPlane (rather than its
// Environment, which retries a failed start five times, waits only 5 s for the default namespace
// and cannot restart the apiserver), then provisions the admin user, client and kubeconfig.
func (e *Env) startPlane(assets string, startTimeout time.Duration) error {
	etcdLog, err := e.openLog(logEtcd)
	if err != nil {
		return err
	}
	apiLog, err := e.openLog(logAPIServer)
	if err != nil {
		return err
	}
	// Folders inside e.dir (instead of envtest's own temporary ones) so that envtest never deletes
	// them on a stop: RestartAPIServer relies on the serving certificates, the client CA and the
	// port surviving, so that existing clients and kubeconfigs keep working.
	etcdDir := filepath.Join(e.dir, "etcd")
	certDir := filepath.Join(e.dir, "apiserver")
	for _, d := range []string{etcdDir, certDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return fmt.Errorf("creating %s: %w", d, err)
		}
	}
	api := &envtest.APIServer{
		Path:         filepath.Join(assets, binAPIServer),
		CertDir:      certDir,
		StartTimeout: startTimeout,
		StopTimeout:  stopTimeout,
		Out:          apiLog,
		Err:          apiLog,
	}
	lightAPIServer(api.Configure())
	e.plane = &envtest.ControlPlane{
		Etcd: &envtest.Etcd{
			Path:         filepath.Join(assets, binEtcd),
			DataDir:      etcdDir,
			StartTimeout: startTimeout,
			StopTimeout:  stopTimeout,
			Out:          etcdLog,
			Err:          etcdLog,
		},
		APIServer: api,
	}
	// One at a time rather than ControlPlane.Start, so that a failure carries the log of the
	// component that failed and not the other one's noise.
	if err := e.plane.Etcd.Start(); err != nil {
		return fmt.Errorf("starting etcd from %s: %w%s", assets, err, e.tail(logEtcd))
	}
	api.EtcdURL = e.plane.Etcd.URL
	if err := api.Start(); err != nil {
		return fmt.Errorf("starting kube-apiserver from %s: %w%s", assets, err, e.tail(logAPIServer))
	}

	// QPS and Burst as envtest's Environment sets them: tests must not wait on client-side
	// throttling meant to protect a shared production apiserver.
	admin, err := e.plane.AddUser(envtest.User{Name: "testenv-admin", Groups: []string{"system:masters"}},
		&rest.Config{QPS: 1000, Burst: 2000})
	if err != nil {
		return fmt.Errorf("provisioning the admin user: %w", err)
	}
	e.Config = rest.CopyConfig(admin.Config())
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return fmt.Errorf("rendering the admin kubeconfig: %w", err)
	}
	e.Kubeconfig = filepath.Join(e.dir, kubeconfigFile)
	if err := os.WriteFile(e.Kubeconfig, kubeconfig, 0o600); err != nil {
		return fmt.Errorf("writing the admin kubeconfig: %w", err)
	}
	client, err := kubernetes.NewForConfig(e.Config)
	if err != nil {
		return fmt.Errorf("building the admin client: %w", err)
	}
	e.Client = client
	return nil
}

// lightAPIServer turns off apiserver work that no test here needs, to keep its CPU and start time
// down on a 2-core machine shared by parallel test packages. Everything a controller talks to
// (RBAC, admission except ServiceAccount as envtest sets it, watch cache, garbage collection
// semantics) stays as in a real cluster.
func lightAPIServer(args *envtest.Arguments) {
	// Priority and fairness bootstraps and continuously reconciles its flow schemas; plain
	// max-in-flight limits are ample for one test package.
	args.Set("enable-priority-and-fairness", "false")
	// No Service/EndpointSlice "kubernetes" reconcile loop: nothing here reaches the apiserver
	// through a Service.
	args.Set("endpoint-reconciler-type", "none")
	args.Set("profiling", "false")
	// Without it a stop waits a full minute (the request timeout) for open watches, which never
	// end by themselves, before the HTTP server gives up; with it the server answers 429 with
	// Retry-After while draining and then closes within 2 s, as HA production setups run it.
	// StopAPIServer and Stop depend on that.
	args.Set("shutdown-send-retry-after", "true")
	// Periodic etcd object-count and size polling only feeds metrics nobody scrapes here.
	args.Set("etcd-count-metric-poll-period", "0")
	args.Set("etcd-db-metric-poll-interval", "0")
}

// waitReady polls until /readyz answers ok and the system namespaces exist: /healthz, all envtest
// waits for, turns ok before the apiserver's bootstrap controllers have created them.
func (e *Env) waitReady(ctx context.Context) error {
	var last error
	err := wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
		body, err := e.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			last = fmt.Errorf("/readyz: %w: %s", err, strings.TrimSpace(string(body)))
			return false, nil
		}
		for _, ns := range []string{metav1.NamespaceDefault, metav1.NamespaceSystem} {
			if _, err := e.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
				last = fmt.Errorf("namespace %s: %w", ns, err)
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil && last != nil {
		return fmt.Errorf("%w (last: %w)", err, last)
	}
	return err
}

// StopAPIServer stops kube-apiserver (SIGTERM, then SIGKILL after a minute), leaving etcd and
// kube-controller-manager running, so that chaos tests can hold an outage open for as long as they
// need. Clients see connection errors until StartAPIServer. Calling it while stopped is a no-op.
func (e *Env) StopAPIServer() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return errors.New("stopping kube-apiserver: the environment is stopped")
	}
	if e.apiDown {
		return nil
	}
	// Down even on error: envtest's errors here are a stop that timed out (then it SIGKILLs) or
	// a process that could not be signalled (already gone).
	e.apiDown = true
	if err := e.plane.APIServer.Stop(); err != nil {
		return fmt.Errorf("stopping kube-apiserver: %w", err)
	}
	return nil
}

// StartAPIServer starts kube-apiserver again after StopAPIServer, on the same port, etcd,
// certificates and client CA, so Config, Client, Kubeconfig and every client built from them
// reconnect by themselves. It returns once the apiserver is ready again. Calling it while the
// apiserver runs is a no-op.
func (e *Env) StartAPIServer() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return errors.New("starting kube-apiserver: the environment is stopped")
	}
	// envtest would happily start a second apiserver (which fails on the port) and forget the
	// first, so whether one runs is tracked here.
	if !e.apiDown {
		return nil
	}
	// envtest re-runs its whole preparation on Start: with our CertDir and the port already set it
	// keeps both, reuses the serving certificate on disk and rewrites the same client CA.
	if err := e.plane.APIServer.Start(); err != nil {
		return fmt.Errorf("restarting kube-apiserver: %w%s", err, e.tail(logAPIServer))
	}
	e.apiDown = false
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := e.waitReady(ctx); err != nil {
		return fmt.Errorf("restarted kube-apiserver not ready within %s: %w%s", readyTimeout, err, e.tail(logAPIServer))
	}
	return nil
}

// RestartAPIServer is StopAPIServer then StartAPIServer: the apiserver goes away (dropping every
// watch and connection) and comes back with the same data, as in a control plane upgrade.
func (e *Env) RestartAPIServer() error {
	if err := e.StopAPIServer(); err != nil {
		return err
	}
	return e.StartAPIServer()
}

// Stop stops kube-controller-manager, kube-apiserver and etcd, and removes their folder (unless
// $TESTENV_KEEP_LOGS is set, in which case the logs stay and their folder is printed). A second
// call is a no-op.
func (e *Env) Stop() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return nil
	}
	e.stopped = true
	keep := os.Getenv(keepLogsEnv) != ""
	err := e.teardown(keep)
	if keep {
		fmt.Fprintf(os.Stderr, "testenv: component logs kept in %s\n", e.dir)
	}
	return err
}

// teardown stops whatever was started, in reverse order, and removes e.dir; with keepLogs only
// the etcd data (tens of MB of preallocated WAL) goes, so the logs survive for diagnosis. When a
// component may still be running (a stop failed), the folder and its owner file stay as they are,
// so that the next Start reaps it once this process is gone.
func (e *Env) teardown(keepLogs bool) error {
	var errs []error
	// Kueue first: it would otherwise spend its last seconds retrying a vanished apiserver.
	if err := e.stopKueue(); err != nil {
		errs = append(errs, err)
	}
	if e.kcm != nil {
		if err := e.kcm.stop(stopTimeout); err != nil {
			errs = append(errs, fmt.Errorf("stopping kube-controller-manager: %w", err))
		}
	}
	if e.plane != nil {
		if err := e.plane.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stopping etcd and kube-apiserver: %w", err))
		}
	}
	for _, f := range e.logs {
		if err := f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing %s: %w", f.Name(), err))
		}
	}
	e.logs = nil
	if len(errs) > 0 {
		return fmt.Errorf("%w (folder %s left for the next Start to clean)", errors.Join(errs...), e.dir)
	}
	if err := os.Remove(filepath.Join(e.dir, ownerFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the owner file: %w", err)
	}
	remove := e.dir
	if keepLogs {
		remove = filepath.Join(e.dir, "etcd")
	}
	if err := os.RemoveAll(remove); err != nil {
		return fmt.Errorf("removing %s: %w", remove, err)
	}
	return nil
}

// openLog creates a component's log file in e.dir and remembers it for closing on teardown.
func (e *Env) openLog(name string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(e.dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating the %s log: %w", name, err)
	}
	e.logs = append(e.logs, f)
	return f, nil
}

// tailLines is enough to show a crash's cause (a bad flag, a port in use, a panic's first frames)
// without flooding the test output.
const tailLines = 25

// tail returns the last lines of a component's log, formatted to append to an error, or "" when
// the log is empty or unreadable: an error message must not fail because its garnish did.
func (e *Env) tail(name string) string {
	data, err := os.ReadFile(filepath.Join(e.dir, name))
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return ""
	}
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
	}
	return fmt.Sprintf("\n--- last %d lines of %s ---\n%s", len(lines), name, strings.Join(lines, "\n"))
}

// timeRound keeps reported durations readable; start-up varies by far more than 10 ms anyway.
const timeRound = 10 * time.Millisecond

// gcSummary describes the garbage collector's start for Main's report, or "" when it is not run.
func (e *Env) gcSummary() string {
	if e.kcm == nil {
		return ""
	}
	return fmt.Sprintf(" (kube-controller-manager's garbage collector: first cascade %s after launch)", e.gcDuration.Round(timeRound))
}
