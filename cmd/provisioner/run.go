package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-logr/zapr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins"
	"github.com/jenkins-agent-provisioner/provisioner/internal/lifecycle"
	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
	"github.com/jenkins-agent-provisioner/provisioner/internal/statuspage"
)

func runCommand(ctx context.Context, args []string, stderr io.Writer) int {
	cfg, err := loadRunConfig(args, stderr)
	if errors.Is(err, errHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "provisioner run: %v\n", err)
		return 2
	}
	logger, err := newLogger(cfg.LogLevel, cfg.LogFormat, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "provisioner run: %v\n", err)
		return 2
	}
	defer func() { _ = logger.Sync() }()
	routeKlog(logger)
	if err := run(ctx, cfg, logger); err != nil {
		logger.Error("provisioner stopped", zap.Error(err))
		return 1
	}
	return 0
}

// run wires the parts: Jenkins client, Kubernetes client, templates, controller, HTTP endpoints, and
// leader election when asked.
func run(ctx context.Context, cfg *runConfig, logger *zap.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	jenkinsRequests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "provisioner_jenkins_requests_total", Help: "HTTP requests to Jenkins by endpoint and status code (0: no answer).",
	}, []string{"endpoint", "code"})
	jenkinsLatency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "provisioner_jenkins_request_duration_seconds", Help: "Jenkins request latency by endpoint.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
	}, []string{"endpoint"})
	leaderGauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "provisioner_leader", Help: "1 while this replica leads."})
	reg.MustRegister(jenkinsRequests, jenkinsLatency, leaderGauge)

	jc, err := jenkins.New(jenkins.Config{
		URL:   cfg.JenkinsURL,
		User:  cfg.JenkinsUser,
		Token: cfg.JenkinsToken,
		// Read by the client, again whenever the mounted Secret changes and after a 401.
		TokenFile: cfg.JenkinsTokenFile,
		CAFile:    cfg.JenkinsCAFile,
		Logger:    logger.Named("jenkins"),
		Observe: func(endpoint string, status int, d time.Duration) {
			jenkinsRequests.WithLabelValues(endpoint, strconv.Itoa(status)).Inc()
			jenkinsLatency.WithLabelValues(endpoint).Observe(d.Seconds())
		},
	})
	if err != nil {
		return fmt.Errorf("jenkins client: %w", err)
	}
	// Wrong credentials or permissions will not fix themselves: stop with a message that names them.
	// Jenkins being down might: carry on, not ready, and let the polls retry.
	pingCtx, cancelPing := context.WithTimeout(ctx, 30*time.Second)
	jenkinsVersion, err := jc.Ping(pingCtx)
	cancelPing()
	switch {
	case errors.Is(err, jenkins.ErrUnauthorized), errors.Is(err, jenkins.ErrForbidden):
		return fmt.Errorf("jenkins at PROVISIONER_JENKINS_URL=%s refused PROVISIONER_JENKINS_USER=%q: %w", cfg.JenkinsURL, cfg.JenkinsUser, err)
	case err != nil:
		logger.Warn("Jenkins not reachable yet; polls will retry", zap.String("jenkinsURL", cfg.JenkinsURL), zap.Error(err))
	default:
		logger.Info("Jenkins reachable", zap.String("jenkinsURL", cfg.JenkinsURL), zap.String("version", jenkinsVersion))
	}

	restConfig, err := kubeConfig(cfg.Kubeconfig)
	if err != nil {
		return err
	}
	restConfig.QPS = float32(cfg.KubeQPS)
	restConfig.Burst = cfg.KubeBurst
	restConfig.UserAgent = "jenkins-agent-provisioner/" + version
	kube, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	namespace := cfg.Namespace
	if namespace == "" {
		namespace = namespaceDefault()
	}
	templates, err := podtemplate.NewWatcherWith(cfg.Templates, logger.Named("templates"),
		podtemplate.Options{ProvisionerServiceAccount: cfg.ServiceAccount})
	if err != nil {
		return fmt.Errorf("load templates from PROVISIONER_TEMPLATES=%s: %w", cfg.Templates, err)
	}
	go templates.Run(ctx)

	ctrl, err := lifecycle.New(logger.Named("lifecycle"), jc, kube, templates, lifecycle.NewMetrics(reg), lifecycle.Config{
		Namespace:          namespace,
		JenkinsURL:         cfg.JenkinsURL,
		AgentJenkinsURL:    cfg.AgentJenkinsURL,
		AgentTunnel:        cfg.AgentTunnel,
		MaxAgents:          cfg.MaxAgents,
		PollInterval:       cfg.PollInterval,
		BusyPollInterval:   cfg.BusyPollInterval,
		ReleaseGrace:       cfg.ReleaseGrace,
		OrphanGrace:        cfg.OrphanGrace,
		UnschedulableGrace: cfg.UnschedulableFor,
		BackoffBase:        cfg.BackoffBase,
		BackoffMax:         cfg.BackoffMax,
		InstallationID:     cfg.InstallationID,
		MaxUnauthorized:    cfg.MaxUnauthorized,
	})
	if err != nil {
		return err
	}

	var leading atomic.Bool
	// The status page names jobs, agents and templates: PROVISIONER_STATUS_LISTEN can keep it off
	// the address Prometheus and the probes use (127.0.0.1:PORT: kubectl port-forward only).
	mainHandler, what := endpoints(reg, ctrl, &leading, cfg.LeaderElect), "status, metrics and health"
	if cfg.StatusListen != "" && cfg.StatusListen != cfg.Listen {
		mainHandler, what = healthAndMetrics(reg, ctrl, &leading, cfg.LeaderElect), "metrics and health"
		statusMux := http.NewServeMux()
		statusMux.Handle("GET /{$}", statusPage(ctrl, &leading, cfg.LeaderElect))
		stop, err := serveHTTP(ctx, "PROVISIONER_STATUS_LISTEN", cfg.StatusListen, statusMux, "status page", logger)
		if err != nil {
			return err
		}
		defer stop()
	}
	stop, err := serveHTTP(ctx, "PROVISIONER_LISTEN", cfg.Listen, mainHandler, what, logger)
	if err != nil {
		return err
	}
	defer stop()

	lead := func(ctx context.Context) error {
		leading.Store(true)
		leaderGauge.Set(1)
		defer func() {
			leading.Store(false)
			leaderGauge.Set(0)
		}()
		return ctrl.Run(ctx)
	}
	if !cfg.LeaderElect {
		return lead(ctx)
	}
	return electAndLead(ctx, cfg, namespace, kube, logger, lead)
}

// electAndLead runs lead only while this replica holds the Lease. A replica that loses the Lease
// without being asked to stop returns an error, so Kubernetes restarts it as a clean follower.
func electAndLead(ctx context.Context, cfg *runConfig, namespace string, kube kubernetes.Interface, logger *zap.Logger, lead func(context.Context) error) error {
	identity := os.Getenv("POD_NAME")
	if identity == "" {
		host, _ := os.Hostname()
		identity = host + "-" + utilrand.String(5)
	}
	leaseNamespace := cfg.LeaderNamespace
	if leaseNamespace == "" {
		leaseNamespace = namespace
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: cfg.LeaderLease, Namespace: leaseNamespace},
		Client:     kube.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
	}
	var runErr error
	lost := make(chan struct{})
	// lead returning (the controller gave up, e.g. Jenkins refuses the token) ends the election
	// too, and ReleaseOnCancel gives the Lease up at once: a standby need not wait for it to expire.
	electCtx, stopElection := context.WithCancel(ctx)
	defer stopElection()
	var started atomic.Bool
	leadDone := make(chan struct{})
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   cfg.LeaseDuration,
		RenewDeadline:   cfg.LeaseDuration * 2 / 3,
		RetryPeriod:     max(cfg.LeaseDuration/7, 200*time.Millisecond),
		ReleaseOnCancel: true,
		Name:            cfg.LeaderLease,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				logger.Info("leading", zap.String("identity", identity))
				started.Store(true)
				defer close(leadDone)
				runErr = lead(ctx)
				stopElection()
			},
			OnStoppedLeading: func() {
				logger.Info("not leading", zap.String("identity", identity))
				close(lost)
			},
			OnNewLeader: func(current string) {
				if current != identity {
					logger.Info("following", zap.String("leader", current))
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	logger.Info("waiting for leadership", zap.String("lease", leaseNamespace+"/"+cfg.LeaderLease), zap.String("identity", identity))
	le.Run(electCtx)
	if started.Load() {
		<-leadDone // the controller's steps end before the process does
	}
	if runErr != nil {
		return runErr
	}
	if ctx.Err() == nil {
		select {
		case <-lost:
			return fmt.Errorf("lost the leader lease %s/%s", leaseNamespace, cfg.LeaderLease)
		default:
		}
	}
	return runErr
}

// serveHTTP serves handler on addr (named by its setting in errors) until stop is called.
func serveHTTP(ctx context.Context, setting, addr string, handler http.Handler, what string, logger *zap.Logger) (stop func(), err error) {
	srv := &http.Server{Addr: addr, Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s=%s: %w", setting, addr, err)
	}
	logger.Info("serving "+what, zap.String("address", ln.Addr().String()))
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("http server", zap.String("address", addr), zap.Error(err))
		}
	}()
	return func() {
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}, nil
}

// endpoints serves the status page, /metrics, /healthz and /readyz.
func endpoints(reg *prometheus.Registry, ctrl *lifecycle.Controller, leading *atomic.Bool, elect bool) http.Handler {
	mux := healthAndMetrics(reg, ctrl, leading, elect)
	mux.Handle("GET /{$}", statusPage(ctrl, leading, elect))
	return mux
}

// healthAndMetrics serves /metrics, /healthz and /readyz.
func healthAndMetrics(reg *prometheus.Registry, ctrl *lifecycle.Controller, leading *atomic.Bool, elect bool) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		// A follower is ready: it only waits. The leader is ready once its caches are synced and its
		// last poll of Jenkins succeeded.
		if elect && !leading.Load() {
			_, _ = io.WriteString(w, "ok: following\n")
			return
		}
		if !ctrl.Ready() {
			http.Error(w, "not ready: caches not synced or Jenkins not reachable", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	return mux
}

// statusPage is the HTML status page at /.
func statusPage(ctrl *lifecycle.Controller, leading *atomic.Bool, elect bool) http.Handler {
	return statuspage.Handler(ctrl.Status, func() string {
		if !elect || leading.Load() {
			return "leader"
		}
		return "follower"
	})
}

// kubeConfig uses the kubeconfig named (flag or PROVISIONER_KUBECONFIG), else $KUBECONFIG, else the
// in-cluster service account.
func kubeConfig(path string) (*rest.Config, error) {
	if path == "" {
		path = os.Getenv("KUBECONFIG")
	}
	if path == "" {
		c, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("no kubeconfig (PROVISIONER_KUBECONFIG, KUBECONFIG) and not in a cluster: %w", err)
		}
		return c, nil
	}
	c, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", path, err)
	}
	return c, nil
}

// routeKlog sends client-go's own log lines (klog) through our logger, so they share its format
// and destination instead of appearing as unstructured lines on stderr.
func routeKlog(logger *zap.Logger) {
	klog.SetLogger(zapr.NewLogger(logger.Named("client-go")))
}

func newLogger(level, format string, out io.Writer) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("PROVISIONER_LOG_LEVEL (--log-level): %w", err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if format == "console" {
		enc = zapcore.NewConsoleEncoder(encCfg)
	} else {
		enc = zapcore.NewJSONEncoder(encCfg)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(out), lvl)), nil
}
