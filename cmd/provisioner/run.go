package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins"
	"github.com/jenkins-agent-provisioner/provisioner/internal/lifecycle"
	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
	"github.com/jenkins-agent-provisioner/provisioner/internal/wiring"
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
	logger, err := wiring.NewLogger(cfg.LogLevel, cfg.LogFormat, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "provisioner run: PROVISIONER_LOG_LEVEL (--log-level): %v\n", err)
		return 2
	}
	defer func() { _ = logger.Sync() }()
	wiring.RouteKlog(logger)
	if err := run(ctx, cfg, logger); err != nil {
		logger.Error("provisioner stopped", zap.Error(err))
		return 1
	}
	return 0
}

// run wires the parts (internal/wiring: Jenkins client, Kubernetes client, templates, controller,
// HTTP endpoints) from the settings, and leader election when asked.
func run(ctx context.Context, cfg *runConfig, logger *zap.Logger) error {
	restConfig, err := kubeConfig(cfg.Kubeconfig)
	if err != nil {
		return err
	}
	restConfig.QPS = float32(cfg.KubeQPS)
	restConfig.Burst = cfg.KubeBurst
	restConfig.UserAgent = "jenkins-agent-provisioner/" + version
	namespace := cfg.Namespace
	if namespace == "" {
		namespace = namespaceDefault()
	}
	var elector wiring.Elector
	if cfg.LeaderElect {
		elector = func(ctx context.Context, kube kubernetes.Interface, lead func(context.Context) error) error {
			return electAndLead(ctx, cfg, namespace, kube, logger, lead)
		}
	}

	app, err := wiring.New(ctx, wiring.Settings{
		Logger: logger,
		Jenkins: jenkins.Config{
			URL:   cfg.JenkinsURL,
			User:  cfg.JenkinsUser,
			Token: cfg.JenkinsToken,
			// Read by the client, again whenever the mounted Secret changes and after a 401.
			TokenFile: cfg.JenkinsTokenFile,
			CAFile:    cfg.JenkinsCAFile,
		},
		Kube:            restConfig,
		Templates:       cfg.Templates,
		TemplateOptions: podtemplate.Options{ProvisionerServiceAccount: cfg.ServiceAccount},
		Lifecycle: lifecycle.Config{
			Namespace:          namespace,
			JenkinsURL:         cfg.JenkinsURL,
			AgentJenkinsURL:    cfg.AgentJenkinsURL,
			AgentTunnel:        cfg.AgentTunnel,
			MaxAgents:          cfg.MaxAgents,
			KueueQueue:         cfg.KueueQueue,
			PollInterval:       cfg.PollInterval,
			BusyPollInterval:   cfg.BusyPollInterval,
			ReleaseGrace:       cfg.ReleaseGrace,
			OrphanGrace:        cfg.OrphanGrace,
			ReconnectGrace:     cfg.ReconnectGrace,
			UnschedulableGrace: cfg.UnschedulableFor,
			BackoffBase:        cfg.BackoffBase,
			BackoffMax:         cfg.BackoffMax,
			InstallationID:     cfg.InstallationID,
			MaxUnauthorized:    cfg.MaxUnauthorized,
		},
		Elector: elector,
	})
	// Wrong credentials or permissions will not fix themselves: stop with a message that names the
	// settings. Jenkins being down might: wiring logs it and the polls retry.
	if errors.Is(err, jenkins.ErrUnauthorized) || errors.Is(err, jenkins.ErrForbidden) {
		return fmt.Errorf("check PROVISIONER_JENKINS_URL, PROVISIONER_JENKINS_USER and the token: %w", err)
	}
	if err != nil {
		return err
	}

	// The status page names jobs, agents and templates: PROVISIONER_STATUS_LISTEN can keep it off
	// the address Prometheus and the probes use (127.0.0.1:PORT: kubectl port-forward only).
	mainHandler, what := app.Handler(), "status, metrics and health"
	if cfg.StatusListen != "" && cfg.StatusListen != cfg.Listen {
		mainHandler, what = app.HealthAndMetrics(), "metrics and health"
		statusAddr, stopStatus, err := app.Serve(cfg.StatusListen, app.StatusPage())
		if err != nil {
			return fmt.Errorf("PROVISIONER_STATUS_LISTEN: %w", err)
		}
		logger.Info("serving the status page", zap.String("address", statusAddr.String()))
		defer stopStatus()
	}
	addr, stopServing, err := app.Serve(cfg.Listen, mainHandler)
	if err != nil {
		return fmt.Errorf("PROVISIONER_LISTEN: %w", err)
	}
	logger.Info("serving "+what, zap.String("address", addr.String()))
	defer stopServing()

	return app.Run(ctx)
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
