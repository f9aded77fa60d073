package deploy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins/jenkinstest"
	"github.com/jenkins-agent-provisioner/provisioner/internal/lifecycle"
	"github.com/jenkins-agent-provisioner/provisioner/internal/nodesim"
)

// TestDeployedProvisioner runs the real provisioner binary the way each kustomization deploys it,
// as far as a machine without a kubelet allows: its ServiceAccount, Roles and RoleBindings applied
// for real and its API credentials a token of that ServiceAccount (so every call it makes is
// checked by the apiserver's RBAC against the shipped Roles), its environment exactly the
// Deployment's (ConfigMap and env, downward API resolved), the shipped templates ConfigMap as its
// templates directory, and a Jenkins (the emulator) user holding only the permissions
// docs/operating.md lists. The node simulator plays kubelet and inbound agent. Builds for three
// templates must run on their own agents, everything must be cleaned up, the leader must hold the
// Lease under its pod name, and nothing may be refused: no Forbidden in the log, no 403 counted.
// It builds the binary, so -short skips it.
func TestDeployedProvisioner(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the provisioner; skipped with -short")
	}
	requireEnv(t)
	bin := filepath.Join(t.TempDir(), "provisioner")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/provisioner").CombinedOutput(); err != nil {
		t.Fatalf("go build ../cmd/provisioner: %v\n%s", err, out)
	}
	for _, k := range kustomizations {
		t.Run(k.name, func(t *testing.T) { runDeployed(t, k, bin) })
	}
}

func runDeployed(t *testing.T, k kustomization, bin string) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	objs := buildOnDisk(t, k.dir)
	d := typed[appsv1.Deployment](t, one(t, objs, "Deployment", provisionerNamespace, "jenkins-agent-provisioner"))
	c := d.Spec.Template.Spec.Containers[0]

	// The objects the provisioner's identity consists of, for real; removed again afterwards so
	// that the next kustomization starts from none.
	a := newApplier(t)
	var applied []*unstructured.Unstructured
	for _, kind := range []string{"Namespace", "ServiceAccount", "Role", "RoleBinding"} {
		applied = append(applied, ofKind(objs, kind)...)
	}
	for _, u := range applied {
		if err := a.apply(ctx, u, false); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, u := range applied {
			if u.GetKind() == "Role" || u.GetKind() == "RoleBinding" {
				if err := a.delete(context.WithoutCancel(ctx), u); err != nil {
					t.Error(err)
				}
			}
		}
	})

	// Jenkins, with the permissions the documentation asks operators to grant, nothing more.
	jenk := jenkinstest.New(jenkinstest.Options{})
	defer jenk.Close()
	const jenkinsToken = "0123456789abcdef0123456789abcdef01"
	jenk.AddUser("jenkins-agent-provisioner", jenkinsToken, jenkinstest.OverallRead, jenkinstest.JobRead,
		jenkinstest.AgentCreate, jenkinstest.AgentDelete, jenkinstest.AgentConnect, jenkinstest.AgentDisconnect)

	// The kubelet and the agents.
	simCtx, stopSim := context.WithCancel(ctx)
	defer stopSim()
	sim := nodesim.New(nodesim.Config{Client: env.Client, Namespace: k.agentsNamespace, NodeName: "nodesim-" + strings.ReplaceAll(k.name, " ", "-")})
	simDone := make(chan error, 1)
	go func() { simDone <- sim.Run(simCtx) }()
	defer func() { stopSim(); <-simDone }()

	// The files the pod would have mounted: the token Secret and the templates ConfigMap.
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(jenkinsToken+"\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	templatesDir := filepath.Join(dir, "templates")
	if err := os.Mkdir(templatesDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cm := typed[corev1.ConfigMap](t, one(t, objs, "ConfigMap", provisionerNamespace, templatesConfigMap))
	for name, data := range cm.Data {
		if err := os.WriteFile(filepath.Join(templatesDir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// The ServiceAccount's credentials, as the kubelet would project them into the pod.
	tr, err := env.Client.CoreV1().ServiceAccounts(provisionerNamespace).CreateToken(ctx, serviceAccount,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for the ServiceAccount: %v", err)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: env.Config.Host, CertificateAuthorityData: env.Config.CAData}
	kc.AuthInfos["provisioner"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["provisioner"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "provisioner"}
	kc.CurrentContext = "provisioner"
	if err := clientcmd.WriteToFile(*kc, kubeconfig); err != nil {
		t.Fatal(err)
	}

	// The container's environment, with what a pod has that this machine lacks replaced: the
	// mount paths, Jenkins' address, a free local port for LISTEN, and the kubeconfig standing in
	// for the in-cluster service account files.
	const podName = "jenkins-agent-provisioner-7d9f8c6b5-x2x4q"
	environ := containerEnv(t, objs, d, c, podName)
	port := freePort(t)
	for name, v := range map[string]string{
		"PROVISIONER_JENKINS_TOKEN_FILE": tokenFile,
		"PROVISIONER_TEMPLATES":          templatesDir,
		"PROVISIONER_JENKINS_URL":        jenk.URL(),
		"PROVISIONER_LISTEN":             fmt.Sprintf("127.0.0.1:%d", port),
		"PROVISIONER_KUBECONFIG":         kubeconfig,
	} {
		if _, ok := environ[name]; !ok && name != "PROVISIONER_KUBECONFIG" {
			t.Fatalf("the Deployment does not set %s", name)
		}
		environ[name] = v
	}
	var envList []string
	for name, v := range environ {
		envList = append(envList, name+"="+v)
	}
	var logs syncBuffer
	cmd := exec.Command(bin, c.Args...)
	cmd.Env = envList
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// exited is closed once the process has ended, with its result in waitErr.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("provisioner log (last 60 lines):\n%s", tail(logs.String(), 60))
		}
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	if !poll(ctx, exited, func() bool { return httpStatus(base+"/readyz") == http.StatusOK }) {
		t.Fatal("/readyz never answered 200")
	}
	lease, err := env.Client.CoordinationV1().Leases(provisionerNamespace).Get(ctx, "jenkins-agent-provisioner", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("no Lease %s/jenkins-agent-provisioner: %v", provisionerNamespace, err)
	}
	if got := deref(lease.Spec.HolderIdentity); got != podName {
		t.Errorf("Lease holder = %v, want the pod name %q", got, podName)
	}

	// One build per kind of template: a label, a label expression in a pipeline, and no label.
	const buildTime = 2 * time.Second
	jenk.CreateFreestyleJob("compile", "maven", buildTime)
	jenk.CreatePipelineJob("image", "linux && docker", buildTime)
	jenk.CreateFreestyleJob("anything", "", buildTime)
	for _, job := range []string{"compile", "image", "anything"} {
		if _, err := jenk.Schedule(job); err != nil {
			t.Fatal(err)
		}
	}
	if !poll(ctx, exited, func() bool {
		done := 0
		for _, b := range jenk.Builds() {
			if b.Done {
				done++
			}
		}
		return done == 3
	}) {
		t.Fatalf("builds not done: %+v", jenk.Builds())
	}
	for _, b := range jenk.Builds() {
		if b.Result != "SUCCESS" || b.Node == "" {
			t.Errorf("build %s #%d: result %q on node %q, want SUCCESS on an agent", b.Job, b.Number, b.Result, b.Node)
		}
	}
	sel := metav1.ListOptions{LabelSelector: lifecycle.ManagedSelector().String()}
	if !poll(ctx, exited, func() bool {
		pods, err1 := env.Client.CoreV1().Pods(k.agentsNamespace).List(ctx, sel)
		secrets, err2 := env.Client.CoreV1().Secrets(k.agentsNamespace).List(ctx, sel)
		return err1 == nil && err2 == nil && len(pods.Items) == 0 && len(secrets.Items) == 0 && len(jenk.Nodes()) == 1
	}) {
		t.Errorf("agents not cleaned up; Jenkins nodes: %+v", jenk.Nodes())
	}

	metrics := httpBody(t, base+"/metrics")
	for _, want := range []string{
		"provisioner_leader 1",
		`provisioner_agents_completed_total{template="maven"} 1`,
		`provisioner_agents_completed_total{template="node"} 1`,
		`provisioner_agents_completed_total{template="default"} 1`,
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if m := regexp.MustCompile(`(?m)^provisioner_kube_api_errors_total\{.*\} .*$`).FindAllString(metrics, -1); len(m) > 0 {
		t.Errorf("Kubernetes API errors: %q", m)
	}
	events, err := env.Client.CoreV1().Events(k.agentsNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	recorded := 0
	for _, e := range events.Items {
		if e.Source.Component == "jenkins-agent-provisioner" {
			recorded++
		}
	}
	if recorded == 0 {
		t.Errorf("no Event recorded by the provisioner in %s", k.agentsNamespace)
	}

	// A rollout's stop: SIGTERM, a clean exit, the Lease released for the standby.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Errorf("exit after SIGTERM: %v", waitErr)
		}
	case <-time.After(time.Duration(deref64(d.Spec.Template.Spec.TerminationGracePeriodSeconds)) * time.Second):
		t.Error("still running after the pod's termination grace period")
	}
	lease, err = env.Client.CoordinationV1().Leases(provisionerNamespace).Get(ctx, "jenkins-agent-provisioner", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := deref(lease.Spec.HolderIdentity); got != "" && got != "unset" {
		t.Errorf("Lease still held by %v after a clean stop", got)
	}
	if err := env.Client.CoordinationV1().Leases(provisionerNamespace).Delete(ctx, lease.Name, metav1.DeleteOptions{}); err != nil {
		t.Error(err)
	}

	for line := range strings.SplitSeq(logs.String(), "\n") {
		if strings.Contains(strings.ToLower(line), "forbidden") {
			t.Errorf("refused by the apiserver or Jenkins: %s", line)
		}
	}
}

func deref64(p *int64) int64 {
	if p == nil {
		return 30
	}
	return *p
}

// phaseTimeout bounds each wait: three agents take seconds here; a minute and a half leaves room
// for a loaded machine while a broken setup still fails in reasonable time.
const phaseTimeout = 90 * time.Second

// poll checks cond every 200 ms until it holds, phaseTimeout passes, ctx ends or the process exits.
func poll(ctx context.Context, exited <-chan struct{}, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(ctx, phaseTimeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-exited:
			return false
		case <-tick.C:
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func httpStatus(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func httpBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

func tail(s string, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// syncBuffer is a bytes.Buffer that the process's output copier and the test may use at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
