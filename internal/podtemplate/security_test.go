package podtemplate

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func ptrString(b *bool) string {
	if b == nil {
		return "unset"
	}
	if *b {
		return "true"
	}
	return "false"
}

// TestRenderWithholdsServiceAccountToken: an agent pod gets no Kubernetes token unless its template
// asks for one. Before, every rendered pod mounted the namespace's default service account token.
func TestRenderWithholdsServiceAccountToken(t *testing.T) {
	tests := []struct {
		name, spec string
		want       string
	}{
		{"nothing said", `{}`, "false"},
		{"asks for the token", `{automountServiceAccountToken: true}`, "true"},
		{"refuses it itself", `{automountServiceAccountToken: false}`, "false"},
		{"names a service account", `{serviceAccountName: builder}`, "unset"},
		{"names one and refuses the token", `{serviceAccountName: builder, automountServiceAccountToken: false}`, "false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := "templates:\n  - name: a\n    labels: [a]\n    pod: {spec: " + tt.spec + "}\n"
			set, err := Parse("t.yaml", []byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			pod, _, err := Render(set.Templates[0], goldenIdentity("a"))
			if err != nil {
				t.Fatal(err)
			}
			if got := ptrString(pod.Spec.AutomountServiceAccountToken); got != tt.want {
				t.Errorf("automountServiceAccountToken = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestRefusesTheProvisionersServiceAccount: with the option set, a template (or its parent) naming
// the provisioner's own service account is refused; without it, or naming another one, accepted.
func TestRefusesTheProvisionersServiceAccount(t *testing.T) {
	own := Options{ProvisionerServiceAccount: "jenkins-agent-provisioner"}
	tests := []struct {
		name string
		doc  string
		opts Options
		want string // "" accepted, else a part of the error
	}{
		{"own account", "templates:\n  - name: a\n    labels: [a]\n    pod: {spec: {serviceAccountName: jenkins-agent-provisioner}}\n", own,
			`t.yaml:4: templates[0].pod.spec.serviceAccountName: "jenkins-agent-provisioner" is the provisioner's own service account`},
		{"deprecated field", "templates:\n  - name: a\n    labels: [a]\n    pod: {spec: {serviceAccount: jenkins-agent-provisioner}}\n", own,
			`templates[0].pod.spec.serviceAccount: "jenkins-agent-provisioner" is the provisioner's own`},
		{"inherited", "templates:\n  - name: base\n    pod: {spec: {serviceAccountName: jenkins-agent-provisioner}}\n  - name: a\n    inheritFrom: [base]\n    labels: [a]\n", own,
			`"jenkins-agent-provisioner" is the provisioner's own service account`},
		{"another account", "templates:\n  - name: a\n    labels: [a]\n    pod: {spec: {serviceAccountName: builder}}\n", own, ""},
		{"option unset", "templates:\n  - name: a\n    labels: [a]\n    pod: {spec: {serviceAccountName: jenkins-agent-provisioner}}\n", Options{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseWith("t.yaml", []byte(tt.doc), tt.opts)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestSecurityWarnings(t *testing.T) {
	tests := []struct {
		name string
		pod  string
		want []string // fields warned about
	}{
		{"plain", `{spec: {containers: [{name: jnlp}]}}`, nil},
		{"privileged dind without TLS", `{spec: {containers: [{name: dind, image: "docker:27-dind", securityContext: {privileged: true}, env: [{name: DOCKER_TLS_CERTDIR, value: ""}]}]}}`,
			[]string{"pod.spec.containers[dind].securityContext.privileged", "pod.spec.containers[dind]"}},
		{"dind with TLS", `{spec: {containers: [{name: dind, image: "docker:27-dind", securityContext: {privileged: true}}]}}`,
			[]string{"pod.spec.containers[dind].securityContext.privileged"}},
		{"dind on a unix socket", `{spec: {containers: [{name: dind, image: "docker:27-dind", securityContext: {privileged: true}, args: ["--host=unix:///var/run/docker/docker.sock"], env: [{name: DOCKER_TLS_CERTDIR, value: ""}]}]}}`,
			[]string{"pod.spec.containers[dind].securityContext.privileged"}},
		{"dockerd -H tcp", `{spec: {containers: [{name: d, image: "example/engine", command: [dockerd, -H, "tcp://0.0.0.0:2375"]}]}}`,
			[]string{"pod.spec.containers[d]"}},
		{"dockerd --tls", `{spec: {containers: [{name: d, image: "example/engine", command: [dockerd, "--host=tcp://0.0.0.0:2376", --tlsverify]}]}}`, nil},
		{"client over tcp", `{spec: {containers: [{name: jnlp, env: [{name: DOCKER_HOST, value: "tcp://localhost:2375"}]}]}}`,
			[]string{"pod.spec.containers[jnlp]"}},
		{"client over tcp with TLS", `{spec: {containers: [{name: jnlp, env: [{name: DOCKER_HOST, value: "tcp://localhost:2376"}, {name: DOCKER_TLS_VERIFY, value: "1"}]}]}}`, nil},
		{"host namespaces and paths", `{spec: {hostNetwork: true, hostPID: true, volumes: [{name: sock, hostPath: {path: /var/run/docker.sock}}], containers: [{name: jnlp}]}}`,
			[]string{"pod.spec.hostNetwork", "pod.spec.hostPID", "pod.spec.volumes[sock].hostPath"}},
		{"capabilities", `{spec: {initContainers: [{name: init, image: busybox, securityContext: {capabilities: {add: [NET_ADMIN, SYS_ADMIN]}}}], containers: [{name: jnlp}]}}`,
			[]string{"pod.spec.initContainers[init].securityContext.capabilities.add"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := "templates:\n  - name: a\n    labels: [a]\n    pod: " + tt.pod + "\n"
			set, err := Parse("t.yaml", []byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range SecurityWarnings(set.Templates[0]) {
				got = append(got, w.Field)
				if w.Msg == "" {
					t.Errorf("warning on %s says nothing", w.Field)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

// TestShippedTemplatesHaveNoOpenDocker: the example templates (also shipped in deploy/manifests)
// run no Docker daemon, and point no client, at TCP without TLS. Before, the node template ran a
// privileged dind on tcp://0.0.0.0:2375 that every pod in the cluster could drive.
func TestShippedTemplatesHaveNoOpenDocker(t *testing.T) {
	set, err := Load(examplesFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tpl := range set.Templates {
		for _, w := range SecurityWarnings(tpl) {
			if w.Kind == WarnDockerWithoutTLS || w.Kind == WarnHostPath || w.Kind == WarnHostNamespace {
				t.Errorf("template %s: %s", tpl.Name, w)
			}
		}
	}
}
