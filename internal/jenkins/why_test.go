package jenkins

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/jenkins-agent-provisioner/provisioner/internal/labelexpr"
)

func decodeNodeJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("decode node json %q: %v", s, err)
	}
	return m
}

func TestParseWhy(t *testing.T) {
	tests := []struct {
		name string
		why  string
		want Why
	}{
		// Labels, quoted since 2.125.
		{"busy label", "Waiting for next available executor on \u2018linux\u2019", Why{Label: "linux", MaybeNode: true}},
		{"busy expression", "Waiting for next available executor on \u2018linux&&docker\u2019", Why{Label: "linux&&docker"}},
		{"busy expression with spaces", "Waiting for next available executor on \u2018linux && docker\u2019", Why{Label: "linux&&docker"}},
		{"busy expression with operators", "Waiting for next available executor on \u2018(a||b)&&!c\u2019", Why{Label: "(a||b)&&!c"}},
		{"busy implication", "Waiting for next available executor on \u2018a -> b\u2019", Why{Label: "a->b"}},
		{"busy quoted atom", "Waiting for next available executor on \u2018\"my label\"&&x\u2019", Why{Label: `"my label"&&x`}},
		{"busy raw atom with a space", "Waiting for next available executor on \u2018Built-In Node\u2019", Why{Label: `"Built-In Node"`, MaybeNode: true}},
		{"no nodes", "There are no nodes with the label \u2018k8s-maven\u2019", Why{Label: "k8s-maven"}},
		{"no nodes expression", "There are no nodes with the label \u2018maven && jdk21\u2019", Why{Label: "maven&&jdk21"}},
		{"all offline", "All nodes of label \u2018oracle_12\u2019 are offline", Why{Label: "oracle_12"}},
		{"all offline expression", "All nodes of label \u2018windows||mac\u2019 are offline", Why{Label: "windows||mac"}},
		// Older, unquoted.
		{"old busy on node", "Waiting for next available executor on ci6.camunda.loc-03ca904e87b2",
			Why{Label: "ci6.camunda.loc-03ca904e87b2", MaybeNode: true}},
		{"old busy expression", "Waiting for next available executor on linux&&docker", Why{Label: "linux&&docker"}},
		{"old no nodes", "There are no nodes with the label maven", Why{Label: "maven"}},
		{"old node offline", "build1 is offline", Why{Node: "build1"}},
		{"old node offline, dotted name", "ci4.camunda.loc-a5a8a9c7b2ea is offline", Why{Node: "ci4.camunda.loc-a5a8a9c7b2ea"}},
		{"old reserved alone", "Jenkins is reserved for jobs with matching label expression", Why{Ambiguous: true, Unlabelled: true}},
		// A single node named instead of its label.
		{"node offline", "\u2018agent-7\u2019 is offline", Why{Node: "agent-7"}},
		{"node with a space offline", "\u2018my agent\u2019 is offline", Why{Node: "my agent"}},
		{"node not accepting tasks", "\u2018agent-7\u2019 is not accepting tasks", Why{Node: "agent-7"}},
		// A composite of one.
		{"label missing alone", "\u2018agent-7\u2019 doesn\u2019t have label \u2018gpu\u2019", Why{Label: "gpu"}},
		{"label missing alone, ascii apostrophe", "agent-7 doesn't have label gpu&&cuda", Why{Label: "gpu&&cuda"}},
		{"reserved alone", "\u2018Built-In Node\u2019 is reserved for jobs with matching label expression", Why{Ambiguous: true, Unlabelled: true}},
		{"permission alone", "\u2018bob\u2019 lacks permission to run on \u2018agent-7\u2019", Why{Ambiguous: true}},
		// Composites: sorted distinct reasons joined with "; ".
		{"composite with label missing",
			"\u2018Built-In Node\u2019 doesn\u2019t have label \u2018linux&&docker\u2019; \u2018agent-1\u2019 is offline; \u2018agent-2\u2019 doesn\u2019t have label \u2018linux&&docker\u2019",
			Why{Label: "linux&&docker"}},
		{"composite label missing after node-only parts",
			"\u2018a\u2019 is not accepting tasks; \u2018b\u2019 is offline; \u2018c\u2019 doesn\u2019t have label \u2018gpu\u2019",
			Why{Label: "gpu"}},
		{"composite of node-only parts", "\u2018agent-1\u2019 is offline; \u2018agent-2\u2019 is not accepting tasks", Why{Ambiguous: true}},
		{"composite with permission and offline", "\u2018bob\u2019 lacks permission to run on \u2018a\u2019; \u2018b\u2019 is offline", Why{Ambiguous: true}},
		{"old composite (jam 2.89.4)", "Jenkins is reserved for jobs with matching label expression; build1 is offline; build2 is offline",
			Why{Ambiguous: true, Unlabelled: true}},
		{"composite cut after five",
			"\u2018a\u2019 is offline; \u2018b\u2019 is offline; \u2018c\u2019 is offline; \u2018d\u2019 is offline; \u2018e\u2019 is offline; ... and 3 more",
			Why{Ambiguous: true}},
		{"composite cut, label missing shown", "\u2018a\u2019 doesn\u2019t have label \u2018x\u2019; \u2018b\u2019 is offline; ... and 9 more", Why{Label: "x"}},
		// No label named at all.
		{"no agent node at all", "Waiting for next available executor", Why{Ambiguous: true}},
		{"empty", "", Why{Ambiguous: true}},
		{"unknown text", "Something a plugin says", Why{Ambiguous: true}},
		{"empty quoted label", "There are no nodes with the label \u2018\u2019", Why{Ambiguous: true}},
		// Not demand.
		{"quiet period", "In the quiet period. Expires in 4.9 sec", Why{NotDemand: true}},
		{"finished waiting", "Finished waiting", Why{NotDemand: true}},
		{"shutdown", "Jenkins is about to shut down", Why{NotDemand: true}},
		{"build in progress", "Build #66 is already in progress (ETA:2 hr 25 min)", Why{NotDemand: true}},
		{"build in progress, no eta", "Build #9 is already in progress", Why{NotDemand: true}},
		{"a build in progress", "A build is already in progress", Why{NotDemand: true}},
		{"upstream", "Upstream project \u2018lib\u2019 is already building.", Why{NotDemand: true}},
		{"downstream", "Downstream project app is already building.", Why{NotDemand: true}},
		{"blocked by", "Blocked by lib #12", Why{NotDemand: true}},
		{"waiting for completion", "Waiting for the completion of upstream-job", Why{NotDemand: true}},
		{"restoring", "Restoring the build queue", Why{NotDemand: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, ParseWhy(tt.why)); diff != "" {
				t.Errorf("ParseWhy(%q) (-want +got):\n%s", tt.why, diff)
			}
		})
	}
}

// fixtureWhys collects every `why` of the recorded queues, the fuzz seed corpus.
func fixtureWhys(t testing.TB) []string {
	var out []string
	matches, _ := filepath.Glob(filepath.Join(fixturesDir(t), "queue*.json"))
	for _, m := range matches {
		data, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Why   *string `json:"why"`
			Items []struct {
				Why *string `json:"why"`
			} `json:"items"`
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		if doc.Why != nil {
			out = append(out, *doc.Why)
		}
		for _, it := range doc.Items {
			if it.Why != nil {
				out = append(out, *it.Why)
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no why in the recorded queues")
	}
	return out
}

func FuzzParseWhy(f *testing.F) {
	for _, w := range fixtureWhys(f) {
		f.Add(w)
	}
	for _, w := range []string{
		"Waiting for next available executor on \u2018linux && docker\u2019",
		"\u2018a\u2019 doesn\u2019t have label \u2018x||y\u2019; \u2018b\u2019 is offline",
		"\u2018bob\u2019 lacks permission to run on \u2018a\u2019",
		"In the quiet period. Expires in 5 sec",
		noNodes(strings.Repeat("(", 5000)),
		noNodes(strings.Repeat("(", labelexpr.MaxDepth) + "a" + strings.Repeat(")", labelexpr.MaxDepth)),
		"Waiting for next available executor on \u2018" + strings.Repeat(`\`, labelexpr.MaxLength/2+1) + "\u2019",
	} {
		f.Add(w)
	}
	f.Fuzz(func(t *testing.T, why string) {
		w := ParseWhy(why)
		// Exactly one reading: not demand, a label, a node, ambiguous, or unreadable.
		n := 0
		for _, b := range []bool{w.NotDemand, w.Label != "", w.Node != "", w.Ambiguous, w.Err != nil} {
			if b {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("ParseWhy(%q) = %+v: want exactly one of NotDemand, Label, Node, Ambiguous, Err", why, w)
		}
		if w.MaybeNode && w.Label == "" || w.Unlabelled && !w.Ambiguous {
			t.Fatalf("ParseWhy(%q) = %+v: refinement without its reading", why, w)
		}
		if w.Label != "" {
			// The label is in normal form: parsing it back gives the same text.
			n, err := labelexpr.Normalize(w.Label)
			if err != nil || n != w.Label {
				t.Fatalf("ParseWhy(%q).Label = %q, not normalised (%q, %v)", why, w.Label, n, err)
			}
			if utf8.ValidString(why) && !utf8.ValidString(w.Label) {
				t.Fatalf("ParseWhy(%q).Label = %q: invalid UTF-8 from valid input", why, w.Label)
			}
		}
		if w.Node != "" && !strings.Contains(why, w.Node) {
			t.Fatalf("ParseWhy(%q).Node = %q, not in the text", why, w.Node)
		}
	})
}
