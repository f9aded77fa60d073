package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/jenkins-agent-provisioner/provisioner/internal/pluginimport"
)

const importUsage = `Usage:
  provisioner templates import [--format jcasc|helm|list] [--helm-release NAME] FILE...

Reads the Jenkins Kubernetes plugin's configuration (a JCasC document, also inside a ConfigMap;
the jenkinsci/jenkins Helm chart's values; or a plain list of pod templates) and prints the
equivalent templates YAML on stdout. Every field not carried over is reported on stderr with its
file:line and the reason. Exit code 0 when the templates were written, 1 when the input could
not be read, 2 on wrong usage.
`

// templatesImport runs `provisioner templates import`.
func templatesImport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("provisioner templates import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, importUsage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	format := fs.String("format", "", "input format: jcasc, helm or list (default: detected per file)")
	release := fs.String("helm-release", "jenkins", "Helm release name the chart's agent labels are made from (<release>-jenkins-agent)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	f, err := pluginimport.ParseFormat(*format)
	if err != nil {
		fmt.Fprintf(stderr, "provisioner templates import: %v\n", err)
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	var inputs []pluginimport.Input
	for _, name := range fs.Args() {
		data, err := os.ReadFile(name)
		if err != nil {
			fmt.Fprintf(stderr, "error: %v\n", err)
			return 1
		}
		inputs = append(inputs, pluginimport.Input{Name: name, Data: data})
	}
	res, err := pluginimport.Import(inputs, pluginimport.Options{Format: f, HelmRelease: *release})
	if err != nil {
		printLoadError(stderr, err)
		return 1
	}
	for _, fd := range res.Findings {
		fmt.Fprintln(stderr, fd.String())
	}
	fmt.Fprintf(stderr, "%d templates imported; %d findings above (dropped: not carried over; changed: carried over differently; setting: a PROVISIONER_* line, listed at the top of the output)\n", res.Templates, len(res.Findings))
	if _, err := stdout.Write(res.YAML); err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	return 0
}
