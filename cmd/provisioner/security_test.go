package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/jenkins-agent-provisioner/provisioner/internal/wiring"
)

const riskyTemplates = `templates:
  - name: docker
    labels: [docker]
    pod:
      spec:
        hostNetwork: true
        containers:
          - name: dind
            image: docker:27-dind
            securityContext: {privileged: true}
            env:
              - name: DOCKER_TLS_CERTDIR
                value: ""
`

// TestTemplatesCheckWarnsAboutRiskySettings: `templates check` accepts a privileged dind on TCP
// without TLS (an administrator's choice) but says so; naming the provisioner's own service account
// is refused.
func TestTemplatesCheckWarnsAboutRiskySettings(t *testing.T) {
	dir := t.TempDir()
	risky := filepath.Join(dir, "risky.yaml")
	if err := os.WriteFile(risky, []byte(riskyTemplates), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := runTemplates(context.Background(), []string{"check", "--offline", "--file", risky}, &stdout, &stderr); code != 0 {
		t.Fatalf("check exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{
		"warning: " + risky + ":2: template docker: pod.spec.hostNetwork:",
		"template docker: pod.spec.containers[dind].securityContext.privileged: a privileged container is root on the node",
		"template docker: pod.spec.containers[dind]: DOCKER_TLS_CERTDIR is empty",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}

	own := filepath.Join(dir, "own.yaml")
	doc := "templates:\n  - name: a\n    labels: [a]\n    pod: {spec: {serviceAccountName: jenkins-agent-provisioner}}\n"
	if err := os.WriteFile(own, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	t.Setenv("PROVISIONER_SERVICE_ACCOUNT", "jenkins-agent-provisioner")
	if code := runTemplates(context.Background(), []string{"check", "--offline", "--file", own}, &stdout, &stderr); code != 1 {
		t.Fatalf("check exit %d, want 1; stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "the provisioner's own service account") {
		t.Errorf("stderr does not say why:\n%s", stderr.String())
	}
}

// TestStatusPageCanLeaveTheMainAddress: with PROVISIONER_STATUS_LISTEN set the main address serves
// metrics and health but not the status page. Before, the page was always on PROVISIONER_LISTEN.
func TestStatusPageCanLeaveTheMainAddress(t *testing.T) {
	h := (&wiring.App{Registry: prometheus.NewRegistry()}).HealthAndMetrics()
	for path, want := range map[string]int{"/": http.StatusNotFound, "/metrics": http.StatusOK, "/healthz": http.StatusOK} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != want {
			t.Errorf("GET %s = %d, want %d", path, rec.Code, want)
		}
	}
	t.Setenv("PROVISIONER_JENKINS_URL", "https://j/")
	t.Setenv("PROVISIONER_STATUS_LISTEN", "127.0.0.1:8081")
	cfg, err := loadRunConfig(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.StatusListen != "127.0.0.1:8081" || cfg.Listen != ":8080" {
		t.Errorf("StatusListen %q, Listen %q", cfg.StatusListen, cfg.Listen)
	}
}
