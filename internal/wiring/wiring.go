// Package wiring builds the provisioner from its settings: the Jenkins client, the Kubernetes
// client, the template watcher, the controller, the metrics registry and the HTTP endpoints (status
// page, /metrics, /healthz, /readyz). `provisioner run`, the demo and the end-to-end rig all start
// the controller through it, so what they test is what production runs; only where the settings
// come from differs (flags and PROVISIONER_* variables, or a test's own world).
//
// It imports no test rig: the production binary links it.
package wiring

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins"
	"github.com/jenkins-agent-provisioner/provisioner/internal/lifecycle"
	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
)

// Settings are everything the parts are built from.
type Settings struct {
	// Logger is the root logger; each part gets a named child (jenkins, templates, lifecycle).
	Logger *zap.Logger
	// Jenkins is the client's configuration. Logger and Observe are filled in here: the client logs
	// under "jenkins" and its requests are counted in the registry.
	Jenkins jenkins.Config
	// Kube is the Kubernetes client's configuration, QPS, Burst and UserAgent as the caller wants them.
	Kube *rest.Config
	// Templates is the template file or directory of *.yaml files; TemplatesInterval how often it is
	// looked at again (0: podtemplate.DefaultWatchInterval).
	Templates         string
	TemplatesInterval time.Duration
	// TemplateOptions are the loader's installation-specific checks (the provisioner's own service
	// account, which templates may not name).
	TemplateOptions podtemplate.Options
	// Lifecycle is the controller's configuration.
	Lifecycle lifecycle.Config
	// Elector, when not nil, runs lead only while this replica holds leadership (see Run); nil
	// means this replica leads from the start.
	Elector Elector
}

// Elector runs lead while this replica is the leader and returns when ctx ends or leadership is
// lost, with lead's error or its own.
type Elector func(ctx context.Context, kube kubernetes.Interface, lead func(context.Context) error) error

// App is the provisioner with its parts built and nothing started.
type App struct {
	Logger     *zap.Logger
	Jenkins    *jenkins.Client
	Kube       kubernetes.Interface
	Templates  *podtemplate.Watcher
	Controller *lifecycle.Controller
	Registry   *prometheus.Registry

	elector     Elector
	leading     atomic.Bool
	leaderGauge prometheus.Gauge
}

// pingTimeout bounds the first look at Jenkins: long enough for a slow Jenkins to answer, short
// enough that a wrong URL is reported while someone is still watching the start.
const pingTimeout = 30 * time.Second

// New builds every part. Wrong Jenkins credentials or permissions are an error, since they will not
// fix themselves; Jenkins being unreachable is only logged: the polls retry and /readyz says so.
func New(ctx context.Context, s Settings) (*App, error) {
	if s.Logger == nil {
		s.Logger = zap.NewNop()
	}
	if s.Kube == nil {
		return nil, errors.New("wiring: no Kubernetes client configuration")
	}
	a := &App{Logger: s.Logger, Registry: prometheus.NewRegistry(), elector: s.Elector}
	a.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.leaderGauge = prometheus.NewGauge(prometheus.GaugeOpts{Name: "provisioner_leader", Help: "1 while this replica leads."})
	a.Registry.MustRegister(a.leaderGauge)

	jc, err := a.newJenkins(ctx, s.Jenkins)
	if err != nil {
		return nil, err
	}
	a.Jenkins = jc
	kube, err := kubernetes.NewForConfig(s.Kube)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	a.Kube = kube
	templates, err := podtemplate.NewWatcherWith(s.Templates, s.Logger.Named("templates"), s.TemplateOptions)
	if err != nil {
		return nil, fmt.Errorf("load templates from %s: %w", s.Templates, err)
	}
	templates.Interval = s.TemplatesInterval
	a.Templates = templates
	ctrl, err := lifecycle.New(s.Logger.Named("lifecycle"), jc, kube, templates, lifecycle.NewMetrics(a.Registry), s.Lifecycle)
	if err != nil {
		return nil, err
	}
	a.Controller = ctrl
	return a, nil
}

// newJenkins builds the Jenkins client with its request metrics and looks at Jenkins once.
func (a *App) newJenkins(ctx context.Context, cfg jenkins.Config) (*jenkins.Client, error) {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "provisioner_jenkins_requests_total", Help: "HTTP requests to Jenkins by endpoint and status code (0: no answer).",
	}, []string{"endpoint", "code"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "provisioner_jenkins_request_duration_seconds", Help: "Jenkins request latency by endpoint.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
	}, []string{"endpoint"})
	a.Registry.MustRegister(requests, latency)
	cfg.Logger = a.Logger.Named("jenkins")
	cfg.Observe = func(endpoint string, status int, d time.Duration) {
		requests.WithLabelValues(endpoint, strconv.Itoa(status)).Inc()
		latency.WithLabelValues(endpoint).Observe(d.Seconds())
	}
	jc, err := jenkins.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("jenkins client: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, pingTimeout)
	version, err := jc.Ping(pingCtx)
	cancel()
	switch {
	case errors.Is(err, jenkins.ErrUnauthorized), errors.Is(err, jenkins.ErrForbidden):
		return nil, fmt.Errorf("jenkins at %s refused user %q: %w", cfg.URL, cfg.User, err)
	case err != nil:
		a.Logger.Warn("Jenkins not reachable yet; polls will retry", zap.String("jenkinsURL", cfg.URL), zap.Error(err))
	default:
		a.Logger.Info("Jenkins reachable", zap.String("jenkinsURL", cfg.URL), zap.String("version", version))
	}
	return jc, nil
}

// Run watches the templates and runs the controller until ctx ends (through the Elector when one is
// set). It returns the controller's error, or the Elector's.
func (a *App) Run(ctx context.Context) error {
	go a.Templates.Run(ctx)
	if a.elector == nil {
		return a.lead(ctx)
	}
	return a.elector(ctx, a.Kube, a.lead)
}

// lead runs the controller while this replica leads, and says so in provisioner_leader and on the
// status page.
func (a *App) lead(ctx context.Context) error {
	a.leading.Store(true)
	a.leaderGauge.Set(1)
	defer func() {
		a.leading.Store(false)
		a.leaderGauge.Set(0)
	}()
	return a.Controller.Run(ctx)
}
