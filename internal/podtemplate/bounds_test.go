package podtemplate

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jenkins-agent-provisioner/provisioner/internal/labelexpr"
)

func chainDoc(n int, leafFirst bool) string {
	var b strings.Builder
	b.WriteString("templates:\n")
	order := make([]int, n)
	for i := range order {
		order[i] = i
		if leafFirst {
			order[i] = n - 1 - i
		}
	}
	for _, i := range order {
		fmt.Fprintf(&b, "  - name: t%d\n    labels: [l%d]\n", i, i)
		if i > 0 {
			fmt.Fprintf(&b, "    inheritFrom: [t%d]\n", i-1)
		}
	}
	return b.String()
}

// wideDoc: parents with big pods and many children each merging all of them, the work a few KB of
// YAML can ask for.
func wideDoc(parents, children, envPerParent int) string {
	var b strings.Builder
	b.WriteString("templates:\n")
	for p := range parents {
		fmt.Fprintf(&b, "  - name: p%d\n    pod: {spec: {containers: [{name: jnlp, env: [", p)
		for e := range envPerParent {
			if e > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "{name: V%d_%d, value: %q}", p, e, strings.Repeat("x", 64))
		}
		b.WriteString("]}]}}\n")
	}
	for c := range children {
		fmt.Fprintf(&b, "  - name: c%d\n    labels: [c%d]\n    inheritFrom: [", c, c)
		for p := range parents {
			if p > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "p%d", p)
		}
		b.WriteString("]\n")
	}
	return b.String()
}

// TestLoadBounds: pathological files fail with a message naming the bound. The merge-work case
// took minutes before the bound (strategic merges of ever larger pods, 4 500 of them); now it stops
// once 64 MiB of pods have been merged.
func TestLoadBounds(t *testing.T) {
	many := "templates:\n" + strings.Repeat("", 0)
	for i := range MaxTemplates + 1 {
		many += fmt.Sprintf("  - name: t%d\n    labels: [l%d]\n", i, i)
	}
	labels := make([]string, MaxLabels+1)
	for i := range labels {
		labels[i] = fmt.Sprintf("l%d", i)
	}
	tests := []struct {
		name, doc, want string
	}{
		{"too many templates", many, fmt.Sprintf("%d templates, more than the %d", MaxTemplates+1, MaxTemplates)},
		{"deepest chain", chainDoc(MaxInheritanceDepth+1, false), ""},
		{"chain too deep, parents first", chainDoc(MaxInheritanceDepth+2, false), "inheritance deeper than 10"},
		{"chain too deep, leaf first", chainDoc(MaxInheritanceDepth+2, true), "inheritance deeper than 10"},
		{"too many parents", "templates:\n" + strings.Repeat("", 0) + func() string {
			s := ""
			var names []string
			for i := range MaxParents + 1 {
				s += fmt.Sprintf("  - name: p%d\n", i)
				names = append(names, fmt.Sprintf("p%d", i))
			}
			return s + "  - name: c\n    labels: [c]\n    inheritFrom: [" + strings.Join(names, ", ") + "]\n"
		}(), "11 parents, more than the 10"},
		{"too many labels", "templates:\n  - name: a\n    labels: [" + strings.Join(labels, ", ") + "]\n", "101 labels, more than the 100"},
		{"label too long", "templates:\n  - name: a\n    labels: [" + strings.Repeat("x", MaxLabelLength+1) + "]\n", "label of 257 bytes, more than the 256"},
		{"merge work", wideDoc(10, 450, 400), "resolving inheritance takes too much work"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tt.doc))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error = %.500v, want one containing %q", err, tt.want)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "t.yaml") {
				t.Errorf("error does not name the file: %.200s", err)
			}
		})
	}
}

func TestSelectWithCache(t *testing.T) {
	set, err := Parse("t.yaml", []byte(selectDoc))
	if err != nil {
		t.Fatal(err)
	}
	cache := labelexpr.NewCache(0)
	for _, expr := range []string{"linux && docker", "maven", "nothing", "", "linux && docker", strings.Repeat("(", 200) + "a"} {
		want, wantOK := set.Select(expr)
		got, gotOK := set.SelectWith(cache, expr)
		if got != want || gotOK != wantOK {
			t.Errorf("SelectWith(%.20q) = %v, %v; Select gives %v, %v", expr, got, gotOK, want, wantOK)
		}
	}
	if cache.Len() == 0 {
		t.Error("nothing cached")
	}
}
