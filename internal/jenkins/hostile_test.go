package jenkins

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	yaml "go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins/jenkinstest"
)

// hugeBody writes n bytes of an HTML page (a stack trace, a proxy's page) without holding it: the
// test measures the client, not the server.
func hugeBody(w io.Writer, n int) {
	bw := bufio.NewWriterSize(w, 64<<10)
	_, _ = io.WriteString(bw, "<html><head><title>Error 500 java.lang.OutOfMemoryError</title></head><body><pre>")
	line := []byte("\tat hudson.model.Queue.maintain(Queue.java:1640) <b>frame</b> &amp; more <!-- x -->\n")
	for written := 0; written < n; written += len(line) {
		_, _ = bw.Write(line)
	}
	_, _ = io.WriteString(bw, "</pre></body></html>")
	_ = bw.Flush()
}

const hugeSize = 60 << 20

// hugeServer answers every request with a 60 MB body of the kind named by the path's first segment.
func hugeServer(t testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/error/"):
			w.Header().Set("Content-Type", "text/html;charset=utf-8")
			w.WriteHeader(http.StatusInternalServerError)
			hugeBody(w, hugeSize)
		case strings.HasPrefix(r.URL.Path, "/html200/"):
			w.Header().Set("Content-Type", "text/html;charset=utf-8")
			hugeBody(w, hugeSize)
		case strings.HasPrefix(r.URL.Path, "/mislabelled/"):
			// HTML under a JSON Content-Type: only the first byte gives it away.
			w.Header().Set("Content-Type", "application/json;charset=utf-8")
			hugeBody(w, hugeSize)
		case strings.HasPrefix(r.URL.Path, "/bigjson/"):
			w.Header().Set("Content-Type", "application/json;charset=utf-8")
			bw := bufio.NewWriter(w)
			_, _ = io.WriteString(bw, `{"items":[`)
			for i := 0; i < hugeSize/64; i++ {
				_, _ = fmt.Fprintf(bw, `{"id":%d,"why":"Waiting for next available executor"},`, i)
			}
			_, _ = io.WriteString(bw, `{"id":0}]}`)
			_ = bw.Flush()
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestHugeAnswersStayCheap: a 60 MB error page, HTML page with status 200 (labelled or not) or JSON
// answer costs a bounded few MiB and a clear error. Before, the client read up to 64 MiB of any
// answer and ran regular expressions and a []rune conversion over it: some 600 MB allocated for
// the error page.
func TestHugeAnswersStayCheap(t *testing.T) {
	srv := hugeServer(t)
	tests := []struct {
		kind    string
		wantErr error
		wantMsg string
	}{
		{"error", ErrUnavailable, "java.lang.OutOfMemoryError"},
		{"html200", ErrUnexpectedResponse, "expected JSON, got text/html"},
		{"mislabelled", ErrUnexpectedResponse, "expected JSON, got application/json"},
		{"bigjson", ErrUnexpectedResponse, "answer larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			cfg := testConfig(srv.URL + "/" + tt.kind + "/")
			cfg.RetryMax = -1
			c := newClient(t, cfg)
			var err error
			allocated := bytesAllocated(func() { _, err = c.Queue(context.Background()) })
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Queue error = %v, want %v containing %q", err, tt.wantErr, tt.wantMsg)
			}
			if len(err.Error()) > 1000 {
				t.Errorf("error message is %d bytes", len(err.Error()))
			}
			// The JSON cap is 16 MiB and its buffer may double while it grows; an error page costs
			// only its first KiBs.
			limit := uint64(4 << 20)
			if tt.kind == "bigjson" {
				limit = 3 * maxBody
			}
			if allocated > limit {
				t.Errorf("one Queue call allocated %d MiB, want at most %d MiB", allocated>>20, limit>>20)
			}
		})
	}
}

func bytesAllocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// deploymentMemoryLimit is the provisioner container's memory limit in deploy/manifests, which the
// Deployment also hands the Go runtime as GOMEMLIMIT.
func deploymentMemoryLimit(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile("../../deploy/manifests/deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Name      string `yaml:"name"`
						Resources struct {
							Limits map[string]string `yaml:"limits"`
						} `yaml:"resources"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "provisioner" {
			q, err := resource.ParseQuantity(c.Resources.Limits["memory"])
			if err != nil {
				t.Fatalf("memory limit: %v", err)
			}
			return q.Value()
		}
	}
	t.Fatal("no provisioner container in deploy/manifests/deployment.yaml")
	return 0
}

// TestHugeAnswersStayUnderTheMemoryLimit runs the hostile answers in a child process with
// GOMEMLIMIT at the Deployment's memory limit, as the Deployment runs the provisioner, and reads the
// child's peak resident set (VmHWM) from the kernel. Before, the 60 MB error page alone took the
// child past the limit.
func TestHugeAnswersStayUnderTheMemoryLimit(t *testing.T) {
	if os.Getenv("JENKINS_HOSTILE_CHILD") == "1" {
		t.Skip("in the child")
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/status")
	}
	limit := deploymentMemoryLimit(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHostileChild$", "-test.v")
	cmd.Env = append(os.Environ(), "JENKINS_HOSTILE_CHILD=1", "GOMEMLIMIT="+strconv.FormatInt(limit, 10))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	_, rest, ok := strings.Cut(string(out), "peak RSS bytes: ")
	if !ok {
		t.Fatalf("child printed no peak:\n%s", out)
	}
	peak, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("peak RSS %d MiB with GOMEMLIMIT %d MiB", peak>>20, limit>>20)
	// Half the limit: the rest of the provisioner (informer caches, the status page) needs room too.
	if peak > limit/2 {
		t.Errorf("peak RSS %d MiB, want at most half the Deployment's %d MiB limit", peak>>20, limit>>20)
	}
}

func TestHostileChild(t *testing.T) {
	if os.Getenv("JENKINS_HOSTILE_CHILD") != "1" {
		t.Skip("run by TestHugeAnswersStayUnderTheMemoryLimit")
	}
	srv := hugeServer(t)
	for _, kind := range []string{"error", "html200", "mislabelled", "error", "html200"} {
		cfg := testConfig(srv.URL + "/" + kind + "/")
		cfg.RetryMax = -1
		c := newClient(t, cfg)
		if _, err := c.Queue(context.Background()); err == nil {
			t.Fatalf("%s: no error", kind)
		}
		if _, err := c.NodeSecret(context.Background(), "agent-x"); err == nil {
			t.Fatalf("%s: no error from NodeSecret", kind)
		}
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			fmt.Printf("peak RSS bytes: %d\n", kb<<10)
		}
	}
}

// TestErrorsCarryNoCredentials: an answer that echoes the request (proxies and debugging pages do)
// puts neither the token nor the Basic header value into the error.
func TestErrorsCarryNoCredentials(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		b.WriteString("<html><head><title>Request rejected</title></head><body><pre>")
		for k, v := range r.Header {
			fmt.Fprintf(&b, "%s: %s\n", k, strings.Join(v, ","))
		}
		b.WriteString("</pre></body></html>")
		w.Header().Set("Content-Type", "text/html")
		if strings.Contains(r.URL.Path, "/ok/") {
			_, _ = io.WriteString(w, b.String())
			return
		}
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, b.String())
	}))
	defer srv.Close()
	for _, prefix := range []string{"/bad/", "/ok/"} {
		cfg := testConfig(srv.URL + prefix)
		c := newClient(t, cfg)
		_, err := c.Queue(context.Background())
		if err == nil {
			t.Fatalf("%s: no error", prefix)
		}
		basic := base64.StdEncoding.EncodeToString([]byte(cfg.User + ":" + cfg.Token))
		if msg := err.Error(); strings.Contains(msg, cfg.Token) || strings.Contains(msg, basic) {
			t.Errorf("%s: error carries the credentials: %s", prefix, msg)
		}
		if !strings.Contains(err.Error(), "Authorization: Basic [redacted]") {
			t.Errorf("%s: error %q does not show the echo, redacted", prefix, err)
		}
	}
}

// TestNodeSecretNeverQuotesTheAnswer: whatever jenkins-agent.jnlp answers instead of the agent file,
// the secret in it reaches neither the error nor a log line.
func TestNodeSecretNeverQuotesTheAnswer(t *testing.T) {
	secret := strings.Repeat("abcdef", 10) + "abcd" // 64 hex characters, all letters
	answers := map[string]struct {
		ct, body string
	}{
		"agent-page": {"text/html", `<html><head><title>agent-x [Jenkins]</title></head><body>Run from agent command line: <pre>java -jar agent.jar -url http://j/ -secret ` + secret + ` -name agent-x</pre></body></html>`},
		"wrong-root": {"application/x-java-jnlp-file", `<` + secret + `><application-desc/></` + secret + `>`},
		"entity":     {"application/x-java-jnlp-file", `<jnlp><application-desc><argument>&` + secret + `;</argument></application-desc></jnlp>`},
		"mismatch":   {"application/x-java-jnlp-file", strings.Replace(strings.Replace(jnlpNew, testSecret, secret, 1), "linux-x7k2p", "other-"+secret, 1)},
		"bad-tag":    {"application/x-java-jnlp-file", `<jnlp><application-desc><argument>` + secret + `</wrong></jnlp>`},
		"text":       {"text/plain", secret + "\n"},
		"short-arg":  {"application/x-java-jnlp-file", `<jnlp><application-desc><argument>` + secret[:63] + `</argument><argument>agent-x</argument></application-desc></jnlp>`},
	}
	for name, a := range answers {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", a.ct)
				_, _ = io.WriteString(w, a.body)
			}))
			defer srv.Close()
			core, logs := observer.New(zapcore.DebugLevel)
			cfg := testConfig(srv.URL + "/")
			cfg.Logger = zap.New(core)
			c := newClient(t, cfg)
			_, err := c.NodeSecret(context.Background(), "agent-x")
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrUnexpectedResponse) {
				t.Errorf("error %v is not ErrUnexpectedResponse", err)
			}
			if strings.Contains(err.Error(), secret[:32]) || strings.Contains(err.Error(), secret[32:]) {
				t.Errorf("error quotes the answer: %v", err)
			}
			for _, e := range logs.All() {
				if line := fmt.Sprint(e.Message, e.ContextMap()); strings.Contains(line, secret[:32]) {
					t.Errorf("log line quotes the answer: %s", line)
				}
			}
		})
	}
}

// TestBodyCapFitsTenThousandItems sizes maxBody from the emulator's queue answer (the shape and
// fields Jenkins writes for the client's tree= query): 10 000 items of pipeline steps with long
// folder and job names and a three-atom label must fit twice over.
func TestBodyCapFitsTenThousandItems(t *testing.T) {
	srv := jenkinstest.New(jenkinstest.Options{QuietPeriod: time.Nanosecond})
	t.Cleanup(srv.Close)
	srv.AddUser(emuUser, emuToken, jenkinstest.OverallAdminister)
	c, _ := emuClient(t, srv)
	const n = 200
	for i := range n {
		name := fmt.Sprintf("platform-team-%03d-service-build-test-and-deploy-pipeline", i)
		srv.CreatePipelineJob(name, "linux && docker && large-runners", time.Hour)
		if _, err := srv.Schedule(name); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		srv.ResetStats()
		d, err := c.Queue(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(d) == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d builds queued for an agent", len(d), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	perItem := srv.Stats().Endpoints["queue"].Bytes / n
	t.Logf("%d bytes per queue item: 10 000 items are %d KiB; the cap is %d MiB", perItem, perItem*10_000>>10, maxBody>>20)
	if need := 2 * 10_000 * perItem; need > maxBody {
		t.Errorf("10 000 items need %d bytes twice over, more than maxBody %d", need, maxBody)
	}
}
