package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// controllerManagerArgs runs only the controllers whose effects our code relies on: the garbage
// collector (ownerReference cascades: an agent pod's Secret goes with the pod), the resourcequota
// controller (quota usage is released when pods go: without it a ResourceQuota, once full, refuses
// every later pod), and the job and ttl-after-finished controllers (cleanup Jobs). No leader election (one instance, and no wait
// for a lease on start), no per-controller service accounts (the token controller is not running
// to mint them) and no serving port (nothing scrapes it, and it would need delegated auth).
func controllerManagerArgs(kubeconfig string) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--controllers=garbagecollector,resourcequota,job,ttl-after-finished",
		"--leader-elect=false",
		"--use-service-account-credentials=false",
		"--secure-port=0",
		// Level 2 logs the garbage collector's sync and each deletion it decides, the lines a
		// failed cascade test needs, at negligible cost.
		"--v=2",
	}
}

// startGarbageCollector launches kube-controller-manager and returns once its garbage collector
// has completed a real cascade. That probe, rather than a log line or a lease, is the signal
// because it is exactly what callers rely on, and it does not depend on log wording or on which
// informers happen to sync first. The process writes to kube-controller-manager.log in e.dir.
func (e *Env) startGarbageCollector(assets string) error {
	out, err := e.openLog(logControllerManager)
	if err != nil {
		return err
	}
	begin := time.Now()
	kcm, err := startChild(filepath.Join(assets, binControllerManager), controllerManagerArgs(e.Kubeconfig), out)
	if err != nil {
		return fmt.Errorf("starting kube-controller-manager: %w", err)
	}
	e.kcm = kcm

	ctx, cancel := context.WithTimeout(context.Background(), gcReadyTimeout)
	defer cancel()
	if err := e.probeGarbageCollector(ctx); err != nil {
		return fmt.Errorf("kube-controller-manager's garbage collector did not complete a cascade within %s: %w%s",
			gcReadyTimeout, err, e.tail(logControllerManager))
	}
	e.gcDuration = time.Since(begin)
	return nil
}

// probeGarbageCollector creates an owner ConfigMap and a dependent pointing at it in kube-system
// (where no test looks), deletes the owner, and waits for the collector to delete the dependent.
// It gives up at once if kube-controller-manager exits: waiting out the timeout would only hide
// the crash.
func (e *Env) probeGarbageCollector(ctx context.Context) error {
	cms := e.Client.CoreV1().ConfigMaps(metav1.NamespaceSystem)
	owner, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "testenv-gc-probe-owner-",
	}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("creating the probe owner: %w", err)
	}
	dependent, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "testenv-gc-probe-dependent-",
		OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID,
		}},
	}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("creating the probe dependent: %w", err)
	}
	background := metav1.DeletePropagationBackground
	if err := cms.Delete(ctx, owner.Name, metav1.DeleteOptions{PropagationPolicy: &background}); err != nil {
		return fmt.Errorf("deleting the probe owner: %w", err)
	}

	pollCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-e.kcm.done:
			cancel()
		case <-pollCtx.Done():
		}
	}()
	err = wait.PollUntilContextCancel(pollCtx, pollInterval, true, func(ctx context.Context) (bool, error) {
		_, err := cms.Get(ctx, dependent.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		// Other errors (a slow apiserver, a timeout) are retried until the deadline.
		return false, nil
	})
	select {
	case <-e.kcm.done:
		return fmt.Errorf("kube-controller-manager exited: %v", e.kcm.err)
	default:
	}
	if err != nil {
		return fmt.Errorf("probe ConfigMap %s/%s still present after its owner was deleted: %w",
			metav1.NamespaceSystem, dependent.Name, err)
	}
	return nil
}

// child is a process envtest does not manage for us (kube-controller-manager).
type child struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and err is set
	err  error
}

// startChild starts path with args, both output streams to out, tied to this process's life
// (see childSysProcAttr) so a killed test binary does not leave it running on a shared machine.
func startChild(path string, args []string, out io.Writer) (*child, error) {
	cmd := exec.Command(path, args...)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = childSysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// stop sends SIGTERM and waits up to timeout for the process to exit, then SIGKILLs it. An exit
// caused by our own signal is success; an earlier crash is reported, since it may explain a
// failed test.
func (c *child) stop(timeout time.Duration) error {
	select {
	case <-c.done:
		return fmt.Errorf("had already exited: %v", c.err)
	default:
	}
	// ErrProcessDone: it exited between the check above and the signal, which is what we want.
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("SIGTERM: %w", err)
	}
	select {
	case <-c.done:
		return nil
	case <-time.After(timeout):
	}
	if err := c.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("SIGKILL after %s: %w", timeout, err)
	}
	<-c.done
	return fmt.Errorf("did not exit within %s of SIGTERM; killed", timeout)
}
