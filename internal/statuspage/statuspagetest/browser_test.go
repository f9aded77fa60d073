package statuspagetest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// Capture must report a page that did not load, not hand back an empty DOM as success (Chromium
// itself exits 0 after a refused connection).
func TestCaptureUnreachable(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no browser")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/"
	_ = ln.Close()
	shot := filepath.Join(t.TempDir(), "unreachable.png")
	if dom, err := Capture(context.Background(), url, shot); err == nil {
		t.Fatalf("Capture of a closed port succeeded; DOM:\n%s", dom)
	}
}

// A page that never answers must not hang the test: the context's deadline ends the browser.
func TestCaptureTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no browser")
	}
	release := make(chan struct{})
	url := ServeLoopback(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	// Cleanups run last-in first-out: unblock the handler before the server's Close waits for it.
	t.Cleanup(func() { close(release) })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	_, err := Capture(ctx, url, "")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Capture of a page that never answers: err = %v, want context.DeadlineExceeded", err)
	}
	// 3 s deadline plus the 5 s WaitDelay at most, plus slack for a loaded machine.
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("Capture returned after %v, want soon after the 3s deadline", d)
	}
}
