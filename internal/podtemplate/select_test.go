package podtemplate

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

const selectDoc = `templates:
  - name: base
    pod: {spec: {securityContext: {runAsUser: 1000}}}
  - name: maven
    labels: [maven, jdk17, linux]
    inheritFrom: [base]
  - name: windows
    labels: [windows, docker]
  - name: default
    labels: [linux]
    mode: normal
  - name: node
    labels: [linux, docker, nodejs, "gpu.large"]
  - name: spaced
    labels: [x86_64, "os=linux"]
`

func TestSelect(t *testing.T) {
	set, err := Parse("select.yaml", []byte(selectDoc))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		expr string
		want string // "" = none
	}{
		{"maven", "maven"},
		{"linux", "maven"}, // first in file order whose labels satisfy it
		{"linux && docker", "node"},
		{"linux&&docker", "node"},
		{"docker", "windows"},
		{"docker && !windows", "node"},
		{"!maven && linux", "default"},
		{"maven || windows", "maven"},
		{"windows || maven", "maven"}, // order of templates, not of the expression
		{"jdk17 && linux || nodejs", "maven"},
		{"nodejs || jdk17 && windows", "node"}, // && binds tighter: nodejs || (jdk17 && windows)
		{"(nodejs || jdk17) && windows", ""},
		{"windows -> docker", "maven"}, // maven lacks windows: the implication holds
		{"linux -> nodejs", "windows"}, // windows lacks linux
		{"linux && (linux -> nodejs)", "node"},
		{"maven <-> jdk17", "maven"},
		{"docker <-> linux", "node"}, // maven, windows and default have one of the two
		{"docker && (docker <-> linux)", "node"},
		{`"gpu.large"`, "node"},
		{`gpu.large && "linux"`, "node"},
		{`"os=linux"`, "spaced"},
		{"os=linux && x86_64", "spaced"},
		{"solaris", ""},
		{"!linux && !windows && !base", "spaced"}, // base is a parent only, never picked
		{"", "default"},                           // no label: mode normal only
		{"   ", "default"},
		{"maven && (", ""}, // unparsable: taken as one label name, which nobody has
	}
	for _, tt := range tests {
		got := ""
		if tpl, ok := set.Select(tt.expr); ok {
			got = tpl.Name
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Select(%q) mismatch (-want +got):\n%s", tt.expr, diff)
		}
	}
}

func TestSelectUnlabelledNeedsNormalMode(t *testing.T) {
	set, err := Parse("t.yaml", []byte("templates:\n  - name: a\n    labels: [a]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if tpl, ok := set.Select(""); ok {
		t.Errorf("Select(\"\") = %s, want none: only mode normal templates take unlabelled builds", tpl.Name)
	}
}

func TestSelectUnparsableIsOneLabel(t *testing.T) {
	// Jenkins.getLabel takes what does not parse as an expression as a single atom; a `why` can
	// name such an atom, and the template that carries exactly that label should get it.
	set := &Set{Templates: []*Template{{Name: "odd", Labels: []string{"a&b"}, Mode: ModeExclusive}}}
	tpl, ok := set.Select("a&b")
	if !ok || tpl.Name != "odd" {
		t.Errorf("Select(%q) = %v, %v; want odd", "a&b", tpl, ok)
	}
}
