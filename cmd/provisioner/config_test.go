package main

import (
	"bytes"
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Every setting is listed by `provisioner run --help` with its variable and its flag.
func TestRunHelpListsEverySetting(t *testing.T) {
	var out bytes.Buffer
	if code := dispatch(context.Background(), []string{"run", "--help"}, &out, &out); code != 0 {
		t.Fatalf("run --help exited %d:\n%s", code, out.String())
	}
	typ := reflect.TypeOf(runConfig{})
	for i := range typ.NumField() {
		env := typ.Field(i).Tag.Get("envconfig")
		for _, want := range []string{"PROVISIONER_" + env, "--" + flagName(env)} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("run --help does not list %s", want)
			}
		}
	}
}

func TestRunConfigFromEnvironmentAndFlags(t *testing.T) {
	t.Setenv("PROVISIONER_JENKINS_URL", "https://jenkins.example.com/")
	t.Setenv("PROVISIONER_JENKINS_USER", "robot")
	t.Setenv("PROVISIONER_JENKINS_TOKEN", "s3cr3t-token")
	t.Setenv("PROVISIONER_MAX_AGENTS", "40")
	t.Setenv("PROVISIONER_POLL_INTERVAL", "2s")
	t.Setenv("PROVISIONER_KUEUE_QUEUE", "jenkins-agents")
	cfg, err := loadRunConfig([]string{"--max-agents", "7", "--namespace", "agents"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{"url": cfg.JenkinsURL, "max": cfg.MaxAgents, "poll": cfg.PollInterval, "ns": cfg.Namespace,
		"busy": cfg.BusyPollInterval, "templates": cfg.Templates, "queue": cfg.KueueQueue}
	want := map[string]any{"url": "https://jenkins.example.com/", "max": 7, "poll": 2 * time.Second, "ns": "agents",
		"busy": 250 * time.Millisecond, "templates": "/etc/provisioner/templates", "queue": "jenkins-agents"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("settings (-want +got):\n%s", diff)
	}
}

// A missing or invalid setting stops start-up with a message naming the variable and the flag.
func TestRunRefusesBadSettings(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no Jenkins URL", nil, nil, "PROVISIONER_JENKINS_URL (--jenkins-url) is required"},
		{"not a URL", map[string]string{"PROVISIONER_JENKINS_URL": "jenkins:8080"}, nil, "must be an http:// or https:// URL"},
		{"bad duration", map[string]string{"PROVISIONER_JENKINS_URL": "http://j/", "PROVISIONER_POLL_INTERVAL": "soon"}, nil, "POLL_INTERVAL"},
		{"poll too fast", map[string]string{"PROVISIONER_JENKINS_URL": "http://j/"}, []string{"--poll-interval", "10ms"}, "PROVISIONER_POLL_INTERVAL (--poll-interval) must be at least 100ms"},
		{"negative cap", map[string]string{"PROVISIONER_JENKINS_URL": "http://j/"}, []string{"--max-agents", "-1"}, "PROVISIONER_MAX_AGENTS (--max-agents)"},
		{"token without user", map[string]string{"PROVISIONER_JENKINS_URL": "http://j/", "PROVISIONER_JENKINS_TOKEN": "x"}, nil, "PROVISIONER_JENKINS_USER (--jenkins-user) is required with a token"},
		{"not a LocalQueue name", map[string]string{"PROVISIONER_JENKINS_URL": "http://j/", "PROVISIONER_KUEUE_QUEUE": "Team_A"}, nil, `PROVISIONER_KUEUE_QUEUE (--kueue-queue) "Team_A" is not a LocalQueue name`},
		{"unknown flag", map[string]string{"PROVISIONER_JENKINS_URL": "http://j/"}, []string{"--jenkins"}, "flag provided but not defined: -jenkins"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var out bytes.Buffer
			code := dispatch(context.Background(), append([]string{"run"}, tt.args...), &out, &out)
			if code == 0 {
				t.Fatal("run started with a bad setting")
			}
			if !strings.Contains(out.String(), tt.want) {
				t.Errorf("message %q does not say %q", out.String(), tt.want)
			}
		})
	}
}

// The token never appears in a log line, even when start-up fails after reading it.
func TestTokenNeverLogged(t *testing.T) {
	const token = "tok-4f9a7c1e2b3d"
	t.Setenv("PROVISIONER_JENKINS_URL", "http://127.0.0.1:1/")
	t.Setenv("PROVISIONER_JENKINS_USER", "robot")
	t.Setenv("PROVISIONER_JENKINS_TOKEN", token)
	t.Setenv("PROVISIONER_KUBECONFIG", "/nonexistent/kubeconfig")
	t.Setenv("PROVISIONER_LOG_LEVEL", "debug")
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if code := dispatch(ctx, []string{"run"}, &out, &out); code == 0 {
		t.Fatal("run succeeded without a cluster")
	}
	if strings.Contains(out.String(), token) {
		t.Errorf("the token appears in the output:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "/nonexistent/kubeconfig") {
		t.Errorf("the failure does not name the kubeconfig:\n%s", out.String())
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if code := dispatch(context.Background(), []string{"version"}, &out, &out); code != 0 || out.String() != "provisioner dev\n" {
		t.Errorf("version: code %d, output %q", code, out.String())
	}
}
