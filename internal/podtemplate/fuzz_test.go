package podtemplate

import (
	"os"
	"strings"
	"testing"
)

// FuzzParse feeds the loader arbitrary documents. It must never panic, every error must name the
// file, and whatever it accepts must be usable: every selectable template renders, and selection
// never panics. Run it with -fuzzminimizetime 200x: each input is a whole file, and minimising one
// with the default 60s budget stalls the fuzzer for minutes on a 2-core machine.
func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile(examplesFile); err == nil {
		f.Add(string(data))
	}
	f.Add(minimal)
	f.Add(inheritDoc)
	f.Add(selectDoc)
	f.Add(specialDoc)
	f.Add("templates:\n  - name: a\n    inheritFrom: [a]\n")
	f.Add("templates:\n  - &x {name: a, labels: [a]}\n  - <<: *x\n    name: b\n")
	f.Add("templates: [{name: a, labels: [a], pod: {spec: {containers: [{name: c, image: i, resources: {requests: {cpu: 1e3}}}]}}}]\n")
	f.Fuzz(func(t *testing.T, doc string) {
		set, err := Parse("fuzz.yaml", []byte(doc))
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "fuzz.yaml") {
					t.Fatalf("error line does not name the file: %q", line)
				}
			}
			return
		}
		for _, tpl := range set.Templates {
			if !tpl.Selectable() {
				continue
			}
			if _, _, err := Render(tpl, Identity{Name: tpl.Name + "-abcde", Secret: "s", JenkinsURL: "https://j/"}); err != nil {
				t.Fatalf("accepted template %s does not render: %v", tpl.Name, err)
			}
			for _, l := range tpl.Labels {
				if got, ok := set.Select(l); !ok || !containsString(got.Labels, l) {
					t.Fatalf("Select(%q) = %v, %v; template %s has that label", l, got, ok, tpl.Name)
				}
			}
		}
		set.Select("")
		set.Select("a && !b")
	})
}
