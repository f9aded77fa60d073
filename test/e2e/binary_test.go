package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// builtBinary is one command built once per test run.
type builtBinary struct {
	once sync.Once
	path string
	err  error
}

var provisionerBin, demoBin builtBinary

// provisionerBinary builds cmd/provisioner once per test run: these tests run the product as a user
// runs it.
func provisionerBinary(t *testing.T) string { return provisionerBin.build(t, "provisioner") }

// demoBinary builds cmd/provisioner-demo once per test run, as `make demo` does.
func demoBinary(t *testing.T) string { return demoBin.build(t, "provisioner-demo") }

func (b *builtBinary) build(t *testing.T, command string) string {
	t.Helper()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", command+"-e2e-bin-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, command)
		out, err := exec.Command("go", "build", "-o", b.path, "github.com/jenkins-agent-provisioner/provisioner/cmd/"+command).CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build ./cmd/%s: %v\n%s", command, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// process is one running `provisioner run`.
type process struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan error
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startBinary runs `provisioner run` against the rig's Jenkins and namespace.
func (r *rig) startBinary(extraEnv ...string) *process {
	r.t.Helper()
	cmd := exec.Command(provisionerBinary(r.t), "run")
	cmd.Env = append(os.Environ(),
		"PROVISIONER_JENKINS_URL="+r.jenkins.URL(),
		"PROVISIONER_JENKINS_USER="+jenkinsUser,
		"PROVISIONER_JENKINS_TOKEN="+jenkinsToken,
		"PROVISIONER_NAMESPACE="+r.ns,
		"PROVISIONER_TEMPLATES="+r.templates,
		"PROVISIONER_KUBECONFIG="+env.Kubeconfig,
		"PROVISIONER_LISTEN="+freeAddr(r.t),
		"PROVISIONER_POLL_INTERVAL=200ms",
		"PROVISIONER_BUSY_POLL_INTERVAL=100ms",
		"PROVISIONER_RELEASE_GRACE=2s",
		"PROVISIONER_ORPHAN_GRACE=5s",
		"PROVISIONER_BACKOFF_BASE=1s",
		"PROVISIONER_BACKOFF_MAX=4s",
	)
	cmd.Env = append(cmd.Env, extraEnv...)
	p := &process{cmd: cmd, logs: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	r.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if r.t.Failed() {
			r.t.Logf("provisioner output:\n%s", tail(p.logs.String(), 4000))
		}
	})
	return p
}

func (p *process) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	p.done <- nil // Cleanup's receive must not block
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// Killed with SIGKILL at random moments while it provisions and restarted each time, the provisioner
// loses no build and leaks nothing: every decision is remade from Kubernetes and Jenkins.
func TestKilledMidProvisioningLosesNothing(t *testing.T) {
	// Small caps stretch provisioning over the whole run, so every kill lands while agents are being
	// made, started and deleted.
	r := newRig(t, rigOptions{noController: true, maxPerTemplate: 3})
	maven, docker, pipeline := createJobs(r.jenkins, 8, 2*time.Second)
	jobs := append(append(maven, docker...), pipeline...)
	r.queue(len(jobs), jobs...)

	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	for range 6 {
		p := r.startBinary()
		time.Sleep(300*time.Millisecond + time.Duration(rng.IntN(1500))*time.Millisecond)
		p.kill(t)
		done := 0
		for _, b := range r.jenkins.Builds() {
			if b.Done {
				done++
			}
		}
		t.Logf("killed: %d pods created so far, %d alive, %d builds done", len(r.pods.createdNames()), r.pods.liveCount(), done)
	}
	p := r.startBinary()
	builds := r.waitBuilds(len(jobs), 3*time.Minute)

	pods := r.pods.createdNames()
	seen := map[string]string{}
	for _, b := range builds {
		id := fmt.Sprintf("%s #%d", b.Job, b.Number)
		if b.Number != 1 {
			t.Errorf("%s: a job ran twice", id)
		}
		if _, ok := pods[b.Node]; !ok {
			t.Errorf("%s ran on %q, not an agent pod of ours", id, b.Node)
		}
		if other, dup := seen[b.Node]; dup {
			t.Errorf("agent %s ran %s and %s", b.Node, other, id)
		}
		seen[b.Node] = id
		if b.Result != "SUCCESS" {
			t.Errorf("%s ended %s, want SUCCESS (an agent deleted mid-build?)", id, b.Result)
		}
	}
	r.assertNothingLeft(90 * time.Second)
	p.kill(t)
}

// SIGTERM stops the binary cleanly: exit code 0, and the running agent is left alone.
func TestSIGTERMExitsCleanly(t *testing.T) {
	r := newRig(t, rigOptions{noController: true})
	r.jenkins.CreateFreestyleJob("long", "maven", 6*time.Second)
	r.queue(1, "long")
	p := r.startBinary()
	eventually(t, 60*time.Second, func() (bool, string) {
		for _, b := range r.jenkins.Builds() {
			if !b.Started.IsZero() {
				return true, ""
			}
		}
		return false, "build not started"
	})
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Errorf("provisioner exited with %v after SIGTERM, want 0\n%s", err, tail(p.logs.String(), 2000))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("provisioner still running 20s after SIGTERM")
	}
	builds := r.waitBuilds(1, 30*time.Second)
	if builds[0].Result != "SUCCESS" {
		t.Errorf("running build ended %s after the provisioner stopped, want SUCCESS", builds[0].Result)
	}
	if n := r.pods.liveCount(); n != 1 {
		t.Errorf("%d agent pods after shutdown, want the running one left alone", n)
	}
}

// The demo, run as `make demo` runs it (the provisioner-demo binary), ends with nothing left over.
func TestDemoAsAUserRunsIt(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own control plane")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, demoBinary(t), "--builds", "2")
	out, err := cmd.CombinedOutput()
	text := string(out)
	if err != nil {
		t.Fatalf("provisioner-demo: %v\n%s", err, tail(text, 6000))
	}
	for _, want := range []string{"BuildQueued", "Provisioned", "AgentOnline", "BuildStarted", "BuildFinished", "PodGone",
		"AgentFailed", "builds run:        6 of 6", "resources left over: 0", "RESULT: ok"} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q:\n%s", want, tail(text, 6000))
		}
	}
}
