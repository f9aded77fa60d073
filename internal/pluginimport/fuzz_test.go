package pluginimport

import (
	"os"
	"path/filepath"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

// FuzzImport: any input either fails with an error or gives a templates file that is YAML with
// a templates list; the detector and parsers never panic nor loop.
func FuzzImport(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*")
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil && len(data) < 20000 {
			f.Add(data, "")
		}
	}
	f.Add([]byte("- label: a\n  containers: [{name: x, image: y, command: \"'a\"}]\n"), "list")
	f.Add([]byte("agent: {podTemplates: {a: \"- name: b\\n  label: c\\n\"}}\n"), "helm")
	f.Fuzz(func(t *testing.T, data []byte, format string) {
		ff, err := ParseFormat(format)
		if err != nil {
			return
		}
		res, err := Import([]Input{{Name: "fuzz.yaml", Data: data}}, Options{Format: ff})
		if err != nil {
			return
		}
		var out struct {
			Templates []map[string]any `yaml:"templates"`
		}
		if err := yaml.Unmarshal(res.YAML, &out); err != nil {
			t.Fatalf("output is not YAML: %v\n%s", err, res.YAML)
		}
		if len(out.Templates) != res.Templates {
			t.Fatalf("%d templates written, %d counted", len(out.Templates), res.Templates)
		}
	})
}
