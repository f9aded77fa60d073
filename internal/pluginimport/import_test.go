package pluginimport

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
)

// importOne imports one inline file and loads the result with the provisioner's own loader.
func importOne(t *testing.T, name, text string, opts Options) (*Result, *podtemplate.Set) {
	t.Helper()
	res, err := Import([]Input{{Name: name, Data: []byte(text)}}, opts)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	set, err := podtemplate.Parse(name+".out", res.YAML)
	if err != nil {
		t.Fatalf("the import does not load: %v\n%s", err, res.YAML)
	}
	return res, set
}

func findingAt(res *Result, line int, kind Kind, field string) bool {
	for _, f := range res.Findings {
		if f.Line == line && f.Kind == kind && strings.Contains(f.Field, field) {
			return true
		}
	}
	return false
}

func TestImportContainerFields(t *testing.T) {
	const in = `jenkins:
  clouds:
    - kubernetes:
        name: k8s
        templates:
          - name: Maven_Builds
            label: "maven  jdk17"
            nodeUsageMode: NORMAL
            instanceCap: 4
            slaveConnectTimeoutStr: "90"
            activeDeadlineSecondsStr: "600"
            podRetention: onFailure
            serviceAccount: builder
            nodeSelector: "disk=ssd, zone=a,broken"
            supplementalGroups: "10,20"
            runAsUser: "1000"
            hostNetwork: true
            imagePullSecrets:
              - name: regcred
            annotations:
              - key: team
                value: payments
            envVars:
              - envVar: {key: GLOBAL, value: "1"}
            containers:
              - name: maven
                image: maven:3.9
                command: "/bin/sh -c"
                args: "'echo hi' ^${HOME}"
                ttyEnabled: true
                privileged: "true"
                alwaysPullImage: true
                resourceRequestCpu: 500m
                resourceLimitMemory: 1Gi
                envVars:
                  - secretEnvVar: {key: TOKEN, secretName: creds, secretKey: token, optional: true}
                  - envVar: {key: GLOBAL, value: "2"}
                livenessProbe:
                  execArgs: "cat /tmp/ok"
                  periodSeconds: 5
                ports:
                  - name: http
                    containerPort: 8080
              - name: jnlp
                image: jenkins/inbound-agent:latest
                args: "^${computer.jnlpmac} ^${computer.name}"
`
	res, set := importOne(t, "casc.yaml", in, Options{})
	tp, ok := set.Get("maven-builds")
	if !ok {
		t.Fatalf("template maven-builds missing:\n%s", res.YAML)
	}
	if diff := cmp.Diff([]string{"maven", "jdk17"}, tp.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if tp.Mode != podtemplate.ModeNormal || tp.MaxAgents != 4 || tp.ConnectTimeout.String() != "1m30s" || *tp.ActiveDeadlineSeconds != 600 || tp.PodRetention != podtemplate.RetentionOnFailure {
		t.Errorf("template fields: mode %s maxAgents %d connectTimeout %s deadline %d retention %s", tp.Mode, tp.MaxAgents, tp.ConnectTimeout, *tp.ActiveDeadlineSeconds, tp.PodRetention)
	}
	spec := tp.Pod.Spec
	if spec.ServiceAccountName != "builder" || !spec.HostNetwork || *spec.SecurityContext.RunAsUser != 1000 {
		t.Errorf("pod spec: %+v", spec)
	}
	if diff := cmp.Diff(map[string]string{"disk": "ssd", "zone": "a"}, spec.NodeSelector); diff != "" {
		t.Errorf("nodeSelector (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{10, 20}, spec.SecurityContext.SupplementalGroups); diff != "" {
		t.Errorf("supplementalGroups (-want +got):\n%s", diff)
	}
	if got := tp.Pod.Annotations["team"]; got != "payments" {
		t.Errorf("annotation team = %q", got)
	}
	maven := spec.Containers[0]
	if diff := cmp.Diff([]string{"/bin/sh", "-c"}, maven.Command); diff != "" {
		t.Errorf("command (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"echo hi", "${HOME}"}, maven.Args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
	if !maven.TTY || !*maven.SecurityContext.Privileged || maven.ImagePullPolicy != corev1.PullAlways {
		t.Errorf("container flags: %+v", maven)
	}
	wantEnv := []corev1.EnvVar{
		{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "token", Optional: ptr(true)}}},
		{Name: "GLOBAL", Value: "2"}, // the container's own wins over the template's
	}
	if diff := cmp.Diff(wantEnv, maven.Env); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"cat", "/tmp/ok"}, maven.LivenessProbe.Exec.Command); diff != "" || maven.LivenessProbe.PeriodSeconds != 5 {
		t.Errorf("probe: %+v %s", maven.LivenessProbe, diff)
	}
	if len(maven.Ports) != 1 || maven.Ports[0].ContainerPort != 8080 {
		t.Errorf("ports: %+v", maven.Ports)
	}
	jnlp := spec.Containers[1]
	if len(jnlp.Args) != 0 || jnlp.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("jnlp: args %v policy %s", jnlp.Args, jnlp.ImagePullPolicy)
	}
	if diff := cmp.Diff([]corev1.EnvVar{{Name: "GLOBAL", Value: "1"}}, jnlp.Env); diff != "" {
		t.Errorf("jnlp env (-want +got):\n%s", diff)
	}
	for _, want := range []struct {
		line  int
		kind  Kind
		field string
	}{
		{6, Changed, "name"},          // Maven_Builds -> maven-builds
		{14, Dropped, "nodeSelector"}, // "broken"
		{46, Dropped, "args"},         // the jnlp secret and name
	} {
		if !findingAt(res, want.line, want.kind, want.field) {
			t.Errorf("no %s finding for %s at line %d in\n%v", want.kind, want.field, want.line, res.Findings)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestImportInheritanceNamesAndCaps(t *testing.T) {
	const in = `jenkins:
  clouds:
    - kubernetes:
        name: one
        containerCapStr: "5"
        jenkinsUrl: http://jenkins:8080/
        jenkinsTunnel: jenkins-agent:50000
        webSocket: true
        namespace: ci
        podLabels:
          - key: jenkins
            value: agent
        defaultsProviderTemplate: base
        templates:
          - name: base
            idleMinutes: 10
            yaml: |
              spec:
                tolerations:
                  - {key: ci, operator: Exists}
          - label: docker
            inheritFrom: "base missing"
            instanceCap: 20
            yamlMergeStrategy: merge
    - kubernetes:
        name: two
        containerCapStr: "3"
        jenkinsUrl: http://other:8080/
        templates:
          - name: base
            label: two
`
	res, set := importOne(t, "clouds.yaml", in, Options{})
	var names []string
	for _, tp := range set.Templates {
		names = append(names, tp.Name)
	}
	if diff := cmp.Diff([]string{"base", "one-2", "base-2"}, names); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	child, _ := set.Get("one-2")
	if child.MaxAgents != 5 { // instanceCap 20 bounded by the cloud's 5
		t.Errorf("maxAgents = %d, want 5", child.MaxAgents)
	}
	if !child.Agent.WebSocket {
		t.Errorf("webSocket not carried")
	}
	if len(child.Pod.Spec.Tolerations) != 1 || child.Pod.Labels["jenkins"] != "agent" {
		t.Errorf("inherited pod: %+v", child.Pod)
	}
	wantSettings := []SettingLine{
		{Name: "PROVISIONER_JENKINS_URL", Value: "http://jenkins:8080/", Source: "clouds.yaml:6"},
		{Name: "PROVISIONER_AGENT_TUNNEL", Value: "jenkins-agent:50000", Source: "clouds.yaml:7"},
		{Name: "PROVISIONER_NAMESPACE", Value: "ci", Source: "clouds.yaml:9"},
		{Name: "PROVISIONER_MAX_AGENTS", Value: "8", Source: "clouds.yaml:5"},
	}
	if diff := cmp.Diff(wantSettings, res.Settings); diff != "" {
		t.Errorf("settings (-want +got):\n%s", diff)
	}
	for _, want := range []struct {
		line  int
		kind  Kind
		field string
	}{
		{16, Dropped, "idleMinutes"},
		{21, Changed, "name"}, // no name
		{21, Dropped, "inheritFrom missing"},
		{28, Dropped, "jenkinsUrl"}, // a second, different URL
	} {
		if !findingAt(res, want.line, want.kind, want.field) {
			t.Errorf("no %s finding for %s at line %d in\n%v", want.kind, want.field, want.line, res.Findings)
		}
	}
	if !strings.Contains(string(res.YAML), "PROVISIONER_MAX_AGENTS=8") {
		t.Errorf("settings not printed in the output:\n%s", res.YAML)
	}
}

func TestImportHelmValues(t *testing.T) {
	const in = `controller:
  image: {tag: lts}
agent:
  containerCap: 7
  websocket: true
  customJenkinsLabels: [linux]
  podName: base-agent
  envVars:
    - {name: A, value: b}
  secretEnvVars:
    - {key: T, secretName: s, secretKey: k}
  volumes:
    - type: HostPath
      hostPath: /var/run/docker.sock
      mountPath: /var/run/docker.sock
  workspaceVolume:
    type: DynamicPVC
    requestsSize: 5Gi
  nodeSelector: {kubernetes.io/os: linux}
  idleMinutes: 3
  podTemplates:
    per-job: |
      - name: python
        label: python
        containers:
          - name: python
            image: python:3.12
additionalAgents:
  maven:
    podName: maven
    customJenkinsLabels: maven
    image: {repository: jenkins/jnlp-agent-maven, tag: jdk17}
    unknownKey: 1
additionalClouds:
  remote:
    kubernetesURL: https://remote
    additionalAgentsOverride: true
`
	res, set := importOne(t, "values.yaml", in, Options{HelmRelease: "ci"})
	var got []string
	for _, tp := range set.Templates {
		got = append(got, tp.Name+":"+strings.Join(tp.Labels, ","))
	}
	want := []string{"base-agent:ci-jenkins-agent,linux", "maven:ci-jenkins-agent,maven", "python:python", "base-agent-2:ci-jenkins-agent,linux", "python-2:python"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("templates (-want +got):\n%s", diff)
	}
	base, _ := set.Get("base-agent")
	if base.Workspace.Ephemeral == nil || base.Workspace.Ephemeral.Size.String() != "5Gi" || !base.Agent.WebSocket || base.MaxAgents != 7 {
		t.Errorf("base: workspace %+v webSocket %v maxAgents %d", base.Workspace, base.Agent.WebSocket, base.MaxAgents)
	}
	jnlp := base.Pod.Spec.Containers[0]
	if jnlp.Image != "jenkins/inbound-agent:3385.vf1123fb_515da_-1" || len(jnlp.Env) != 2 || len(jnlp.VolumeMounts) != 1 {
		t.Errorf("jnlp from the chart's defaults and the values: %+v", jnlp)
	}
	if base.Pod.Spec.NodeSelector["kubernetes.io/os"] != "linux" || base.Pod.Labels["jenkins/ci-jenkins-agent"] != "true" {
		t.Errorf("pod: %+v", base.Pod)
	}
	maven, _ := set.Get("maven")
	if maven.Pod.Spec.Containers[0].Image != "jenkins/jnlp-agent-maven:jdk17" || len(maven.Pod.Spec.Containers[0].Env) != 2 {
		t.Errorf("maven merged over agent: %+v", maven.Pod.Spec.Containers[0])
	}
	for _, want := range []struct {
		line  int
		kind  Kind
		field string
	}{
		{20, Dropped, "idleMinutes"},
		{33, Dropped, "unknownKey"},
		{36, Dropped, "kubernetesURL"},
	} {
		if !findingAt(res, want.line, want.kind, want.field) {
			t.Errorf("no %s finding for %s at line %d in\n%v", want.kind, want.field, want.line, res.Findings)
		}
	}
}

func TestImportListAndFormats(t *testing.T) {
	const list = `- name: go
  label: golang
  containers:
    - name: go
      image: golang:1.26
      command: sleep
      args: infinity
`
	tests := []struct {
		name, text string
		format     Format
		want       Format
		wantErr    string
	}{
		{name: "list detected", text: list, want: FormatList},
		{name: "list in a mapping", text: "templates:\n" + indent(list), want: FormatList},
		{name: "jcasc in a configmap", text: "apiVersion: v1\nkind: ConfigMap\ndata:\n  casc.yaml: |\n    jenkins:\n      clouds:\n        - kubernetes:\n            templates:\n" + indent(indent(indent(indent(indent(indent(list)))))), want: FormatJCasC},
		{name: "multi-document", text: "kind: Namespace\n---\njenkins:\n  clouds:\n    - kubernetes:\n        templates:\n" + indent(indent(indent(indent(list)))), want: FormatJCasC},
		{name: "forced wrong", text: list, format: FormatHelm, wantErr: "no pod templates found"},
		{name: "nothing", text: "a: b\n", wantErr: "no Kubernetes plugin configuration found"},
		{name: "not yaml", text: "a: [\n", wantErr: "invalid YAML"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Import([]Input{{Name: "in.yaml", Data: []byte(tc.text)}}, Options{Format: tc.format})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Formats["in.yaml"]; got != tc.want {
				t.Errorf("format = %s, want %s", got, tc.want)
			}
			set, err := podtemplate.Parse("out", res.YAML)
			if err != nil {
				t.Fatalf("%v\n%s", err, res.YAML)
			}
			c := set.Templates[0].Pod.Spec.Containers[0]
			if diff := cmp.Diff([]string{"sleep"}, c.Command); diff != "" || c.Args[0] != "infinity" || c.Image != "golang:1.26" {
				t.Errorf("container %+v %s", c, diff)
			}
		})
	}
}

func indent(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	for i := range lines {
		lines[i] = "  " + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}

func TestImportReportsPipelinePods(t *testing.T) {
	const in = `jenkins:
  clouds:
    - kubernetes:
        templates:
          - name: a
            label: a
jobs:
  - script: |
      pipelineJob('x') {
        definition { cps { script("""
          podTemplate(label: 'mypod', yaml: '...') { node('mypod') { sh 'true' } }
        """) } }
      }
`
	res, _ := importOne(t, "jobs.yaml", in, Options{})
	if !findingAt(res, 11, PerPipeline, "podTemplate") {
		t.Errorf("no per-pipeline finding at line 11: %v", res.Findings)
	}
}

func TestSplitCommandLine(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		ok   bool
	}{
		{"/bin/sh -c", []string{"/bin/sh", "-c"}, true},
		{"sh -c 'echo a b'", []string{"sh", "-c", "echo a b"}, true},
		{`a "b c" ''`, []string{"a", "b c", ""}, true},
		{"  a   b ", []string{"a", "b"}, true},
		{"a 'b", nil, false},
	}
	for _, tc := range tests {
		got, ok := splitCommandLine(tc.in)
		if ok != tc.ok || !cmp.Equal(got, tc.want) {
			t.Errorf("splitCommandLine(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// TestSecretVolumeMode: SecretVolume's defaultMode is decimal in the plugin; an octal-looking
// number Kubernetes would refuse is read as octal and reported.
func TestSecretVolumeMode(t *testing.T) {
	for _, tc := range []struct {
		mode string
		want int32
		kind Kind
	}{
		{"420", 420, ""},
		{"600", 0o600, Changed},
		{"999", 0, Dropped},
		{"rw", 0, Dropped},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			in := "- label: a\n  volumes:\n    - secretVolume: {secretName: s, mountPath: /s, defaultMode: \"" + tc.mode + "\"}\n"
			res, set := importOne(t, "list.yaml", in, Options{})
			got := int32(0)
			if m := set.Templates[0].Pod.Spec.Volumes[0].Secret.DefaultMode; m != nil {
				got = *m
			}
			if got != tc.want {
				t.Errorf("defaultMode %d, want %d", got, tc.want)
			}
			if tc.kind != "" && !findingAt(res, 3, tc.kind, "defaultMode") {
				t.Errorf("no %s finding: %v", tc.kind, res.Findings)
			}
		})
	}
}

// TestImportYAMLField: the template's yaml is the pod's base and the fields merge over it
// (containers by name, as PodTemplateBuilder's combine does); fields Kubernetes does not know
// are reported and left out, the agent's own variables too.
func TestImportYAMLField(t *testing.T) {
	const in = `- name: y
  label: y
  yaml: |
    apiVersion: v1
    kind: Pod
    metadata:
      labels: {from: yaml}
    spec:
      nodeSelectr: {typo: here}
      tolerations: [{key: k, operator: Exists}]
      containers:
        - name: maven
          image: maven:3.8
          env: [{name: FROM_YAML, value: "1"}]
        - name: jnlp
          env: [{name: JENKINS_URL, value: "http://jenkins:8080/"}]
  containers:
    - name: maven
      image: maven:3.9
      command: sleep
`
	res, set := importOne(t, "list.yaml", in, Options{})
	tp := set.Templates[0]
	spec := tp.Pod.Spec
	if tp.Pod.Labels["from"] != "yaml" || len(spec.Tolerations) != 1 {
		t.Errorf("yaml not the base: %+v", tp.Pod)
	}
	var maven, jnlp *corev1.Container
	for i := range spec.Containers {
		switch spec.Containers[i].Name {
		case "maven":
			maven = &spec.Containers[i]
		case "jnlp":
			jnlp = &spec.Containers[i]
		}
	}
	if maven == nil || maven.Image != "maven:3.9" || len(maven.Env) != 1 || maven.Command[0] != "sleep" {
		t.Errorf("fields not merged over the yaml's container: %+v", maven)
	}
	if jnlp == nil || len(jnlp.Env) != 0 {
		t.Errorf("jnlp kept the agent's own variable: %+v", jnlp)
	}
	if !findingAt(res, 3, Dropped, "yaml") || !findingAt(res, 3, Dropped, "yaml jnlp env JENKINS_URL") {
		t.Errorf("findings: %v", res.Findings)
	}
	if len(res.Settings) != 1 || res.Settings[0].Name != "PROVISIONER_AGENT_JENKINS_URL" {
		t.Errorf("settings: %v", res.Settings)
	}
}

func TestCascVariables(t *testing.T) {
	const in = `jenkins:
  clouds:
    - kubernetes:
        jenkinsUrl: "${JENKINS_URL}"
        templates:
          - name: a
            label: a
            containers:
              - name: jnlp
                args: "^${computer.jnlpmac} ^${computer.name}"
              - name: sh
                image: busybox:1.37
                command: "sh -c"
                args: "echo ^${HOME}"
`
	res, set := importOne(t, "casc.yaml", in, Options{})
	if !findingAt(res, 4, Changed, "jenkinsUrl") {
		t.Errorf("unresolved ${JENKINS_URL} not reported: %v", res.Findings)
	}
	if findingAt(res, 10, Changed, "args") || findingAt(res, 14, Changed, "args") {
		t.Errorf("escaped or the plugin's own variables reported: %v", res.Findings)
	}
	sh := set.Templates[0].Pod.Spec.Containers[1]
	if diff := cmp.Diff([]string{"echo", "${HOME}"}, sh.Args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
}

// TestHelmConfigScripts: clouds in controller.JCasC.configScripts are imported beside the
// chart's own agents.
func TestHelmConfigScripts(t *testing.T) {
	const in = `controller:
  JCasC:
    configScripts:
      more-clouds: |
        jenkins:
          clouds:
            - kubernetes:
                name: extra
                templates:
                  - name: go
                    label: golang
                    containers:
                      - name: go
                        image: golang:1.26
`
	res, set := importOne(t, "values.yaml", in, Options{})
	if res.Formats["values.yaml"] != FormatHelm {
		t.Errorf("format %s", res.Formats["values.yaml"])
	}
	var names []string
	for _, tp := range set.Templates {
		names = append(names, tp.Name)
	}
	if diff := cmp.Diff([]string{"go", "default"}, names); diff != "" {
		t.Errorf("templates (-want +got):\n%s", diff)
	}
	// Lines inside the configScripts string are the file's own lines.
	if !strings.Contains(string(res.YAML), "# values.yaml:10: template go, cloud extra") {
		t.Errorf("the go template's source line is not values.yaml:10:\n%s", res.YAML)
	}
}
