// Command chaos runs the provisioner through faults (`make chaos`): SIGKILLs, Jenkins errors and
// an outage, an apiserver restart, a ResourceQuota, leader kills, and fuzzing of its parsers, each
// ending with a check that nothing was lost or left. It writes <out>/report.md and
// <out>/report.json and exits 1 if any scenario failed; see test/harness.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jenkins-agent-provisioner/provisioner/test/harness"
)

func main() {
	out := flag.String("out", "_output/chaos", "folder for report.md, report.json and the run's logs")
	scale := flag.String("scale", "full", "scale: full|smoke")
	fuzz := flag.Duration("fuzztime", -1, "time per fuzz target (negative: the scale's; 0: skip)")
	seed := flag.Uint64("seed", 1, "seed of arrivals, kill moments and faults")
	only := flag.String("only", "", "comma-separated scenarios to run: kill,faults,apiserver,quota,leader,restart (default all)")
	flag.Parse()
	sc, ok := harness.ChaosScales[*scale]
	if !ok {
		fmt.Fprintf(os.Stderr, "chaos: unknown -scale %q (want full or smoke)\n", *scale)
		os.Exit(2)
	}
	if *fuzz >= 0 {
		sc.FuzzTime = *fuzz
	}
	if *only != "" {
		sc.Only = strings.Split(*only, ",")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	plane, err := harness.StartPlane(*out, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "chaos: %v\n", err)
		os.Exit(1)
	}
	begin := time.Now()
	r := plane.Chaos(ctx, sc, *seed)
	if err := plane.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "chaos: stopping the control plane: %v\n", err)
	}
	if err := harness.WriteReport(*out, r, r.Markdown()); err != nil {
		fmt.Fprintf(os.Stderr, "chaos: %v\n", err)
		os.Exit(1)
	}
	fmt.Print(r.Markdown())
	fmt.Fprintf(os.Stderr, "chaos: %s; report in %s/report.md and report.json\n", time.Since(begin).Round(time.Second), *out)
	if !r.OK() {
		os.Exit(1)
	}
}
