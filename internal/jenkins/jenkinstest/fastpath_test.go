package jenkinstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The emulator takes shortcuts where the general path was too slow at a thousand nodes; these
// tests hold each shortcut to the general path it replaces.

// encoderJSON is what the writer produced before its fast path: encoding/json without HTML escaping.
func encoderJSON(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // encoding a string cannot fail
	return strings.TrimSuffix(b.String(), "\n")
}

func writerJSON(s string) string {
	w := &jsonWriter{}
	w.str(s)
	return w.buf.String()
}

func TestJSONStringMatchesEncoder(t *testing.T) {
	for _, s := range []string{
		"", "plain", "‘a1’ is offline", "„ex“ ist reserviert", "quote\"d", `back\slash`, "tab\tnew\nline",
		"\x00\x1f\x7f", "<html>&amp;", "line\u2028sep\u2029par", "bad \xff utf8", "truncated \xe2\x80", "𝔘nicode",
	} {
		if got, want := writerJSON(s), encoderJSON(s); got != want {
			t.Errorf("str(%q) = %s, want %s", s, got, want)
		}
	}
}

func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "a", "‘x’", "\u2028", "\xff", "\"\\", "\x01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := writerJSON(s), encoderJSON(s); got != want {
			t.Fatalf("str(%q) = %s, want %s", s, got, want)
		}
	})
}

func TestJavaLess(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"a", "b", true},
		{"b", "a", false},
		{"a", "a", false},
		{"a", "ab", true},
		{"B", "a", true}, // upper case first, as in Java
		{"été", "zeta", false},
		// A supplementary character is a surrogate pair in UTF-16 (0xD835...), which sorts before
		// U+FF21 although its code point is larger: here Go's byte order and Java's disagree.
		{"𝔘", "\uff21", true},
		{"\uff21", "𝔘", false},
		{"\xff", "a", false}, // invalid UTF-8 is U+FFFD to Java
	}
	for _, tt := range tests {
		if got := javaLess(tt.a, tt.b); got != tt.want {
			t.Errorf("javaLess(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := javaLessUTF16(tt.a, tt.b); got != tt.want {
			t.Errorf("javaLessUTF16(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func FuzzJavaLess(f *testing.F) {
	f.Add("a", "b")
	f.Add("𝔘", "\uff21")
	f.Add("\xff", "\xef\xbf\xbd")
	f.Fuzz(func(t *testing.T, a, b string) {
		if got, want := javaLess(a, b), javaLessUTF16(a, b); got != want {
			t.Fatalf("javaLess(%q, %q) = %v, String.compareTo says %v", a, b, got, want)
		}
	})
}

// TestComputerOrderThroughChurn: the computer list kept in order as nodes come and go is the
// list sorted afresh.
func TestComputerOrderThroughChurn(t *testing.T) {
	r := newScaleRig(t, Options{})
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"été", "Zed", "alpha", "𝔘nicode", "\uff21wide", "a-1", "a", "B"}
	for i := 0; i < 20; i++ {
		names = append(names, fmt.Sprintf("n%d", rng.IntN(1000)))
	}
	present := map[string]bool{}
	for i, name := range names {
		if present[name] {
			continue
		}
		r.createNode(name, "linux")
		present[name] = true
		if i%3 == 0 { // delete an earlier node now and then
			for old := range present {
				r.mustDo(http.MethodPost, "computer/"+old+"/doDelete", nil, http.StatusFound)
				delete(present, old)
				break
			}
		}
		r.s.mu.Lock()
		got := slices.Clone(r.s.computers())
		want := append([]*node{r.s.builtIn}, r.s.sortedAgents()...)
		r.s.mu.Unlock()
		if diff := cmp.Diff(nodeNames(want), nodeNames(got)); diff != "" {
			t.Fatalf("after %d changes, computers (-sorted afresh +kept):\n%s", i+1, diff)
		}
	}
}

func nodeNames(ns []*node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.name)
	}
	return out
}

// TestRecreatedNodeLabels: a label's memory of which nodes satisfy it must not carry over to a
// node deleted and created again under the same name with other labels.
func TestRecreatedNodeLabels(t *testing.T) {
	r := newScaleRig(t, Options{})
	r.createNode("x", "red")
	r.s.CreateFreestyleJob("blue-job", "blue", time.Hour)
	id, err := r.s.Schedule("blue-job")
	if err != nil {
		t.Fatal(err)
	}
	whyOf := func() string {
		var q struct {
			Items []struct {
				ID  int64
				Why string
			}
		}
		if err := json.Unmarshal(r.mustDo(http.MethodGet, "queue/api/json?tree=items[id,why]", nil, http.StatusOK), &q); err != nil {
			t.Fatal(err)
		}
		for _, it := range q.Items {
			if it.ID == id {
				return it.Why
			}
		}
		return "(not queued)"
	}
	if diff := cmp.Diff("There are no nodes with the label ‘blue’", whyOf()); diff != "" {
		t.Errorf("why with x labelled red (-want +got):\n%s", diff)
	}
	r.mustDo(http.MethodPost, "computer/x/doDelete", nil, http.StatusFound)
	r.createNode("x", "blue")
	if diff := cmp.Diff("‘x’ is offline", whyOf()); diff != "" {
		t.Errorf("why with x labelled blue (-want +got):\n%s", diff)
	}
	r.connect("x")
	eventually(t, "the build to start on x", func() bool {
		b := r.s.Builds()
		return len(b) == 1 && b[0].Node == "x" && !b[0].Started.IsZero()
	})
}
