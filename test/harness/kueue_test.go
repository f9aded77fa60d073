package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jenkins-agent-provisioner/provisioner/internal/testenv"
)

// TestKueueShare is issue 14's proof: two Jenkins controllers and two provisioner processes share
// one cluster through real Kueue ClusterQueues in one cohort (2 agents each, borrowing allowed,
// never preempting). Team A's flood borrows B's share and the rest of it waits gated, with no pod
// churn; B then gets its share as A's builds end; every build runs once on its own pod, nothing is
// preempted, nothing is left. A second run under a preempting policy shows evictions cleaned up
// and told. One plane (one Kueue) serves both.
func TestKueueShare(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane, Kueue and two provisioner processes")
	}
	var progress io.Writer = io.Discard
	if testing.Verbose() {
		progress = os.Stderr
	}
	p, err := StartPlaneWith(t.TempDir(), progress, testenv.Options{Kueue: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
	})
	t.Run("share", func(t *testing.T) { testKueueShare(t, p) })
	t.Run("preemption is told", func(t *testing.T) { testKueuePreemption(t, p) })
}

const agentsPerTeam = 2

func testKueueShare(t *testing.T, p *Plane) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	r := p.KueueShare(ctx, KueueShareOptions{
		BuildsA: 12, BuildsB: 3, Duration: 20 * time.Second, ConnectTimeout: 15 * time.Second,
		AgentsPerTeam: agentsPerTeam,
		Env: map[string]string{
			"PROVISIONER_POLL_INTERVAL": "1s", "PROVISIONER_BACKOFF_BASE": "5s", "PROVISIONER_BACKOFF_MAX": "5m",
		},
	})
	out, _ := json.MarshalIndent(r, "", "  ")
	t.Logf("result:\n%s", out)
	for _, e := range r.Errors {
		t.Errorf("scenario: %s", e)
	}
	for _, team := range []struct {
		name string
		got  KueueTeam
	}{{"A", r.A}, {"B", r.B}} {
		if !team.got.Invariants.OK() {
			t.Errorf("team %s: %s", team.name, invariantsWord(team.got.Invariants))
		}
		if team.got.PodsMade != team.got.Builds {
			t.Errorf("team %s: %d agent pods created for %d builds (churn: gated pods replaced)", team.name, team.got.PodsMade, team.got.Builds)
		}
		if team.got.Lost != 0 {
			t.Errorf("team %s: %g builds lost to Kueue evictions under a policy that never preempts", team.name, team.got.Lost)
		}
		if team.got.Failed != 0 {
			t.Errorf("team %s: %g agents counted failed, want none (waiting for quota is not a failure)", team.name, team.got.Failed)
		}
	}
	if r.A.MaxAdmitted != 2*agentsPerTeam {
		t.Errorf("team A had at most %d agents admitted at once, want %d (its share and B's unused one)", r.A.MaxAdmitted, 2*agentsPerTeam)
	}
	if r.A.EverGated < r.A.Builds-2*agentsPerTeam {
		t.Errorf("team A: %d pods ever gated by Kueue, want at least %d", r.A.EverGated, r.A.Builds-2*agentsPerTeam)
	}
	if r.B.MaxAdmitted > agentsPerTeam+1 || r.B.MaxAdmitted == 0 {
		t.Errorf("team B had at most %d agents admitted at once", r.B.MaxAdmitted)
	}
	t.Run("templates check looks the LocalQueues up", func(t *testing.T) { checkLocalQueues(t, p, r.A.NS) })
}

// checkLocalQueues runs `provisioner templates check` against the Kueue cluster: the LocalQueue
// team A's pods join exists, one that does not is an error.
func checkLocalQueues(t *testing.T, p *Plane, ns string) {
	file := filepath.Join(t.TempDir(), "templates.yaml")
	if err := os.WriteFile(file, []byte("templates:\n  - {name: ok, labels: [a], queue: jenkins-agents}\n  - {name: lost, labels: [b], queue: no-such-queue}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(p.Bin, "templates", "check", "--file", file, "--namespace", ns, "--kubeconfig", p.Env.Kubeconfig)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("templates check: %v, want exit code 1\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if want := "Kueue LocalQueue jenkins-agents in namespace " + ns + " exists, feeding ClusterQueue team-a-"; !strings.Contains(stdout.String(), want) {
		t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
	}
	if want := "Kueue LocalQueue no-such-queue does not exist in namespace " + ns; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
	}
}

// testKueuePreemption runs the flood under reclaimWithinCohort: Any: Kueue evicts A's borrowing
// agents when B queues. Each eviction of a busy agent is an AgentEvicted Event naming Kueue's
// reason and the build, counted in provisioner_builds_lost_total; nothing of A is left.
func testKueuePreemption(t *testing.T, p *Plane) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	r := p.KueueShare(ctx, KueueShareOptions{
		BuildsA: 6, BuildsB: 2, Duration: 30 * time.Second, ConnectTimeout: 15 * time.Second,
		AgentsPerTeam: agentsPerTeam, Preempt: true,
		Env: map[string]string{"PROVISIONER_POLL_INTERVAL": "1s"},
	})
	out, _ := json.MarshalIndent(r, "", "  ")
	t.Logf("result:\n%s", out)
	for _, e := range r.Errors {
		t.Errorf("scenario: %s", e)
	}
	if r.A.Aborted == 0 {
		t.Fatal("no build of A was cut short: Kueue preempted nothing, the scenario shows nothing")
	}
	if int(r.A.Lost) != r.A.Aborted {
		t.Errorf("provisioner_builds_lost_total = %g, want %d (A's builds cut short by evictions)", r.A.Lost, r.A.Aborted)
	}
	told := 0
	for _, m := range r.A.Evictions {
		if strings.Contains(m, "evicted by Kueue (WorkloadEvicted") && strings.Contains(m, "build http") {
			told++
		}
	}
	if told != r.A.Aborted {
		t.Errorf("%d AgentEvicted Events name Kueue's reason and the build, want %d: %q", told, r.A.Aborted, r.A.Evictions)
	}
	if len(r.A.Invariants.Leftovers) > 0 || !r.B.Invariants.OK() {
		t.Errorf("leftovers of A %v; B: %s", r.A.Invariants.Leftovers, invariantsWord(r.B.Invariants))
	}
}
