package testenv

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// Main is the body of a test package's TestMain: it starts one control plane for the whole
// package (start-up is seconds, far too slow per test), stores it in *env, runs the tests, stops
// it and exits with the tests' code. When the control plane cannot start it prints why and exits
// 1: a skipped integration suite looks green, and this package exists so that they run.
//
//	var env *testenv.Env
//
//	func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{GarbageCollector: true}, &env) }
func Main(m *testing.M, opts Options, env **Env) {
	os.Exit(run(m, opts, env))
}

// run is Main without os.Exit, so that its result can be checked and Stop always runs first.
func run(m *testing.M, opts Options, env **Env) int {
	// testing.Verbose needs the flags parsed, which otherwise only m.Run does; TestMain may
	// parse them itself.
	if !flag.Parsed() {
		flag.Parse()
	}
	// A fuzz worker only ever runs fuzz inputs (the coordinator process runs the tests, with a
	// control plane): starting one per worker would multiply the cost of `go test -fuzz` by the
	// number of workers for nothing.
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		return m.Run()
	}
	e, err := Start(opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: cannot start the control plane: %v\n", err)
		return 1
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "testenv: control plane ready in %s%s\n", e.startDuration.Round(timeRound), e.gcSummary())
	}
	*env = e
	defer stopOnSignal(e)()
	code := m.Run()
	if err := e.Stop(); err != nil {
		// A failed stop means a component crashed during the tests (which may explain odd results)
		// or left a process behind on a shared machine: either way the run is not clean.
		fmt.Fprintf(os.Stderr, "testenv: stopping the control plane: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// stopOnSignal stops e and then dies of the same signal when the test binary gets SIGINT or
// SIGTERM (Ctrl-C reaches it through go test; etcd and kube-apiserver, in their own process
// group, would not get it and would outlive the run). The returned function stops listening.
func stopOnSignal(e *Env) (cancel func()) {
	signals := make(chan os.Signal, 1)
	done := make(chan struct{})
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case sig := <-signals:
			fmt.Fprintf(os.Stderr, "testenv: %v: stopping the control plane\n", sig)
			if err := e.Stop(); err != nil {
				fmt.Fprintf(os.Stderr, "testenv: stopping the control plane: %v\n", err)
			}
			// Die of the signal itself, as without this handler, so go test reports it as such.
			signal.Reset(sig)
			if p, err := os.FindProcess(os.Getpid()); err == nil {
				_ = p.Signal(sig)
			}
			time.Sleep(time.Second) // the signal is asynchronous; do not fall through to a normal exit
			os.Exit(1)
		case <-done:
		}
	}()
	return func() {
		signal.Stop(signals)
		close(done)
	}
}
