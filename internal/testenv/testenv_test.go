package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// env is the package's one control plane, with the garbage collector, as every consumer of this
// package will run it.
var env *Env

func TestMain(m *testing.M) { Main(m, Options{GarbageCollector: true}, &env) }

// gcDeadline bounds a cascade in the tests; the collector normally needs well under a second once
// synced, so hitting this means it is not working, not that it is slow.
const gcDeadline = 60 * time.Second

// newNamespace creates a namespace of the test's own, so tests sharing the control plane never
// see each other's objects.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns, err := env.Client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "testenv-", Labels: map[string]string{"test": "testenv"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating a namespace: %v", err)
	}
	return ns.Name
}

// agentPod is a pod shaped like the ones the provisioner creates, so the round trip covers the
// field kinds we depend on (labels, annotations, command, env, restart policy, node selector).
func agentPod(ns, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: ns,
			Labels: map[string]string{
				"app.kubernetes.io/managed-by":       "jenkins-agent-provisioner",
				"jenkins-agent-provisioner/template": "maven",
			},
			Annotations: map[string]string{"jenkins-agent-provisioner/node-name": name},
		},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			NodeSelector:  map[string]string{"kubernetes.io/os": "linux"},
			Containers: []corev1.Container{{
				Name:    "jnlp",
				Image:   "jenkins/inbound-agent:3283.v92c105e0f819-1",
				Command: []string{"/usr/local/bin/jenkins-agent"},
				Env:     []corev1.EnvVar{{Name: "JENKINS_AGENT_NAME", Value: name}},
			}},
		},
	}
}

// setFields keeps only the fields agentPod sets, so a read-back compares what we wrote and not
// the apiserver's defaults (which are its business and change between releases).
func setFields(p *corev1.Pod) *corev1.Pod {
	out := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, Labels: p.Labels, Annotations: p.Annotations},
		Spec:       corev1.PodSpec{RestartPolicy: p.Spec.RestartPolicy, NodeSelector: p.Spec.NodeSelector},
	}
	for _, c := range p.Spec.Containers {
		out.Spec.Containers = append(out.Spec.Containers, corev1.Container{
			Name: c.Name, Image: c.Image, Command: c.Command, Env: c.Env,
		})
	}
	return out
}

func TestNamespaceAndPodRoundTrip(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)

	gotNS, err := env.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading namespace %s back: %v", ns, err)
	}
	if diff := cmp.Diff(map[string]string{"test": "testenv"}, gotNS.Labels,
		// The apiserver adds this label to every namespace; it is not ours to compare.
		cmpIgnoreKey(corev1.LabelMetadataName)); diff != "" {
		t.Errorf("namespace labels (-want +got):\n%s", diff)
	}

	want := agentPod(ns, "maven-b2c4d")
	if _, err := env.Client.CoreV1().Pods(ns).Create(ctx, want, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating pod: %v", err)
	}
	got, err := env.Client.CoreV1().Pods(ns).Get(ctx, want.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading pod back: %v", err)
	}
	if diff := cmp.Diff(setFields(want), setFields(got)); diff != "" {
		t.Errorf("pod read back (-want +got):\n%s", diff)
	}
	// The object really went through an apiserver: it has an identity and, with no scheduler or
	// kubelet, it stays unbound and Pending.
	if got.UID == "" || got.ResourceVersion == "" {
		t.Errorf("pod has no server-assigned identity: uid %q resourceVersion %q", got.UID, got.ResourceVersion)
	}
	if got.Spec.NodeName != "" || got.Status.Phase != corev1.PodPending {
		t.Errorf("pod nodeName %q phase %q, want unbound and %s", got.Spec.NodeName, got.Status.Phase, corev1.PodPending)
	}
}

// cmpIgnoreKey ignores one map key in a map[string]string comparison.
func cmpIgnoreKey(key string) cmp.Option {
	return cmp.FilterPath(func(p cmp.Path) bool {
		mi, ok := p.Last().(cmp.MapIndex)
		return ok && mi.Key().String() == key
	}, cmp.Ignore())
}

func TestServerVersionIsTheStampedBuild(t *testing.T) {
	v, err := env.Client.Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("discovery ServerVersion: %v", err)
	}
	if v.GitVersion != KubernetesVersion {
		assets, _ := AssetsDir()
		t.Errorf("server reports %s, want %s: binaries in %s are not the pinned build", v.GitVersion, KubernetesVersion, assets)
	}
	t.Logf("control plane ready in %s; garbage collector's first cascade %s after launch", env.startDuration, env.gcDuration)
}

// TestKubeconfigFile reads the kubeconfig file the way a separate process (the provisioner
// binary, kubectl) does, through clientcmd, and uses it.
func TestKubeconfigFile(t *testing.T) {
	cfg, err := clientcmd.BuildConfigFromFlags("", env.Kubeconfig)
	if err != nil {
		t.Fatalf("loading %s: %v", env.Kubeconfig, err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("client from %s: %v", env.Kubeconfig, err)
	}
	if _, err := client.CoreV1().Namespaces().Get(t.Context(), metav1.NamespaceDefault, metav1.GetOptions{}); err != nil {
		t.Fatalf("reading namespace default with %s: %v", env.Kubeconfig, err)
	}
}

func TestGarbageCollectorDeletesOwnedSecret(t *testing.T) {
	ns := newNamespace(t)
	latency := checkCascade(t, ns, "maven-gc7x2")
	t.Logf("owned Secret deleted %s after its Pod", latency)
}

// checkCascade creates a Pod, a Secret owned by it (as podtemplate.SetSecretOwner does) and an
// unowned control Secret, deletes the Pod and waits for the owned Secret to go, returning how
// long that took. The control Secret must survive, or the owned one may have gone for another
// reason than its owner.
func checkCascade(t *testing.T, ns, name string) time.Duration {
	t.Helper()
	ctx := t.Context()
	pod, err := env.Client.CoreV1().Pods(ns).Create(ctx, agentPod(ns, name), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod: %v", err)
	}
	owned := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID}},
		},
		StringData: map[string]string{"jenkins-agent-secret": "0123456789abcdef"},
	}
	if _, err := env.Client.CoreV1().Secrets(ns).Create(ctx, owned, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating owned secret: %v", err)
	}
	control := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name + "-unowned", Namespace: ns}}
	if _, err := env.Client.CoreV1().Secrets(ns).Create(ctx, control, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating control secret: %v", err)
	}

	deleted := time.Now()
	if err := env.Client.CoreV1().Pods(ns).Delete(ctx, pod.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting pod: %v", err)
	}
	var last error
	pollCtx, cancel := context.WithTimeout(ctx, gcDeadline)
	defer cancel()
	err = wait.PollUntilContextCancel(pollCtx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, last = env.Client.CoreV1().Secrets(ns).Get(ctx, owned.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(last), nil
	})
	latency := time.Since(deleted)
	if err != nil {
		t.Fatalf("Secret %s/%s owned by deleted Pod %s (uid %s) still there %s later (last get: %v): "+
			"the garbage collector is not running or not working%s",
			ns, owned.Name, pod.Name, pod.UID, gcDeadline, last, env.tail(logControllerManager))
	}
	if _, err := env.Client.CoreV1().Secrets(ns).Get(ctx, control.Name, metav1.GetOptions{}); err != nil {
		t.Fatalf("unowned control Secret %s/%s: %v (want it untouched by the cascade)", ns, control.Name, err)
	}
	return latency
}

// TestRestartAPIServer takes the apiserver away and back, as a control plane upgrade does, and
// checks that data survives, the existing client reconnects by itself, and the garbage collector
// (a separate process holding watches) recovers too.
func TestRestartAPIServer(t *testing.T) {
	ctx := t.Context()
	ns := newNamespace(t)
	before := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "survivor", Namespace: ns},
		Data:       map[string]string{"k": "v"},
	}
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Create(ctx, before, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating configmap: %v", err)
	}

	// Starting a running apiserver must leave it alone (envtest alone would start a second one
	// that fails on the port and lose track of the first).
	if err := env.StartAPIServer(); err != nil {
		t.Fatalf("StartAPIServer while running: %v", err)
	}
	begin := time.Now()
	for i := range 2 { // the second call must be a no-op
		if err := env.StopAPIServer(); err != nil {
			t.Fatalf("StopAPIServer (call %d): %v", i+1, err)
		}
	}
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Get(ctx, before.Name, metav1.GetOptions{}); err == nil {
		t.Fatalf("reading a configmap succeeded with the apiserver stopped: StopAPIServer did not stop it")
	}
	stopped := time.Since(begin)
	if err := env.StartAPIServer(); err != nil {
		t.Fatalf("StartAPIServer: %v", err)
	}
	t.Logf("apiserver stopped in %s, ready again %s later", stopped, time.Since(begin)-stopped)

	got, err := env.Client.CoreV1().ConfigMaps(ns).Get(ctx, before.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading configmap after restart with the existing client: %v", err)
	}
	if diff := cmp.Diff(before.Data, got.Data); diff != "" {
		t.Errorf("configmap data after restart (-want +got):\n%s", diff)
	}
	latency := checkCascade(t, ns, "maven-rst4z")
	t.Logf("after the restart, owned Secret deleted %s after its Pod", latency)
}

// fakeBinary writes an executable shell script, standing in for a control plane binary whose
// contents do not matter (AssetsDir only checks presence) or that must fail in a known way.
func fakeBinary(t *testing.T, dir, name, script string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestAssetsDir(t *testing.T) {
	cacheBin := filepath.Join(".cache", "control-plane", KubernetesVersion+"-etcd"+EtcdVersion, "bin")
	tests := []struct {
		name string
		// setup lays out files under root (the working directory's module, when go.mod is
		// written) and returns the KUBEBUILDER_ASSETS value, "" for unset.
		setup   func(t *testing.T, root string) string
		wantDir string // relative to root; "" when an error is expected
		wantErr string
	}{
		{
			name: "KUBEBUILDER_ASSETS wins",
			setup: func(t *testing.T, root string) string {
				dir := filepath.Join(root, "assets")
				mkdir(t, dir)
				fakeBinary(t, dir, binAPIServer, "")
				fakeBinary(t, dir, binEtcd, "")
				return dir
			},
			wantDir: "assets",
		},
		{
			name: "KUBEBUILDER_ASSETS without etcd",
			setup: func(t *testing.T, root string) string {
				dir := filepath.Join(root, "assets")
				mkdir(t, dir)
				fakeBinary(t, dir, binAPIServer, "")
				return dir
			},
			wantErr: `KUBEBUILDER_ASSETS=ROOT/assets: control plane binaries ["etcd"] missing or not executable in ROOT/assets: run ` + "`make control-plane`",
		},
		{
			name: "module cache with stamp",
			setup: func(t *testing.T, root string) string {
				writeGoMod(t, root)
				dir := filepath.Join(root, cacheBin)
				mkdir(t, dir)
				fakeBinary(t, dir, binAPIServer, "")
				fakeBinary(t, dir, binEtcd, "")
				writeFile(t, filepath.Join(dir, stampFile), "2026-11-25T19:46:56Z\n")
				return ""
			},
			wantDir: cacheBin,
		},
		{
			name: "module cache build unfinished",
			setup: func(t *testing.T, root string) string {
				writeGoMod(t, root)
				dir := filepath.Join(root, cacheBin)
				mkdir(t, dir)
				fakeBinary(t, dir, binAPIServer, "")
				return ""
			},
			wantErr: "control plane binaries not built in ROOT/" + cacheBin + " (no .stamp: the build has not run or has not finished): run `make control-plane`",
		},
		{
			name: "module cache stamped but etcd gone",
			setup: func(t *testing.T, root string) string {
				writeGoMod(t, root)
				dir := filepath.Join(root, cacheBin)
				mkdir(t, dir)
				fakeBinary(t, dir, binAPIServer, "")
				writeFile(t, filepath.Join(dir, stampFile), "x\n")
				return ""
			},
			wantErr: `control plane binaries ["etcd"] missing or not executable in ROOT/` + cacheBin + ": run `make control-plane`",
		},
		{
			name:    "outside any module",
			setup:   func(t *testing.T, root string) string { return "" },
			wantErr: "finding the control plane binaries: no go.mod in the working directory or any parent: not inside the module; set KUBEBUILDER_ASSETS instead",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, err := filepath.EvalSymlinks(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			work := filepath.Join(root, "internal", "pkg")
			mkdir(t, work)
			t.Setenv(assetsEnv, tt.setup(t, root))
			t.Chdir(work)

			got, err := AssetsDir()
			gotErr := ""
			if err != nil {
				gotErr = truncateAt(strings.ReplaceAll(err.Error(), root, "ROOT"), len(tt.wantErr))
			}
			if diff := cmp.Diff(tt.wantErr, gotErr); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			wantDir := ""
			if tt.wantDir != "" {
				wantDir = filepath.Join(root, tt.wantDir)
			}
			if diff := cmp.Diff(wantDir, got); diff != "" {
				t.Errorf("dir (-want +got):\n%s", diff)
			}
		})
	}
}

// TestStartFails checks that Start refuses with the fix in its message when binaries are
// missing, and that a component crashing on start is reported with its own words (the log
// tail) rather than only envtest's generic timeout text.
func TestStartFails(t *testing.T) {
	realAssets, err := AssetsDir()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		opts    Options
		setup   func(t *testing.T, dir string)
		wantErr []string // substrings, in order
	}{
		{
			name:    "empty assets folder",
			setup:   func(t *testing.T, dir string) {},
			wantErr: []string{`control plane binaries ["kube-apiserver" "etcd"] missing`, "make control-plane"},
		},
		{
			name: "garbage collector without kube-controller-manager",
			opts: Options{GarbageCollector: true},
			setup: func(t *testing.T, dir string) {
				fakeBinary(t, dir, binAPIServer, "exit 1")
				fakeBinary(t, dir, binEtcd, "exit 1")
			},
			wantErr: []string{"garbage collector requested", `["kube-controller-manager"] missing`, "make control-plane"},
		},
		{
			name: "apiserver crashes on start",
			setup: func(t *testing.T, dir string) {
				if err := os.Symlink(filepath.Join(realAssets, binEtcd), filepath.Join(dir, binEtcd)); err != nil {
					t.Fatal(err)
				}
				// envtest runs --help first to discover flags; the crash must come on the real start.
				fakeBinary(t, dir, binAPIServer, `[ "$1" = --help ] && exit 0; echo "E fake apiserver: cannot bind" >&2; exit 3`)
			},
			wantErr: []string{"starting kube-apiserver from", "--- last 1 lines of kube-apiserver.log ---\nE fake apiserver: cannot bind", "component logs kept in"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, dir)
			t.Setenv(assetsEnv, dir)
			e, err := Start(tt.opts)
			if err == nil {
				_ = e.Stop()
				t.Fatalf("Start succeeded, want an error containing %q", tt.wantErr)
			}
			msg := err.Error()
			rest := msg
			for _, want := range tt.wantErr {
				i := strings.Index(rest, want)
				if i < 0 {
					t.Fatalf("error %q\ndoes not contain %q (after the previous expected parts)", msg, want)
				}
				rest = rest[i+len(want):]
			}
			if e != nil {
				t.Errorf("Start returned an Env alongside its error")
			}
			if kept := keptDir(msg); kept != "" {
				if _, err := os.Stat(filepath.Join(kept, logAPIServer)); err != nil {
					t.Errorf("log folder named in the error: %v", err)
				}
				if _, err := os.Stat(filepath.Join(kept, "etcd")); !os.IsNotExist(err) {
					t.Errorf("etcd data left in %s after a failed start (stat: %v)", kept, err)
				}
				_ = os.RemoveAll(kept)
			}
		})
	}
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeGoMod(t *testing.T, root string) {
	t.Helper()
	writeFile(t, filepath.Join(root, "go.mod"), "module example.test/m\n")
}

// truncateAt cuts s to n bytes, so an expected error can stop before the long fix text without
// the comparison losing its precision up to that point.
func truncateAt(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// keptDir extracts the folder from Start's "(component logs kept in DIR)" suffix, "" if absent.
func keptDir(msg string) string {
	const marker = "(component logs kept in "
	i := strings.Index(msg, marker)
	if i < 0 {
		return ""
	}
	var dir string
	if _, err := fmt.Sscanf(msg[i+len(marker):], "%s", &dir); err != nil {
		return ""
	}
	if len(dir) > 0 && dir[len(dir)-1] == ')' {
		dir = dir[:len(dir)-1]
	}
	return dir
}
