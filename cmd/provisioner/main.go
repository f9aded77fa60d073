// Command provisioner starts one Kubernetes pod per queued Jenkins build and removes it when the
// build ends.
//
//	provisioner run                 the controller (settings: PROVISIONER_* or flags, see --help)
//	provisioner templates check     validate templates (and dry-run their pods on a cluster)
//	provisioner templates render    show the template and pod a label would get
//	provisioner version             print the version
//
// The demo (a local control plane, the Jenkins emulator and the node simulator around the real
// controller) is its own command, cmd/provisioner-demo, so this binary links none of those test rigs.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is stamped by the build: -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `Usage: provisioner <command> [flags]

Commands:
  run                 provision agents for a Jenkins (settings: PROVISIONER_* variables or flags; run --help)
  templates check     validate agent templates; with a cluster, also dry-run every rendered pod
  templates render    print the template and agent pod YAML a label expression would get
  version             print the version
`

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return runCommand(ctx, args[1:], stderr)
	case "demo":
		// The demo left this binary so that production links no test rig; say where it went.
		fmt.Fprintln(stderr, "provisioner: the demo is its own command now: make demo, or go run ./cmd/provisioner-demo")
		return 2
	case "templates":
		return runTemplates(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintf(stdout, "provisioner %s\n", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "provisioner: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
