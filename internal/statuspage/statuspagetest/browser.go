// Package statuspagetest loads a page in a real browser, for the status page's tests and the
// end-to-end test that looks at the running provisioner's page. It is a test rig: production code
// never imports it (cmd/provisioner's dependency test checks), which is why it is not part of
// internal/statuspage.
package statuspagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Why headless Chromium driven by its command line, not a DevTools client: Debian's chromium
// package is the only browser these machines can install (no browser downloads are reachable), and
// --dump-dom plus --screenshot give exactly what the tests check (the DOM as the browser built it,
// and a picture a person can look at) without another module.

// ErrNoChromium is returned by Capture when no chromium is on PATH. Tests must fail on it, not skip:
// CI installs chromium, so its absence there is a broken setup, not an optional feature.
var ErrNoChromium = errors.New("chromium is not on PATH: run hack/install-chromium.sh (as root) to install Debian's chromium package")

// CaptureWindow is the browser window Capture uses, in CSS pixels: a common phone (412 x 915), so
// the screenshot shows the page as an operator sees it on call.
const (
	CaptureWidth  = 412
	CaptureHeight = 915
)

// captureTimeout bounds one browser run when the caller's context has no deadline. A cold Chromium
// start on a loaded 2-core machine takes a few seconds; a minute means something is wrong.
const captureTimeout = 60 * time.Second

// Capture loads url in headless Chromium in a phone-sized window and returns the DOM as the browser
// rendered it. When screenshotPath is not empty, a PNG of the window is written there (its folder is
// created). Each call uses a new, throwaway browser profile, so no cookie or cache carries over.
func Capture(ctx context.Context, url, screenshotPath string) (dom string, err error) {
	return CaptureWindow(ctx, url, screenshotPath, CaptureWidth, CaptureHeight)
}

// CaptureWindow is Capture with another window size, in CSS pixels: a tall window puts the whole
// page in one screenshot, a wide one shows the desktop layout.
func CaptureWindow(ctx context.Context, url, screenshotPath string, width, height int) (dom string, err error) {
	if width <= 0 || height <= 0 {
		return "", fmt.Errorf("capture %s: window %dx%d: both sides must be positive", url, width, height)
	}
	bin, err := exec.LookPath("chromium")
	if err != nil {
		return "", fmt.Errorf("capture %s: %w", url, ErrNoChromium)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, captureTimeout)
		defer cancel()
	}

	profile, err := os.MkdirTemp("", "statuspage-chromium-")
	if err != nil {
		return "", fmt.Errorf("capture %s: browser profile: %w", url, err)
	}
	defer func() { _ = os.RemoveAll(profile) }()

	args := []string{
		"--headless",
		// The sandbox needs user namespaces or a setuid helper, neither of which a container running
		// as root has; the page under test is our own.
		"--no-sandbox",
		"--disable-gpu",
		"--disable-quic",
		"--no-first-run",
		"--no-default-browser-check",
		"--disable-background-networking",
		"--disable-component-update",
		"--disable-sync",
		"--disable-extensions",
		// Containers often give /dev/shm only 64 MiB, where Chromium crashes; /tmp works everywhere.
		"--disable-dev-shm-usage",
		// The page is on loopback; a proxy from the environment must not get in the way.
		"--no-proxy-server",
		"--hide-scrollbars",
		"--force-device-scale-factor=1",
		"--user-data-dir=" + profile,
		fmt.Sprintf("--window-size=%d,%d", width, height),
	}
	if screenshotPath != "" {
		abs, err := filepath.Abs(screenshotPath)
		if err != nil {
			return "", fmt.Errorf("capture %s: screenshot path: %w", url, err)
		}
		if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
			return "", fmt.Errorf("capture %s: screenshot folder: %w", url, err)
		}
		// Remove an earlier run's picture, so a browser that silently writes none is caught below.
		if err := os.Remove(abs); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("capture %s: old screenshot: %w", url, err)
		}
		screenshotPath = abs
		// One run does both: Chromium writes the screenshot and dumps the DOM of the same load.
		args = append(args, "--screenshot="+abs)
	}
	args = append(args, "--dump-dom", url)

	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = profile
	// A HOME of its own keeps Chromium's NSS database and crash reports out of the user's home.
	cmd.Env = append(os.Environ(), "HOME="+profile, "XDG_CONFIG_HOME="+profile, "XDG_CACHE_HOME="+profile)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.SysProcAttr = browserSysProcAttr()
	// Chromium forks renderer and utility processes; on timeout the whole group must go, not only
	// the browser process, or they linger on a shared machine.
	cmd.Cancel = func() error { return killGroup(cmd.Process) }
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Run()
	if cmd.Process != nil {
		// A browser that exited normally has normally taken its children with it; this makes sure.
		_ = killGroup(cmd.Process)
	}
	if runErr != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("capture %s: chromium did not finish: %w; stderr:\n%s", url, ctx.Err(), tail(stderr.String()))
		}
		return "", fmt.Errorf("capture %s: chromium: %w; stderr:\n%s", url, runErr, tail(stderr.String()))
	}
	dom = stdout.String()
	if !strings.Contains(dom, "<html") {
		return "", fmt.Errorf("capture %s: chromium printed no DOM; stderr:\n%s", url, tail(stderr.String()))
	}
	if screenshotPath != "" {
		if err := checkPNG(screenshotPath); err != nil {
			return dom, fmt.Errorf("capture %s: %w; stderr:\n%s", url, err, tail(stderr.String()))
		}
	}
	return dom, nil
}

// checkPNG makes sure Chromium wrote a PNG: it exits 0 even when it could not write the file.
func checkPNG(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	defer func() { _ = f.Close() }()
	head := make([]byte, 8)
	if _, err := f.Read(head); err != nil {
		return fmt.Errorf("screenshot %s: %w", path, err)
	}
	if !bytes.Equal(head, []byte("\x89PNG\r\n\x1a\n")) {
		return fmt.Errorf("screenshot %s is not a PNG", path)
	}
	return nil
}

// tail keeps the last lines of Chromium's stderr, where the reason for a failure is; the start is
// launcher and D-Bus noise.
func tail(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	const keep = 20
	if len(lines) > keep {
		lines = lines[len(lines)-keep:]
	}
	return strings.Join(lines, "\n")
}

// ScreenshotPath is where a test writes the screenshot called name: $TEST_OUTPUT_DIR/name when the
// test runner sets it, else <module root>/_output/screenshots/name (t.TempDir is deleted when the
// test ends, and the point of a screenshot is that a person looks at it afterwards).
func ScreenshotPath(name string) (string, error) {
	if dir := os.Getenv("TEST_OUTPUT_DIR"); dir != "" {
		return filepath.Join(dir, name), nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", fmt.Errorf("screenshot path for %s: %w", name, err)
	}
	return filepath.Join(root, "_output", "screenshots", name), nil
}

// moduleRoot walks up from the working directory (a test's package folder) to the folder holding
// go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("module root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// ServeLoopback serves h on 127.0.0.1 until the test ends (httptest's default could pick ::1, and
// Chromium must reach exactly this address) and returns the page's URL.
func ServeLoopback(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}
