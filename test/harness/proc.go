package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jenkins-agent-provisioner/provisioner/internal/waitfor"
)

// Proc is one running provisioner process (`provisioner run`), configured only by PROVISIONER_*
// variables as an operator would configure it.
type Proc struct {
	Name   string
	Listen string // host:port of its status page and /metrics
	cmd    *exec.Cmd
	done   chan struct{}
	err    error
	log    *os.File
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat: 100 on every Linux
// architecture Go supports (the kernel fixes it for the ABI), so it needs no sysconf call.
const clockTicks = 100

// startProc runs bin with env added to this process's environment, appending its output to logPath.
func startProc(name, bin, logPath string, env map[string]string) (*Proc, error) {
	listen, err := freeAddr()
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("provisioner log: %w", err)
	}
	cmd := exec.Command(bin, "run")
	cmd.Env = os.Environ()
	env["PROVISIONER_LISTEN"] = listen
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group, so a Ctrl-C on `make bench` reaches the harness, which stops the
	// provisioner in order, rather than killing it before the harness can count what it left.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	p := &Proc{Name: name, Listen: listen, cmd: cmd, done: make(chan struct{}), log: f}
	go func() {
		p.err = cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	return p, nil
}

// freeAddr picks a free loopback port for a provisioner's listener.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited says whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL and waits for the process to be gone: a crash, with no chance to clean up.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM (the provisioner stops provisioning and leaves agents alone) and waits up to
// timeout before killing it. It returns an error if the process did not stop by itself.
func (p *Proc) Stop(timeout time.Duration) error {
	if p.Exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("%s did not stop within %s of SIGTERM; killed", p.Name, timeout)
	}
}

// WaitReady waits until /readyz answers 200: caches synced and Jenkins read (a follower of a
// leader election is ready at once).
func (p *Proc) WaitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		if p.Exited() {
			return fmt.Errorf("%s exited before it was ready: %v", p.Name, p.err)
		}
		resp, err := httpGet(ctx, "http://"+p.Listen+"/readyz")
		if err == nil {
			if resp.status == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("HTTP %d %s", resp.status, strings.TrimSpace(resp.body))
		} else {
			last = err.Error()
		}
		if !waitfor.Duration(ctx, 100*time.Millisecond) {
			return fmt.Errorf("%s not ready within %s: %s", p.Name, timeout, last)
		}
	}
}

// Usage reads the process's resident memory (bytes) and CPU time used so far (seconds, user plus
// system) from /proc.
func (p *Proc) Usage() (rss int64, cpu float64, err error) {
	pid := strconv.Itoa(p.Pid())
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, 0, fmt.Errorf("reading /proc/%s/status: %w", pid, err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("VmRSS %q: %w", v, err)
			}
			rss = kb * 1024
		}
	}
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("reading /proc/%s/stat: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces; fields count from after it.
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, 0, fmt.Errorf("/proc/%s/stat: %d fields after the name", pid, len(fields))
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(fields[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("/proc/%s/stat times: %w", pid, err)
	}
	return rss, float64(utime+stime) / clockTicks, nil
}

// Metrics scrapes /metrics.
func (p *Proc) Metrics(ctx context.Context) (Metrics, error) {
	resp, err := httpGet(ctx, "http://"+p.Listen+"/metrics")
	if err != nil {
		return nil, err
	}
	if resp.status != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: HTTP %d", resp.status)
	}
	return parseMetrics(resp.body), nil
}

// Metrics are samples of the Prometheus text format, keyed by the series as written
// (`name{label="v",...}`).
type Metrics map[string]float64

// Sum adds the samples of metric name whose labels contain every one of the given `k="v"` pairs.
func (m Metrics) Sum(name string, labels ...string) float64 {
	var sum float64
	for series, v := range m {
		base, rest, _ := strings.Cut(series, "{")
		if base != name {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				ok = false
			}
		}
		if ok {
			sum += v
		}
	}
	return sum
}

// parseMetrics reads the text exposition format: comments skipped, `series value` per line. The
// label values the provisioner writes hold no spaces, so the last field is the value.
func parseMetrics(body string) Metrics {
	m := Metrics{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m
}

type httpResult struct {
	status int
	body   string
}

func httpGet(ctx context.Context, url string) (httpResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return httpResult{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return httpResult{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return httpResult{}, fmt.Errorf("GET %s: %w", url, err)
	}
	return httpResult{status: resp.StatusCode, body: string(b)}, nil
}
