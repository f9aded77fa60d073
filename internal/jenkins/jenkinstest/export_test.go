package jenkinstest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// sample is a bean with Stapler's visibility levels: a depth-0 nested object shows only its
// visibility-2 properties.
func sample() *bean {
	child := &bean{class: "C", props: []prop{p("hidden", 1), pv("shown", 2, "x")}}
	return &bean{class: "Top", props: []prop{
		p("a", 1),
		p("child", child),
		p("list", []any{child, child, child}),
		pi("inline", []any{&bean{props: []prop{p("z", true)}}}),
		p("nul", nil),
	}}
}

func TestRender(t *testing.T) {
	tests := []struct {
		name string
		opts func() exportOpts
		want string
	}{
		{"depth 0", func() exportOpts { return exportOpts{} },
			`{"_class":"Top","a":1,"child":{"_class":"C","shown":"x"},"list":[{"_class":"C","shown":"x"},{"_class":"C","shown":"x"},{"_class":"C","shown":"x"}],"inline":[{"z":true}],"nul":null}`},
		{"depth 1", func() exportOpts { return exportOpts{depth: 1} },
			`{"_class":"Top","a":1,"child":{"_class":"C","hidden":1,"shown":"x"},"list":[{"_class":"C","hidden":1,"shown":"x"},{"_class":"C","hidden":1,"shown":"x"},{"_class":"C","hidden":1,"shown":"x"}],"inline":[{"z":true}],"nul":null}`},
		{"tree picks and ignores visibility", func() exportOpts { return exportOpts{tree: mustTree(t, "child[hidden],a")} },
			`{"_class":"Top","a":1,"child":{"_class":"C","hidden":1}}`},
		{"tree leaf object keeps only _class", func() exportOpts { return exportOpts{tree: mustTree(t, "child")} },
			`{"_class":"Top","child":{"_class":"C"}}`},
		{"tree wildcard", func() exportOpts { return exportOpts{tree: mustTree(t, "child[*]")} },
			`{"_class":"Top","child":{"_class":"C","hidden":1,"shown":"x"}}`},
		{"tree range", func() exportOpts { return exportOpts{tree: mustTree(t, "list[shown]{1,2}")} },
			`{"_class":"Top","list":[{"_class":"C","shown":"x"}]}`},
		{"tree open range", func() exportOpts { return exportOpts{tree: mustTree(t, "list[shown]{2,}")} },
			`{"_class":"Top","list":[{"_class":"C","shown":"x"}]}`},
		{"tree single element", func() exportOpts { return exportOpts{tree: mustTree(t, "list[shown]{0}")} },
			`{"_class":"Top","list":[{"_class":"C","shown":"x"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, string(render(sample(), tt.opts()))); diff != "" {
				t.Errorf("render (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRenderPretty checks Stapler's pretty layout: `"k" : v`, two spaces, blank line in empty
// containers (as the recorded ?pretty=true payloads show).
func TestRenderPretty(t *testing.T) {
	b := &bean{class: "Q", props: []prop{p("items", []any{}), p("o", &bean{}), p("n", 1)}}
	want := "{\n  \"_class\" : \"Q\",\n  \"items\" : [\n    \n  ],\n  \"o\" : {\n    \n  },\n  \"n\" : 1\n}"
	if diff := cmp.Diff(want, string(render(b, exportOpts{pretty: true}))); diff != "" {
		t.Errorf("pretty (-want +got):\n%s", diff)
	}
}

// TestPrettyMatchesRecording renders a never-connected computer and compares its layout line
// by line with the recorded pretty-printed payload's layout (values aside).
func TestPrettyLayoutAgainstServer(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, "admin", "admin-token")
	createNode(t, c, "n", "", "NORMAL", false)
	body := string(c.get("computer/n/api/json?pretty=true&tree=displayName,executors,oneOffExecutors").body)
	want := "{\n  \"_class\" : \"hudson.slaves.SlaveComputer\",\n  \"displayName\" : \"n\",\n  \"executors\" : [\n    {\n      \n    }\n  ],\n  \"oneOffExecutors\" : [\n    \n  ]\n}"
	if diff := cmp.Diff(want, body); diff != "" {
		t.Errorf("pretty (-want +got):\n%s", diff)
	}
	var v any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Errorf("pretty output is not JSON: %v", err)
	}
}

func mustTree(t *testing.T, s string) *treeNode {
	t.Helper()
	tr, err := parseTree(s)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestParseTreeErrors(t *testing.T) {
	for _, s := range []string{"", "a[", "a[b", "a]", "a,,b", "a{1", "a{x}", "a[]", "a{}", "a{-1,2}"} {
		if _, err := parseTree(s); err == nil {
			t.Errorf("parseTree(%q) accepted", s)
		}
	}
}

// treeString prints a parsed tree back in a canonical form (sorted names), for the fuzz test.
func treeString(n *treeNode) string {
	var names []string
	for k := range n.children {
		names = append(names, k)
	}
	sortStrings(names)
	var b strings.Builder
	for i, k := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		c := n.children[k]
		if len(c.children) > 0 {
			b.WriteString("[" + treeString(c) + "]")
		}
		if c.rng != nil {
			b.WriteString("{" + itoa(int64(c.rng.min)) + ",")
			if c.rng.max >= 0 {
				b.WriteString(itoa(int64(c.rng.max)))
			}
			b.WriteString("}")
		}
	}
	return b.String()
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// FuzzParseTree: the parser never panics, and what it accepts prints back to a tree it parses
// identically.
func FuzzParseTree(f *testing.F) {
	for _, s := range []string{"a", "a,b", "items[id,why,task[name,url]]", "computer[executors[currentExecutable[url]]]{0,5}", "*", "a{3}", "a[b]{,2}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tr, err := parseTree(s)
		if err != nil {
			return
		}
		canon := treeString(tr)
		again, err := parseTree(canon)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", canon, s, err)
		}
		if got := treeString(again); got != canon {
			t.Fatalf("round trip of %q: %q then %q", s, canon, got)
		}
	})
}

func TestTimeSpan(t *testing.T) {
	tests := []struct {
		d      time.Duration
		en, de string
	}{
		{50 * time.Millisecond, "50 ms", "50 ms"},
		{120 * time.Millisecond, "0.12 sec", "0,12 Sekunden"},
		{4900 * time.Millisecond, "4.9 sec", "4,9 Sekunden"},
		{time.Second, "1 sec", "1 Sekunde"},
		{12 * time.Second, "12 sec", "12 Sekunden"},
		{2*time.Minute + 5*time.Second, "2 min 5 sec", "2 Minuten 5 Sekunden"},
		{12*time.Minute + 5*time.Second, "12 min", "12 Minuten"},
		{2*time.Hour + 25*time.Minute, "2 hr 25 min", "2 Stunden 25 Minuten"},
		{26 * time.Hour, "1 day 2 hr", "1 Tag 2 Stunden"},
		{3 * 24 * time.Hour, "3 days 0 hr", "3 Tage 0 Stunden"},
	}
	for _, tt := range tests {
		if got := timeSpan(langEN, tt.d); got != tt.en {
			t.Errorf("timeSpan(en, %v) = %q, want %q", tt.d, got, tt.en)
		}
		if got := timeSpan(langDE, tt.d); got != tt.de {
			t.Errorf("timeSpan(de, %v) = %q, want %q", tt.d, got, tt.de)
		}
	}
}

func TestAcceptLanguage(t *testing.T) {
	tests := map[string]lang{
		"":                        langEN,
		"en":                      langEN,
		"de":                      langDE,
		"de-AT":                   langDE,
		"en-US,en;q=0.9,de;q=0.8": langEN,
		"fr;q=0.5,de;q=0.9":       langDE,
		"fr":                      langEN, // untranslated here: English
		"de;q=0,en":               langEN,
	}
	for h, want := range tests {
		if got := parseAcceptLanguage(h); got != want {
			t.Errorf("parseAcceptLanguage(%q) = %v, want %v", h, got, want)
		}
	}
}

func TestCompositeWhy(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{[]string{"b", "a", "b"}, "a; b"},
		{[]string{"1", "2", "3", "4", "5"}, "1; 2; 3; 4; 5"},
		{[]string{"7", "6", "5", "4", "3", "2", "1"}, "1; 2; 3; 4; 5; ... and 2 more"},
		// Java compares UTF-16 units: U+1F600 (a surrogate pair, 0xD83D...) sorts before U+FF5E,
		// the reverse of byte order.
		{[]string{"\U0001F600", "\uFF5E"}, "\U0001F600; \uFF5E"},
	}
	for _, tt := range tests {
		if got := compositeWhy(tt.in); got != tt.want {
			t.Errorf("compositeWhy(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFormatInt(t *testing.T) {
	for _, tt := range []struct {
		n      int64
		en, de string
	}{{7, "7", "7"}, {1234, "1,234", "1.234"}, {1234567, "1,234,567", "1.234.567"}, {-1000, "-1,000", "-1.000"}} {
		if got := formatInt(langEN, tt.n); got != tt.en {
			t.Errorf("formatInt(en, %d) = %q", tt.n, got)
		}
		if got := formatInt(langDE, tt.n); got != tt.de {
			t.Errorf("formatInt(de, %d) = %q", tt.n, got)
		}
	}
}
