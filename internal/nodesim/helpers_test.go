package nodesim

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins/jenkinstest"
	"github.com/jenkins-agent-provisioner/provisioner/internal/waitfor"
)

// Short clocks keep the suite quick; the behaviour under test does not depend on their size.
const (
	testRetry   = 300 * time.Millisecond
	testTimeout = 20 * time.Second
)

// newNamespace gives each test its own namespace, so simulators of different tests never see each
// other's pods.
func newNamespace(t *testing.T) string {
	t.Helper()
	requireEnv(t)
	ctx := context.Background()
	ns, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "nodesim-"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		// No namespace controller runs here, so the namespace only goes terminating; its pods are
		// the simulator's to finish and are gone by then.
		_ = env.Client.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	return ns.Name
}

// startSim runs a simulator for the test's namespace until the test ends.
func startSim(t *testing.T, cfg Config) *Simulator {
	t.Helper()
	cfg.Client = env.Client
	if cfg.Logger == nil {
		cfg.Logger = zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = testRetry
	}
	if cfg.CrashAfter == 0 {
		cfg.CrashAfter = 200 * time.Millisecond
	}
	sim := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var runErr error
	wg.Go(func() { runErr = sim.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if runErr != nil {
			t.Errorf("Run: %v", runErr)
		}
	})
	return sim
}

// jenkins is the emulator with an administrator, driven over HTTP as a user would drive Jenkins.
type jenkins struct {
	*jenkinstest.Server
	t *testing.T
}

const adminUser, adminToken = "admin", "11c0ffee11c0ffee11c0ffee11c0ffee11"

func newJenkins(t *testing.T) *jenkins {
	t.Helper()
	srv := jenkinstest.New(jenkinstest.Options{Logger: zap.NewNop()})
	srv.AddUser(adminUser, adminToken, jenkinstest.OverallAdminister)
	t.Cleanup(srv.Close)
	return &jenkins{Server: srv, t: t}
}

func (j *jenkins) do(method, path string, form url.Values) (int, string) {
	j.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, j.URL()+path, body)
	if err != nil {
		j.t.Fatalf("%s %s: %v", method, path, err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.SetBasicAuth(adminUser, adminToken)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		j.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		j.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, string(data)
}

// createInboundNode creates a permanent inbound agent the way the provisioner (and the UI) does.
func (j *jenkins) createInboundNode(name, labels string) {
	j.t.Helper()
	spec, err := json.Marshal(map[string]any{
		"name": name, "nodeDescription": "[jenkins-agent-provisioner] nodesim test", "numExecutors": 1,
		"remoteFS": "/home/jenkins/agent", "labelString": labels, "mode": "EXCLUSIVE",
		"retentionStrategy": map[string]string{"stapler-class": "hudson.slaves.RetentionStrategy$Always"},
		"nodeProperties":    map[string]string{"stapler-class-bag": "true"},
		"launcher":          map[string]any{"stapler-class": "hudson.slaves.JNLPLauncher", "webSocket": true},
	})
	if err != nil {
		j.t.Fatal(err)
	}
	status, body := j.do(http.MethodPost, "computer/doCreateItem", url.Values{
		"name": {name}, "type": {"hudson.slaves.DumbSlave"}, "json": {string(spec)},
	})
	if status != http.StatusFound {
		j.t.Fatalf("create node %s: HTTP %d: %.300s", name, status, body)
	}
}

// nodeSecret reads the agent secret from jenkins-agent.jnlp: the first argument of application-desc.
func (j *jenkins) nodeSecret(name string) string {
	j.t.Helper()
	status, body := j.do(http.MethodGet, "computer/"+url.PathEscape(name)+"/jenkins-agent.jnlp", nil)
	if status != http.StatusOK {
		j.t.Fatalf("jnlp of %s: HTTP %d: %.300s", name, status, body)
	}
	var doc struct {
		Arguments []string `xml:"application-desc>argument"`
	}
	if err := xml.Unmarshal([]byte(body), &doc); err != nil || len(doc.Arguments) == 0 {
		j.t.Fatalf("jnlp of %s: %v: %.300s", name, err, body)
	}
	return doc.Arguments[0]
}

func (j *jenkins) deleteNode(name string) {
	j.t.Helper()
	if status, body := j.do(http.MethodPost, "computer/"+url.PathEscape(name)+"/doDelete", url.Values{}); status != http.StatusFound {
		j.t.Fatalf("delete node %s: HTTP %d: %.300s", name, status, body)
	}
}

func (j *jenkins) node(name string) (jenkinstest.NodeSnapshot, bool) {
	for _, n := range j.Nodes() {
		if n.Name == name {
			return n, true
		}
	}
	return jenkinstest.NodeSnapshot{}, false
}

// agentPod is an agent pod as the Kubernetes plugin and this project's renderer shape it.
func agentPod(ns, name, jenkinsURL, secretName string, remotingOpts string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{
			"app.kubernetes.io/managed-by": "jenkins-agent-provisioner", "app.kubernetes.io/name": "jenkins-agent",
		}},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{
				{
					Name: "jnlp", Image: "jenkins/inbound-agent:3283.v92c105e0f819-1",
					Env: []corev1.EnvVar{
						{Name: "JENKINS_URL", Value: jenkinsURL},
						{Name: "JENKINS_SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
							LocalObjectReference: corev1.LocalObjectReference{Name: secretName}, Key: "jenkins-agent-secret",
						}}},
						{Name: "JENKINS_AGENT_NAME", Value: name},
						{Name: "JENKINS_NAME", Value: "$(JENKINS_AGENT_NAME)"},
						{Name: "JENKINS_AGENT_WORKDIR", Value: "/home/jenkins/agent"},
						{Name: "REMOTING_OPTS", Value: remotingOpts},
					},
				},
				{Name: "maven", Image: "maven:3.9-eclipse-temurin-21", Command: []string{"sleep"}, Args: []string{"infinity"}},
			},
		},
	}
}

func createSecret(t *testing.T, ns, name, value string) {
	t.Helper()
	_, err := env.Client.CoreV1().Secrets(ns).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Data:       map[string][]byte{"jenkins-agent-secret": []byte(value)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create secret %s: %v", name, err)
	}
}

func createPod(t *testing.T, p *corev1.Pod) {
	t.Helper()
	if _, err := env.Client.CoreV1().Pods(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod %s: %v", p.Name, err)
	}
}

func getPod(t *testing.T, ns, name string) (*corev1.Pod, error) {
	t.Helper()
	return env.Client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
}

// eventually polls cond until it holds or testTimeout passes; cond's text says what it last saw.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	waitfor.Eventually(t, testTimeout, 50*time.Millisecond, what, cond)
}

// waitPod waits until the pod satisfies cond and returns it.
func waitPod(t *testing.T, ns, name, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var got *corev1.Pod
	eventually(t, fmt.Sprintf("pod %s: %s", name, what), func() (bool, string) {
		p, err := getPod(t, ns, name)
		if err != nil {
			return false, err.Error()
		}
		got = p
		return cond(p), describe(p)
	})
	return got
}

// describe is a one-line summary of a pod's status for failure messages.
func describe(p *corev1.Pod) string {
	var b strings.Builder
	fmt.Fprintf(&b, "node=%q phase=%s", p.Spec.NodeName, p.Status.Phase)
	for _, c := range p.Status.Conditions {
		fmt.Fprintf(&b, " %s=%s(%s)", c.Type, c.Status, c.Reason)
	}
	for _, cs := range p.Status.ContainerStatuses {
		fmt.Fprintf(&b, " [%s %s]", cs.Name, stateText(cs.State))
	}
	return b.String()
}

func stateText(s corev1.ContainerState) string {
	switch {
	case s.Waiting != nil:
		return "waiting " + s.Waiting.Reason + ": " + s.Waiting.Message
	case s.Running != nil:
		return "running"
	case s.Terminated != nil:
		return fmt.Sprintf("terminated %d %s", s.Terminated.ExitCode, s.Terminated.Reason)
	}
	return "none"
}

func containerStatus(p *corev1.Pod, name string) corev1.ContainerStatus {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == name {
			return cs
		}
	}
	return corev1.ContainerStatus{}
}

func condition(p *corev1.Pod, t corev1.PodConditionType) corev1.PodCondition {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c
		}
	}
	return corev1.PodCondition{}
}

func waitGone(t *testing.T, ns, name string) {
	t.Helper()
	eventually(t, "pod "+name+" gone", func() (bool, string) {
		p, err := getPod(t, ns, name)
		if apierrors.IsNotFound(err) {
			return true, ""
		}
		if err != nil {
			return false, err.Error()
		}
		return false, fmt.Sprintf("deletionTimestamp=%v %s", p.DeletionTimestamp, describe(p))
	})
}

// eventsFor lists the reasons the simulator recorded for one pod, in order.
func eventsFor(sim *Simulator, pod string) []string {
	var out []string
	for _, e := range sim.Events() {
		if e.Pod == pod {
			out = append(out, e.Reason)
		}
	}
	return out
}

func countReason(sim *Simulator, pod, reason string) int {
	n := 0
	for _, r := range eventsFor(sim, pod) {
		if r == reason {
			n++
		}
	}
	return n
}
