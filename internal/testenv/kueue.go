package testenv

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

const (
	logKueue        = "kueue.log"
	kueueConfigFile = "kueue-config.yaml"
	// kueueReadyTimeout bounds Kueue's start until its webhooks answer; about 8 s on 2 cores.
	kueueReadyTimeout = 3 * time.Minute

	// kueueMetricsCertDir is where Kueue's main (cmd/kueue/main.go, v0.17.0) reads the metrics
	// server's certificate when internal cert management is off. The path is a literal there, not
	// a setting (the Configuration has no field for it and metrics.bindAddress "0" does not skip
	// the certwatcher), so the only way to run Kueue without its cert rotator is a pair at this
	// path. Any pair will do: nothing here scrapes the metrics.
	kueueMetricsCertDir = "/etc/kueue/metrics/certs"

	// namespaceNameLabel is set on every namespace by the apiserver; Kueue's selectors use it.
	namespaceNameLabel = "kubernetes.io/metadata.name"
)

// kueueNamespacedWebhooks are the webhooks Kueue's release manifests
// (config/components/webhook/kustomization.yaml) give a namespace selector excluding kube-system
// and Kueue's namespace, so that Kueue going down never blocks the system's own pods. The others
// act on Kueue's cluster-scoped objects or on jobs Kueue itself filters by namespace.
var kueueNamespacedWebhooks = map[string]bool{
	"mpod.kb.io": true, "mdeployment.kb.io": true, "mstatefulset.kb.io": true,
	"vpod.kb.io": true, "vdeployment.kb.io": true, "vstatefulset.kb.io": true,
}

// installKueueCRDs creates Kueue's namespace and CRDs. It runs before kube-controller-manager
// starts: the garbage collector and the resourcequota controller learn resources from discovery
// when they start and then only every 30 s, and until the collector watches Workloads a deleted
// pod's Workload (and with it its quota) stays for up to that long.
func (e *Env) installKueueCRDs() error {
	assets, err := KueueAssetsDir()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), kueueReadyTimeout)
	defer cancel()
	if _, err := e.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: KueueNamespace},
	}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating Kueue's namespace %s: %w", KueueNamespace, err)
	}
	if _, err := envtest.InstallCRDs(e.Config, envtest.CRDInstallOptions{
		Paths:              []string{filepath.Join(assets, kueueCRDDir)},
		ErrorIfPathMissing: true,
		MaxTime:            kueueReadyTimeout,
	}); err != nil {
		return fmt.Errorf("installing Kueue's CRDs from %s: %w", assets, err)
	}
	return nil
}

// startKueue installs Kueue's webhook configurations and runs the Kueue manager against the
// apiserver (after installKueueCRDs), returning once its webhooks answer through the apiserver.
// Queues are the caller's business (CreateClusterQueue and friends); a LocalQueue reporting
// Active is the sign that Kueue admits into it.
func (e *Env) startKueue() error {
	assets, err := KueueAssetsDir()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), kueueReadyTimeout)
	defer cancel()

	// envtest generates a serving pair and a CA, rewrites every webhook's service reference into
	// https://127.0.0.1:<free port>/<path> and installs the configurations: the apiserver then
	// calls the Kueue process directly, with no Service or cert-manager in between.
	e.kueueHooks = &envtest.WebhookInstallOptions{
		Paths:            []string{filepath.Join(assets, kueueWebhookDir)},
		LocalServingHost: "127.0.0.1",
		MaxTime:          kueueReadyTimeout,
	}
	if err := e.kueueHooks.PrepWithoutInstalling(); err != nil {
		return fmt.Errorf("preparing Kueue's webhooks: %w", err)
	}
	adjustKueueWebhooks(e.kueueHooks)
	if err := e.kueueHooks.Install(e.Config); err != nil {
		return fmt.Errorf("installing Kueue's webhook configurations: %w", err)
	}
	if err := ensureKueueMetricsCerts(kueueMetricsCertDir, e.kueueHooks.LocalServingCertDir); err != nil {
		return err
	}

	healthPort, err := freePort()
	if err != nil {
		return fmt.Errorf("choosing Kueue's health port: %w", err)
	}
	config := filepath.Join(e.dir, kueueConfigFile)
	if err := os.WriteFile(config, []byte(kueueConfiguration(e.kueueHooks, healthPort)), 0o600); err != nil {
		return fmt.Errorf("writing Kueue's configuration: %w", err)
	}
	out, err := e.openLog(logKueue)
	if err != nil {
		return err
	}
	e.kueue, err = startChild(filepath.Join(assets, kueueBinary),
		[]string{"--config=" + config, "--kubeconfig=" + e.Kubeconfig}, out)
	if err != nil {
		return fmt.Errorf("starting Kueue: %w", err)
	}
	if err := e.waitKueueReady(ctx, healthPort); err != nil {
		return fmt.Errorf("kueue %s not ready within %s: %w%s", KueueVersion, kueueReadyTimeout, err, e.tail(logKueue))
	}
	return nil
}

// adjustKueueWebhooks does to the raw manifests what Kueue's kustomization does: names prefixed
// kueue- (two installations' configurations must not collide with other operators' generic
// "mutating-webhook-configuration") and the namespace selectors of kueueNamespacedWebhooks.
func adjustKueueWebhooks(o *envtest.WebhookInstallOptions) {
	selector := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
		Key: namespaceNameLabel, Operator: metav1.LabelSelectorOpNotIn,
		Values: []string{metav1.NamespaceSystem, KueueNamespace},
	}}}
	for _, c := range o.MutatingWebhooks {
		c.Name = "kueue-" + c.Name
		for i := range c.Webhooks {
			if kueueNamespacedWebhooks[c.Webhooks[i].Name] {
				c.Webhooks[i].NamespaceSelector = selector.DeepCopy()
			}
		}
	}
	for _, c := range o.ValidatingWebhooks {
		c.Name = "kueue-" + c.Name
		for i := range c.Webhooks {
			if kueueNamespacedWebhooks[c.Webhooks[i].Name] {
				c.Webhooks[i].NamespaceSelector = selector.DeepCopy()
			}
		}
	}
}

// kueueConfiguration is the config.kueue.x-k8s.io/v1beta2 Configuration the test Kueue runs with:
// webhooks served where envtest pointed the apiserver, no cert rotator (envtest made the pair), no
// leader election (one replica, and no lease wait on start), only the pod integration (agents
// are plain pods), the same managed-namespace rule as the webhooks, no metrics listener (parallel
// test packages would fight over :8443) and no visibility API server (it needs an APIService and
// its own port). manageJobsWithoutQueueName stays false: pods without a queue label are left alone,
// as in a cluster where only some teams use Kueue.
func kueueConfiguration(hooks *envtest.WebhookInstallOptions, healthPort int) string {
	return fmt.Sprintf(`apiVersion: config.kueue.x-k8s.io/v1beta2
kind: Configuration
namespace: %[1]s
health:
  healthProbeBindAddress: 127.0.0.1:%[2]d
metrics:
  bindAddress: "0"
webhook:
  host: %[3]s
  port: %[4]d
  certDir: %[5]s
leaderElection:
  leaderElect: false
internalCertManagement:
  enable: false
manageJobsWithoutQueueName: false
managedJobsNamespaceSelector:
  matchExpressions:
  - key: %[6]s
    operator: NotIn
    values: [%[7]s, %[1]s]
integrations:
  frameworks:
  - pod
featureGates:
  VisibilityOnDemand: false
`, KueueNamespace, healthPort, hooks.LocalServingHost, hooks.LocalServingPort, strconv.Quote(hooks.LocalServingCertDir),
		namespaceNameLabel, metav1.NamespaceSystem)
}

// ensureKueueMetricsCerts puts a valid pair at dir unless one is there. The first writer on a
// machine fills a temporary folder and renames it into place, so a concurrent start never reads
// a certificate beside another run's key; later starts only check.
func ensureKueueMetricsCerts(dir, from string) error {
	crt, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if _, err := tls.LoadX509KeyPair(crt, key); err == nil {
		return nil
	}
	fail := func(err error) error {
		return fmt.Errorf("kueue %s reads its metrics certificate from the fixed path %s when internal cert management is off, "+
			"and there is no valid pair there: %w (create the folder writable for this user, or run as root)", KueueVersion, dir, err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fail(err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".certs-")
	if err != nil {
		return fail(err)
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	for _, name := range []string{"tls.crt", "tls.key"} {
		data, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			return fail(err)
		}
		if err := os.WriteFile(filepath.Join(tmp, name), data, 0o600); err != nil {
			return fail(err)
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Someone else's pair got there first (or an unusable folder is in the way): use theirs
		// if it is valid, else replace the files one by one.
		if _, err := tls.LoadX509KeyPair(crt, key); err == nil {
			return nil
		}
		for _, name := range []string{"tls.crt", "tls.key"} {
			data, err := os.ReadFile(filepath.Join(tmp, name))
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, name), data, 0o600)
			}
			if err != nil {
				return fail(err)
			}
		}
	}
	if _, err := tls.LoadX509KeyPair(crt, key); err != nil {
		return fail(err)
	}
	return nil
}

// freePort asks the kernel for a free port on 127.0.0.1. It can be taken again before Kueue binds
// it; the start then fails with Kueue's "address already in use" in the error, never silently.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitKueueReady polls Kueue's /readyz (true once its webhook server listens) and then a dry-run
// create of a ResourceFlavor, which goes through Kueue's mutating and validating webhooks by way
// of the apiserver: the path every later request takes. It gives up at once if Kueue exits.
func (e *Env) waitKueueReady(ctx context.Context, healthPort int) error {
	pollCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-e.kueue.done:
			cancel()
		case <-pollCtx.Done():
		}
	}()
	dyn, err := e.dynamicClient()
	if err != nil {
		return err
	}
	probe := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": kueueAPIVersion, "kind": "ResourceFlavor",
		"metadata": map[string]any{"name": "testenv-kueue-probe"},
	}}
	url := fmt.Sprintf("http://127.0.0.1:%d/readyz", healthPort)
	var last error
	err = wait.PollUntilContextCancel(pollCtx, pollInterval, true, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			last = fmt.Errorf("%s: %w", url, err)
			return false, nil
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			last = fmt.Errorf("%s: %s", url, resp.Status)
			return false, nil
		}
		_, err = dyn.Resource(ResourceFlavorResource).Create(ctx, probe.DeepCopy(), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			last = fmt.Errorf("dry-run ResourceFlavor through Kueue's webhooks: %w", err)
			return false, nil
		}
		return true, nil
	})
	select {
	case <-e.kueue.done:
		return fmt.Errorf("kueue exited: %v", e.kueue.err)
	default:
	}
	if err != nil && last != nil {
		return fmt.Errorf("%w (last: %w)", err, last)
	}
	return err
}

// stopKueue stops the Kueue process and removes the webhook configurations and their serving
// certificates, so the apiserver (if it outlives this) no longer calls a process that is gone.
func (e *Env) stopKueue() error {
	var errs []error
	if e.kueue != nil {
		if err := e.kueue.stop(stopTimeout); err != nil {
			errs = append(errs, fmt.Errorf("stopping Kueue: %w", err))
		}
	}
	if e.kueueHooks != nil {
		if err := e.kueueHooks.Cleanup(); err != nil {
			errs = append(errs, fmt.Errorf("removing Kueue's webhook certificates: %w", err))
		}
	}
	return errors.Join(errs...)
}
