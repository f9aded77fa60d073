package podtemplate

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const examplesFile = "../../deploy/examples/templates.yaml"

// specialDoc exercises what the examples do not: a template's own jnlp container, overridden agent
// env, a pre-defined workspace volume, per-container working directories.
const specialDoc = `templates:
  - name: custom
    labels: [custom]
    agent: {workDir: /work}
    pod:
      spec:
        volumes:
          - name: workspace-volume
            hostPath: {path: /var/lib/agents}
        containers:
          - name: jnlp
            image: registry.example.com/agent:7
            env:
              - {name: JENKINS_URL, value: "http://jenkins.ci.svc:8080/"}
              - {name: REMOTING_OPTS, value: "-disableHttpsCertValidation"}
          - name: go
            image: golang:1.26
            workingDir: /src
            command: [sleep, infinity]
          - name: lint
            image: golangci/golangci-lint:v2
            command: [sleep, infinity]
            volumeMounts:
              - {name: workspace-volume, mountPath: /lint}
`

func goldenIdentity(name string) Identity {
	return Identity{Name: name + "-abcde", Namespace: "ci", Secret: "0123456789abcdef", JenkinsURL: "https://jenkins.example.com/"}
}

func TestRenderGolden(t *testing.T) {
	examples, err := Load(examplesFile)
	if err != nil {
		t.Fatal(err)
	}
	special, err := Parse("special.yaml", []byte(specialDoc))
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	type tc struct {
		golden string
		tpl    *Template
		id     Identity
	}
	var cases []tc
	for _, tpl := range examples.Templates {
		if tpl.Selectable() {
			cases = append(cases, tc{"example-" + tpl.Name + ".yaml", tpl, goldenIdentity(tpl.Name)})
		}
	}
	node, _ := examples.Get("node")
	wsID := goldenIdentity("node")
	wsID.WebSocket, wsID.Tunnel, wsID.AgentJenkinsURL = &yes, "jenkins-agent.ci.svc:50000", "http://jenkins.ci.svc:8080/"
	cases = append(cases, tc{"node-websocket-tunnel.yaml", node, wsID})
	custom, _ := special.Get("custom")
	cases = append(cases, tc{"custom-jnlp.yaml", custom, goldenIdentity("custom")})
	if len(cases) < 4 {
		t.Fatalf("only %d cases: the examples file lost its templates", len(cases))
	}

	for _, c := range cases {
		t.Run(c.golden, func(t *testing.T) {
			pod, secret, err := Render(c.tpl, c.id)
			if err != nil {
				t.Fatal(err)
			}
			got := renderYAML(t, pod, secret)
			path := filepath.Join("testdata", c.golden)
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("rendered YAML differs from %s (-want +got):\n%s", path, diff)
			}
			checkRendered(t, c.tpl, c.id, pod, secret)
		})
	}
}

func renderYAML(t *testing.T, pod *corev1.Pod, secret *corev1.Secret) string {
	t.Helper()
	p, err := yaml.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	s, err := yaml.Marshal(secret)
	if err != nil {
		t.Fatal(err)
	}
	return string(p) + "---\n" + string(s)
}

// checkRendered asserts the rules every agent pod follows, independently of the golden files, so
// that a golden file regenerated with a bug in it still fails.
func checkRendered(t *testing.T, tpl *Template, id Identity, pod *corev1.Pod, secret *corev1.Secret) {
	t.Helper()
	if pod.Name != id.Name || secret.Name != id.Name || pod.Namespace != id.Namespace || secret.Namespace != id.Namespace {
		t.Errorf("names: pod %s/%s, secret %s/%s, want both %s/%s", pod.Namespace, pod.Name, secret.Namespace, secret.Name, id.Namespace, id.Name)
	}
	wantLabels := map[string]string{LabelManagedBy: ManagedByValue, LabelName: NameValue, LabelTemplate: tpl.Name}
	for k, v := range wantLabels {
		if pod.Labels[k] != v || secret.Labels[k] != v {
			t.Errorf("label %s: pod %q, secret %q, want %q", k, pod.Labels[k], secret.Labels[k], v)
		}
	}
	if pod.Annotations[AnnotationJenkinsURL] != id.JenkinsURL || pod.Annotations[AnnotationNodeName] != id.Name {
		t.Errorf("annotations = %v", pod.Annotations)
	}
	if pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy = %s", pod.Spec.RestartPolicy)
	}
	if string(secret.Data[SecretKey]) != id.Secret {
		t.Errorf("secret data = %q, want the agent secret", secret.Data[SecretKey])
	}
	if len(secret.OwnerReferences) != 0 {
		t.Errorf("Render set owner references %v; the pod does not exist yet", secret.OwnerReferences)
	}
	podYAML, _ := yaml.Marshal(pod)
	if strings.Contains(string(podYAML), id.Secret) {
		t.Errorf("the agent secret appears literally in the pod")
	}
	var jnlp *corev1.Container
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		if c.Name == JNLPContainerName {
			jnlp = c
		}
		mounted := false
		for _, m := range c.VolumeMounts {
			mounted = mounted || m.Name == WorkspaceVolumeName
		}
		if !mounted || c.WorkingDir == "" {
			t.Errorf("container %s: workspace mounted %v, workingDir %q", c.Name, mounted, c.WorkingDir)
		}
	}
	if jnlp == nil {
		t.Fatal("no jnlp container")
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range jnlp.Env {
		if _, dup := env[e.Name]; dup {
			t.Errorf("env %s twice", e.Name)
		}
		env[e.Name] = e
	}
	ref := env["JENKINS_SECRET"].ValueFrom
	if ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != id.Name || ref.SecretKeyRef.Key != SecretKey || env["JENKINS_SECRET"].Value != "" {
		t.Errorf("JENKINS_SECRET = %+v, want a secretKeyRef to %s/%s", env["JENKINS_SECRET"], id.Name, SecretKey)
	}
	for _, name := range []string{"JENKINS_AGENT_NAME", "JENKINS_NAME"} {
		if env[name].Value != id.Name {
			t.Errorf("%s = %q, want %q", name, env[name].Value, id.Name)
		}
	}
	// The agent reconnects unless the template says otherwise: no -noReconnect of ours.
	wantOpts := "-noReconnectAfter 10m"
	for _, c := range tpl.Pod.Spec.Containers {
		for _, e := range c.Env {
			if c.Name == JNLPContainerName && e.Name == "REMOTING_OPTS" {
				wantOpts = e.Value
			}
		}
	}
	if got := env["REMOTING_OPTS"].Value; got != wantOpts {
		t.Errorf("REMOTING_OPTS = %q, want %q", got, wantOpts)
	}
	for k, v := range map[string]string{AnnotationSafeToEvict: "false", AnnotationDoNotDisrupt: "true"} {
		if own, set := tpl.Pod.Annotations[k]; set {
			v = own
		}
		if pod.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, pod.Annotations[k], v)
		}
	}
	if jnlp.Image == "" {
		t.Errorf("jnlp has no image")
	}
}

func TestRenderDefaultJNLP(t *testing.T) {
	set, err := Parse("t.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	tpl := set.Templates[0]
	yes := true
	pod, _, err := Render(tpl, Identity{Name: "maven-x2b4z", Namespace: "ns", Secret: "s", JenkinsURL: "https://j/", AgentJenkinsURL: "http://j.svc/", Tunnel: "j-agent:50000", WebSocket: &yes})
	if err != nil {
		t.Fatal(err)
	}
	want := []corev1.Container{{
		Name:       "jnlp",
		Image:      DefaultAgentImage,
		WorkingDir: "/home/jenkins/agent",
		Env: []corev1.EnvVar{
			{Name: "JENKINS_URL", Value: "http://j.svc/"},
			{Name: "JENKINS_SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "maven-x2b4z"}, Key: SecretKey}}},
			{Name: "JENKINS_AGENT_NAME", Value: "maven-x2b4z"},
			{Name: "JENKINS_NAME", Value: "maven-x2b4z"},
			{Name: "JENKINS_AGENT_WORKDIR", Value: "/home/jenkins/agent"},
			{Name: "JENKINS_WEB_SOCKET", Value: "true"},
			{Name: "JENKINS_TUNNEL", Value: "j-agent:50000"},
			{Name: "REMOTING_OPTS", Value: "-noReconnectAfter 10m"},
		},
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU:    mustQuantity(t, "100m"),
			corev1.ResourceMemory: mustQuantity(t, "256Mi"),
		}},
		VolumeMounts: []corev1.VolumeMount{{Name: WorkspaceVolumeName, MountPath: "/home/jenkins/agent"}},
	}}
	if diff := cmp.Diff(want, pod.Spec.Containers); diff != "" {
		t.Errorf("containers mismatch (-want +got):\n%s", diff)
	}
	wantVol := []corev1.Volume{{Name: WorkspaceVolumeName, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	if diff := cmp.Diff(wantVol, pod.Spec.Volumes); diff != "" {
		t.Errorf("volumes mismatch (-want +got):\n%s", diff)
	}
	if tpl.Pod.Spec.Containers != nil {
		t.Errorf("Render changed the template: %+v", tpl.Pod.Spec.Containers)
	}
}

// A template may turn reconnecting off and allow its pods to be evicted: its own REMOTING_OPTS and
// annotations win over the defaults, and the defaults stay where it says nothing.
func TestRenderTemplateOverridesDefaults(t *testing.T) {
	doc := `templates:
  - name: short
    labels: [short]
    pod:
      metadata:
        annotations: {cluster-autoscaler.kubernetes.io/safe-to-evict: "true", team: ci}
      spec:
        containers:
          - name: jnlp
            env:
              - {name: REMOTING_OPTS, value: "-noReconnect"}
`
	set, err := Parse("t.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	tpl, _ := set.Get("short")
	pod, _, err := Render(tpl, goldenIdentity("short"))
	if err != nil {
		t.Fatal(err)
	}
	wantAnn := map[string]string{
		AnnotationJenkinsURL: "https://jenkins.example.com/", AnnotationNodeName: "short-abcde",
		AnnotationSafeToEvict: "true", AnnotationDoNotDisrupt: "true", "team": "ci",
	}
	if diff := cmp.Diff(wantAnn, pod.Annotations); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
	var opts []string
	for _, e := range pod.Spec.Containers[0].Env {
		if e.Name == "REMOTING_OPTS" {
			opts = append(opts, e.Value)
		}
	}
	if diff := cmp.Diff([]string{"-noReconnect"}, opts); diff != "" {
		t.Errorf("REMOTING_OPTS (-want +got):\n%s", diff)
	}
	if _, set := tpl.Pod.Annotations[AnnotationDoNotDisrupt]; set {
		t.Errorf("Render changed the template's annotations: %v", tpl.Pod.Annotations)
	}
}

func TestRenderRejectsBadIdentity(t *testing.T) {
	set, err := Parse("t.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = Render(set.Templates[0], Identity{Name: "Maven_1", JenkinsURL: "https://j/"})
	want := `render template maven: identity: agent name "Maven_1": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')` + "\nidentity: agent secret is empty"
	if err == nil {
		t.Fatal("no error")
	}
	if diff := cmp.Diff(want, err.Error()); diff != "" {
		t.Errorf("error mismatch (-want +got):\n%s", diff)
	}
}

func TestSetSecretOwner(t *testing.T) {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "maven-abcde"}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "maven-abcde", UID: types.UID("uid-1")}}
	SetSecretOwner(secret, pod)
	SetSecretOwner(secret, pod) // idempotent: a retried reconcile must not add a second reference
	want := []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: "maven-abcde", UID: "uid-1"}}
	if diff := cmp.Diff(want, secret.OwnerReferences); diff != "" {
		t.Errorf("owner references mismatch (-want +got):\n%s", diff)
	}
	pod.UID = "uid-2" // the pod was recreated under the same name
	SetSecretOwner(secret, pod)
	want[0].UID = "uid-2"
	if diff := cmp.Diff(want, secret.OwnerReferences); diff != "" {
		t.Errorf("owner references after recreate mismatch (-want +got):\n%s", diff)
	}
}

func TestNewAgentName(t *testing.T) {
	long := strings.Repeat("a", maxTemplateNameLength)
	re := regexp.MustCompile(`^` + long + `-[bcdfghjklmnpqrstvwxz2456789]{5}$`)
	seen := map[string]bool{}
	for range 50 {
		name := NewAgentName(long)
		if !re.MatchString(name) || len(name) > 63 {
			t.Fatalf("NewAgentName = %q (%d chars), want %s", name, len(name), re)
		}
		seen[name] = true
	}
	if len(seen) < 45 {
		t.Errorf("only %d distinct names in 50", len(seen))
	}
}

func mustQuantity(t *testing.T, s string) resource.Quantity {
	t.Helper()
	q, err := resource.ParseQuantity(s)
	if err != nil {
		t.Fatal(err)
	}
	return q
}
