// Package apiservertest checks rendered agent pods against a real kube-apiserver. It is its own
// package because testenv.Main starts a control plane for every test binary that uses it, and the
// podtemplate unit tests and fuzzers should not pay for one.
package apiservertest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
	"github.com/jenkins-agent-provisioner/provisioner/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{}, &env) }

const examplesFile = "../../../deploy/examples/templates.yaml"

func identity(t *podtemplate.Template) podtemplate.Identity {
	return podtemplate.Identity{
		Name:       podtemplate.NewAgentName(t.Name),
		Namespace:  "default",
		Secret:     strings.Repeat("ab", 32),
		JenkinsURL: "https://jenkins.example.com/",
	}
}

// TestExamplePodsPassServerSideDryRun has the apiserver validate (and run admission on) every pod
// the example templates render, so a template that looks fine to our own checks but that Kubernetes
// would refuse fails here.
func TestExamplePodsPassServerSideDryRun(t *testing.T) {
	set, err := podtemplate.Load(examplesFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	checked := 0
	for _, tpl := range set.Templates {
		if !tpl.Selectable() {
			continue
		}
		checked++
		t.Run(tpl.Name, func(t *testing.T) {
			pod, secret, err := podtemplate.Render(tpl, identity(tpl))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := env.Client.CoreV1().Secrets("default").Create(ctx, secret, dry); err != nil {
				t.Fatalf("secret rejected: %v", err)
			}
			got, err := env.Client.CoreV1().Pods("default").Create(ctx, pod, dry)
			if err != nil {
				t.Fatalf("pod rejected: %v", err)
			}
			// The apiserver's defaulting must not have dropped anything we rely on.
			if got.Spec.RestartPolicy != corev1.RestartPolicyNever || got.Labels[podtemplate.LabelTemplate] != tpl.Name {
				t.Errorf("dry-run pod lost restartPolicy or labels: %v %v", got.Spec.RestartPolicy, got.Labels)
			}
			if _, err := env.Client.CoreV1().Pods("default").Get(ctx, pod.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("dry run stored the pod: %v", err)
			}
		})
	}
	if checked < 3 {
		t.Fatalf("only %d example templates checked", checked)
	}
}

// TestDryRunCatchesWhatOnlyTheApiserverKnows shows why check asks the apiserver: a template that
// passes the loader's own checks can still be refused.
func TestDryRunCatchesWhatOnlyTheApiserverKnows(t *testing.T) {
	doc := `templates:
  - name: bad
    labels: [bad]
    pod:
      spec:
        containers:
          - name: build
            image: busybox
            ports: [{containerPort: 8080, protocol: SCTPX}]
`
	set, err := podtemplate.Parse("bad.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	tpl := set.Templates[0]
	pod, _, err := podtemplate.Render(tpl, identity(tpl))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = env.Client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.containers[0].ports[0].protocol") {
		t.Errorf("dry run error = %v, want Invalid naming spec.containers[0].ports[0].protocol", err)
	}
}

// TestSecretOwnerReference follows the lifecycle's order: Secret, then pod, then the owner
// reference; the apiserver must accept the reference as SetSecretOwner writes it.
func TestSecretOwnerReference(t *testing.T) {
	set, err := podtemplate.Load(examplesFile)
	if err != nil {
		t.Fatal(err)
	}
	tpl, ok := set.Select("maven")
	if !ok {
		t.Fatal("no template for maven")
	}
	pod, secret, err := podtemplate.Render(tpl, identity(tpl))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	secrets, pods := env.Client.CoreV1().Secrets("default"), env.Client.CoreV1().Pods("default")
	if secret, err = secrets.Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = secrets.Delete(context.Background(), secret.Name, metav1.DeleteOptions{}) })
	created, err := pods.Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pods.Delete(context.Background(), created.Name, metav1.DeleteOptions{}) })
	podtemplate.SetSecretOwner(secret, created)
	updated, err := secrets.Update(ctx, secret, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: created.Name, UID: created.UID}}
	if diff := cmp.Diff(want, updated.OwnerReferences); diff != "" {
		t.Errorf("owner references mismatch (-want +got):\n%s", diff)
	}
}

// TestTemplatesCommands runs `provisioner templates check` and `render` from the built binary, as
// an administrator would, against the real apiserver.
func TestTemplatesCommands(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "provisioner")
	build := exec.Command("go", "build", "-o", bin, "github.com/jenkins-agent-provisioner/provisioner/cmd/provisioner")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	run := func(args ...string) (stdout, stderr string, code int) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig, "PROVISIONER_TEMPLATES=", "PROVISIONER_KUBECONFIG=")
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case errors.As(err, &exit):
			code = exit.ExitCode()
		case err != nil:
			t.Fatal(err)
		}
		return out.String(), errOut.String(), code
	}

	t.Run("check examples", func(t *testing.T) {
		stdout, stderr, code := run("templates", "check", "--file", examplesFile)
		if code != 0 {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		if !strings.Contains(stdout, "4 templates valid; 3 rendered pods accepted by the apiserver (server-side dry run in namespace default)") {
			t.Errorf("stdout:\n%s", stdout)
		}
	})

	t.Run("check reports the apiserver's refusal", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "templates.yaml")
		doc := "templates:\n  - name: bad\n    labels: [bad]\n    pod:\n      spec:\n        containers:\n          - name: build\n            image: busybox\n            ports: [{containerPort: 8080, protocol: SCTPX}]\n"
		if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		stdout, stderr, code := run("templates", "check", "--file", file)
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		wantPrefix := "error: " + file + ":2: template bad: apiserver rejected the pod: Pod \"bad-"
		if !strings.HasPrefix(stderr, wantPrefix) || !strings.Contains(stderr, `spec.containers[0].ports[0].protocol: Unsupported value: "SCTPX"`) {
			t.Errorf("stderr:\n%s\nwant it to start with %q and name the field", stderr, wantPrefix)
		}
		t.Logf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	})

	t.Run("check reports loader errors", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "templates.yaml")
		doc := "templates:\n  - name: a\n    labels: [a]\n    maxAgents: 0\n  - name: b\n    labels: [b]\n    pod: {spec: {containers: [{name: x, image: y, imagePullPolicy: Sometimes}]}}\n"
		if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		_, stderr, code := run("templates", "check", "--file", file)
		want := "error: " + file + ":4: templates[0].maxAgents: must be at least 1, got 0\n" +
			"error: " + file + ":7: templates[1].pod.spec.containers[0].imagePullPolicy: unsupported value \"Sometimes\" (supported: Always, IfNotPresent, Never)\n"
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		if diff := cmp.Diff(want, stderr); diff != "" {
			t.Errorf("stderr mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("render", func(t *testing.T) {
		stdout, stderr, code := run("templates", "render", "--file", examplesFile, "--label", "linux && docker", "--namespace", "ci")
		if code != 0 {
			t.Fatalf("exit %d\nstderr:\n%s", code, stderr)
		}
		for _, want := range []string{
			"# label expression: linux&&docker\n",
			"# template: node (" + examplesFile + ":",
			"kind: Pod\n",
			"namespace: ci\n",
			"jenkins-agent-provisioner/template: node\n",
			"stringData:\n  jenkins-agent-secret: '********'\n",
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("render output lacks %q:\n%s", want, stdout)
			}
		}
		if strings.Contains(stdout, "data:\n  jenkins-agent-secret") {
			t.Errorf("render printed secret data:\n%s", stdout)
		}
	})

	t.Run("render with no matching template", func(t *testing.T) {
		_, stderr, code := run("templates", "render", "--file", examplesFile, "--label", "windows")
		if code != 1 || stderr != "error: no template's labels satisfy windows\n" {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
}
