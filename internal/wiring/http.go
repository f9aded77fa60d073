package wiring

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/jenkins-agent-provisioner/provisioner/internal/statuspage"
)

// Handler serves the status page, /metrics, /healthz and /readyz.
func (a *App) Handler() http.Handler {
	mux := a.healthAndMetrics()
	mux.Handle("GET /{$}", a.StatusPage())
	return mux
}

// HealthAndMetrics serves /metrics, /healthz and /readyz alone (the status page served elsewhere:
// PROVISIONER_STATUS_LISTEN).
func (a *App) HealthAndMetrics() http.Handler { return a.healthAndMetrics() }

func (a *App) healthAndMetrics() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", a.ready)
	return mux
}

// StatusPage is the HTML status page at /.
func (a *App) StatusPage() http.Handler {
	return statuspage.Handler(a.Controller.Status, a.role)
}

// ready: a follower is ready, it only waits. The leader is ready once its caches are synced and its
// last poll of Jenkins succeeded.
func (a *App) ready(w http.ResponseWriter, _ *http.Request) {
	if a.elector != nil && !a.leading.Load() {
		_, _ = io.WriteString(w, "ok: following\n")
		return
	}
	if !a.Controller.Ready() {
		http.Error(w, "not ready: caches not synced or Jenkins not reachable", http.StatusServiceUnavailable)
		return
	}
	_, _ = io.WriteString(w, "ok\n")
}

func (a *App) role() string {
	if a.elector == nil || a.leading.Load() {
		return "leader"
	}
	return "follower"
}

// shutdownTimeout bounds how long stopping the HTTP server waits for requests in flight.
const shutdownTimeout = 5 * time.Second

// Serve listens on address and serves h until stop is called; stop waits up to five seconds for
// requests in flight. The address bound is returned (with port 0, the port chosen).
func (a *App) Serve(address string, h http.Handler) (bound net.Addr, stop func(), err error) {
	ln, err := net.Listen("tcp", address)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s: %w", address, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.Logger.Error("http server", zap.String("address", ln.Addr().String()), zap.Error(err))
		}
	}()
	stop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}
	return ln.Addr(), stop, nil
}
