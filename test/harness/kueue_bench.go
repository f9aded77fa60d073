package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// KueueBenchReport compares, for the same two-team flood, Kueue's cohort (each team's nominal
// share, the other's unused share borrowed, no preemption) with plain per-controller caps (each
// provisioner capped at its share, nothing lent): how soon B's first build starts under A's flood
// and how soon A's flood is through.
type KueueBenchReport struct {
	Options KueueShareOptions `json:"options"`
	Kueue   KueueShareResult  `json:"kueue"`
	Caps    KueueShareResult  `json:"plainCaps"`
}

// KueueBench runs the sharing scenario with Kueue, then with plain caps. The plane must run Kueue.
func (p *Plane) KueueBench(ctx context.Context, o KueueShareOptions) KueueBenchReport {
	r := KueueBenchReport{Options: o}
	r.Kueue = p.KueueShare(ctx, o)
	o.PlainCaps = true
	r.Caps = p.KueueShare(ctx, o)
	return r
}

// Markdown renders the comparison.
func (r KueueBenchReport) Markdown() string {
	var b strings.Builder
	o := r.Options
	fmt.Fprintf(&b, "## Sharing a cluster: Kueue cohort vs plain per-controller caps\n\n")
	fmt.Fprintf(&b, "Team A queues %d builds of %s, team B %d once A holds what it can; %d agents' quota per team.\n\n",
		o.BuildsA, o.Duration, o.BuildsB, o.AgentsPerTeam)
	fmt.Fprintf(&b, "| | Kueue (cohort, borrowing, no preemption) | plain caps (%d per controller) |\n|---|---|---|\n", o.AgentsPerTeam)
	row := func(name string, f func(KueueShareResult) string) {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", name, f(r.Kueue), f(r.Caps))
	}
	row("B queued → B's first build started", func(x KueueShareResult) string { return fmt.Sprintf("%.1f s", x.BFirstStartSecs) })
	row("A's flood done", func(x KueueShareResult) string { return fmt.Sprintf("%.1f s", x.ADoneSecs) })
	row("both teams done", func(x KueueShareResult) string { return fmt.Sprintf("%.1f s", x.TotalSecs) })
	row("A's most agents admitted at once (pods alive, gated or not)", func(x KueueShareResult) string {
		return fmt.Sprintf("%d (%d)", x.A.MaxAdmitted, x.A.Invariants.MaxLive)
	})
	row("pods made (A / B)", func(x KueueShareResult) string { return fmt.Sprintf("%d / %d", x.A.PodsMade, x.B.PodsMade) })
	row("invariants", func(x KueueShareResult) string {
		if len(x.Errors) > 0 {
			return "error: " + strings.Join(x.Errors, "; ")
		}
		return invariantsWord(x.A.Invariants) + " / " + invariantsWord(x.B.Invariants)
	})
	return b.String()
}

// WriteKueueReport writes kueue.md and kueue.json into dir.
func WriteKueueReport(dir string, r KueueBenchReport) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "kueue.json"), data, 0o644); err != nil {
		return fmt.Errorf("writing kueue.json: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kueue.md"), []byte(r.Markdown()), 0o644); err != nil {
		return fmt.Errorf("writing kueue.md: %w", err)
	}
	return nil
}

// DefaultKueueBench is the scenario `bench -kueue` runs: the proof's shape.
var DefaultKueueBench = KueueShareOptions{
	BuildsA: 12, BuildsB: 3, Duration: 12 * time.Second, ConnectTimeout: 8 * time.Second, AgentsPerTeam: 2,
	Env: map[string]string{"PROVISIONER_POLL_INTERVAL": "1s"},
}
