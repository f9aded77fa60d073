package harness

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The smoke runs are `make bench` and `make chaos` at the smallest scale, so CI executes every
// scenario's code path on the real control plane and binary. They assert that every scenario ran,
// every invariant held and every figure of the report was measured; the bench's targets are not
// asserted, since a loaded 2-core CI machine is not where performance is judged.

func startPlane(t *testing.T) *Plane {
	t.Helper()
	if testing.Short() {
		t.Skip("smoke runs start a control plane and the provisioner binary")
	}
	var progress io.Writer = io.Discard
	if testing.Verbose() {
		progress = os.Stderr
	}
	p, err := StartPlane(t.TempDir(), progress)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
	})
	return p
}

func TestBenchSmoke(t *testing.T) {
	p := startPlane(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := p.Bench(ctx, BenchOptions{Scale: BenchScales["smoke"], PollInterval: time.Second, KubeQPS: 50, KubeBurst: 100, Seed: 1})
	for _, e := range r.Errors {
		t.Errorf("scenario error: %s", e)
	}
	for i, run := range r.Latency.Runs {
		if !run.Invariants.OK() {
			t.Errorf("latency run %d: %s", i+1, invariantsWord(run.Invariants))
		}
	}
	l := r.Latency
	if l.QueuedToPodCreated.N != r.Scale.LatencyBuilds || l.QueuedToAgentOnline.N != r.Scale.LatencyBuilds ||
		l.FinishedToDeleteAsked.N != r.Scale.LatencyBuilds || l.FinishedToPodGone.N != r.Scale.LatencyBuilds {
		t.Errorf("latency samples %d/%d/%d/%d, want %d each", l.QueuedToPodCreated.N, l.QueuedToAgentOnline.N,
			l.FinishedToDeleteAsked.N, l.FinishedToPodGone.N, r.Scale.LatencyBuilds)
	}
	if l.QueuedToPodCreated.P50 <= 0 || l.FinishedToPodGone.P50 <= 0 {
		t.Errorf("latencies not measured: %+v", l)
	}
	if r.Burst.Ratio <= 0 || r.Burst.BaselineSecs <= 0 {
		t.Errorf("burst not measured: %+v", r.Burst)
	}
	if want := 1 + len(r.Scale.CostQueued) + len(r.Scale.CostAgents); len(r.Cost.Cells) != want {
		t.Errorf("%d Jenkins cost cells, want %d", len(r.Cost.Cells), want)
	}
	if r.Footprint.RSSMiBAtAgents <= 0 || r.Footprint.RSSMiBIdle <= 0 {
		t.Errorf("footprint not measured: %+v", r.Footprint)
	}
	if len(r.Targets) != 8 {
		t.Errorf("%d targets in the report, want 8", len(r.Targets))
	}
	dir := t.TempDir()
	if err := WriteReport(dir, r, r.Markdown()); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"queued → pod created", "Burst", "requests/poll", "RSS", "Waste", r.Machine.CPUModel} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	t.Logf("\n%s", md)
}

func TestChaosSmoke(t *testing.T) {
	p := startPlane(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	r := p.Chaos(ctx, ChaosScales["smoke"], 1)
	if len(r.Runs) != 6 {
		t.Fatalf("%d chaos runs, want 6", len(r.Runs))
	}
	for _, run := range r.Runs {
		if run.Error != "" {
			t.Errorf("%s: %s", run.Scenario, run.Error)
		}
		if !run.Invariants.OK() {
			t.Errorf("%s: %s", run.Scenario, invariantsWord(run.Invariants))
		}
	}
	facts := func(i int, key string) float64 { return r.Runs[i].Facts[key] }
	if facts(0, "sigkills") != 1 {
		t.Errorf("SIGKILL run: %g kills, want 1", facts(0, "sigkills"))
	}
	if facts(1, "outageRequests") == 0 {
		t.Error("Jenkins faults run: no request met the outage")
	}
	if facts(3, "creationsRefusedQuotaExceeded") == 0 || facts(3, "quotaExceededEvents") == 0 {
		t.Errorf("quota run: refusals %g, events %g; want both > 0", facts(3, "creationsRefusedQuotaExceeded"), facts(3, "quotaExceededEvents"))
	}
	if facts(4, "leaderKills") != 1 {
		t.Errorf("leader run: %g kills, want 1", facts(4, "leaderKills"))
	}
	if facts(5, "jenkinsRestarts") != 1 || facts(5, "pipelineBuilds") == 0 {
		t.Errorf("Jenkins restart run: %g restarts, %g pipeline builds; want 1 and some", facts(5, "jenkinsRestarts"), facts(5, "pipelineBuilds"))
	}
	t.Logf("\n%s", r.Markdown())
}
