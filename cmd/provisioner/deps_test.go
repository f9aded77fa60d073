package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const module = "github.com/jenkins-agent-provisioner/provisioner"

// linkedPackage is one package `go list -deps` says the binary links, with its imports.
type linkedPackage struct {
	path    string
	imports []string
}

// testRig says why a linked package is a test rig, or "" when it is not. The rigs are what the demo
// and the tests run the product in (docs/interfaces.md): none belongs in what operators deploy.
func testRig(p linkedPackage) string {
	own, inModule := strings.CutPrefix(p.path, module+"/")
	switch {
	case p.path == "testing":
		return "the standard library's test framework"
	case strings.HasPrefix(p.path, "sigs.k8s.io/controller-runtime/pkg/envtest"):
		return "controller-runtime's test control plane"
	case !inModule:
		return ""
	case own == "internal/testenv", strings.HasPrefix(own, "internal/testenv/"):
		return "the test control plane"
	case own == "internal/nodesim", strings.HasPrefix(own, "internal/nodesim/"):
		return "the node simulator"
	case strings.HasPrefix(own, "test/"):
		return "the end-to-end, bench and chaos harness"
	case strings.HasPrefix(own, "cmd/") && own != "cmd/provisioner":
		return "another command"
	case strings.HasSuffix(own, "test"):
		// jenkinstest (the Jenkins emulator), statuspagetest (the browser launcher), apiservertest…
		return "a package named …test is a test rig by this repository's convention"
	case own == "internal/statuspage" && slices.Contains(p.imports, "os/exec"):
		// The status page only renders; a process started from it is the browser launcher, which
		// belongs in statuspagetest.
		return "the status page starts a process (the browser launcher)"
	}
	return ""
}

// The production binary links no test rig: `go list -deps ./cmd/provisioner` names none of
// jenkinstest, nodesim, testenv, controller-runtime's envtest or the status page's browser launcher.
func TestProductionBinaryLinksNoTestRig(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \",\"}}", ".").Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps: %v\n%s", err, stderr)
	}
	var got []string
	n := 0
	for line := range strings.Lines(string(out)) {
		path, imports, _ := strings.Cut(strings.TrimSpace(line), " ")
		p := linkedPackage{path: path, imports: strings.Split(imports, ",")}
		n++
		if why := testRig(p); why != "" {
			got = append(got, p.path+": "+why)
		}
	}
	if n < 50 {
		t.Fatalf("go list -deps named %d packages; the binary links hundreds, so the listing is broken:\n%s", n, out)
	}
	if diff := cmp.Diff([]string(nil), got); diff != "" {
		t.Errorf("the production binary links test rigs (-want +got):\n%s", diff)
	}
}

// testRig must recognise each rig the binary once linked, and pass what production needs.
func TestTestRigRecognisesRigs(t *testing.T) {
	tests := []struct {
		pkg     linkedPackage
		wantRig bool
	}{
		{linkedPackage{path: module + "/internal/jenkins/jenkinstest"}, true},
		{linkedPackage{path: module + "/internal/nodesim"}, true},
		{linkedPackage{path: module + "/internal/testenv"}, true},
		{linkedPackage{path: module + "/internal/statuspage/statuspagetest"}, true},
		{linkedPackage{path: module + "/internal/statuspage", imports: []string{"html/template", "os/exec"}}, true},
		{linkedPackage{path: module + "/cmd/provisioner-demo"}, true},
		{linkedPackage{path: module + "/test/harness"}, true},
		{linkedPackage{path: "sigs.k8s.io/controller-runtime/pkg/envtest"}, true},
		{linkedPackage{path: "testing"}, true},
		{linkedPackage{path: module + "/internal/statuspage", imports: []string{"html/template"}}, false},
		{linkedPackage{path: module + "/internal/wiring"}, false},
		{linkedPackage{path: module + "/internal/jenkins"}, false},
		{linkedPackage{path: module + "/cmd/provisioner"}, false},
		{linkedPackage{path: "k8s.io/client-go/testing"}, false}, // client-go's gentype links it
		{linkedPackage{path: "os/exec"}, false},
	}
	for _, tt := range tests {
		if got := testRig(tt.pkg) != ""; got != tt.wantRig {
			t.Errorf("testRig(%s) = %q, want a rig: %v", tt.pkg.path, testRig(tt.pkg), tt.wantRig)
		}
	}
}
