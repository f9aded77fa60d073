package pluginimport

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"

	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
)

// Fields the import carries over into a template (the list); any other key of a
// template or container in a real file must have a finding at its line.
var (
	carriedTemplateKeys = set("name", "label", "nodeUsageMode", "instanceCap", "instanceCapStr", "inheritFrom", "containers",
		"envVars", "volumes", "workspaceVolume", "yaml", "yamlMergeStrategy", "inheritYamlMergeStrategy", "serviceAccount",
		"nodeSelector", "imagePullSecrets", "annotations", "podLabels", "activeDeadlineSeconds", "activeDeadlineSecondsStr",
		"slaveConnectTimeout", "slaveConnectTimeoutStr", "podRetention", "hostNetwork", "runAsUser", "runAsGroup",
		"supplementalGroups", "schedulerName", "terminationGracePeriodSeconds")
	carriedContainerKeys = set("name", "image", "command", "args", "ttyEnabled", "workingDir", "privileged", "runAsUser",
		"runAsGroup", "resourceRequestCpu", "resourceRequestMemory", "resourceRequestEphemeralStorage", "resourceLimitCpu",
		"resourceLimitMemory", "resourceLimitEphemeralStorage", "envVars", "alwaysPullImage", "livenessProbe", "ports")
)

func set(ks ...string) map[string]bool {
	m := map[string]bool{}
	for _, k := range ks {
		m[k] = true
	}
	return m
}

// expectation is what a real file had, collected by a plain walk of its YAML independent of the
// importer: every container image, every environment variable name, every volume mount path, and
// each template's and container's keys with their lines.
type expectation struct {
	images, env, mounts map[string]bool
	keys                []inputKey
}

type inputKey struct {
	key, where string
	line       int
	carried    bool
}

func collect(t *testing.T, file string, data []byte) *expectation {
	t.Helper()
	e := &expectation{images: map[string]bool{}, env: map[string]bool{}, mounts: map[string]bool{}}
	docs, err := parseDocuments(file, data, 0)
	if err != nil {
		t.Fatal(err)
	}
	var walk func(n *yaml.Node, depth int)
	walk = func(n *yaml.Node, depth int) {
		n = resolve(n)
		if n == nil {
			return
		}
		switch n.Kind {
		case yaml.ScalarNode:
			if depth < 4 && strings.Contains(n.Value, "templates:") && strings.Contains(n.Value, "\n") {
				nested, _ := parseDocuments(file, []byte(n.Value), stringOffset(n))
				for _, d := range nested {
					walk(d.root, depth+1)
				}
			}
		case yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, depth)
			}
		case yaml.MappingNode:
			for _, p := range pairs(n) {
				if p[0].Value == "templates" && resolve(p[1]).Kind == yaml.SequenceNode {
					for _, tmpl := range items(p[1]) {
						e.template(tmpl)
					}
				}
				walk(p[1], depth)
			}
		}
	}
	for _, d := range docs {
		walk(d.root, 0)
	}
	return e
}

func (e *expectation) template(n *yaml.Node) {
	for _, p := range pairs(n) {
		e.keys = append(e.keys, inputKey{key: p[0].Value, where: "template", line: p[0].Line, carried: carriedTemplateKeys[p[0].Value]})
		switch p[0].Value {
		case "containers":
			for _, c := range items(p[1]) {
				for _, cp := range pairs(c) {
					e.keys = append(e.keys, inputKey{key: cp[0].Value, where: "container", line: cp[0].Line, carried: carriedContainerKeys[cp[0].Value]})
					switch cp[0].Value {
					case "image":
						e.images[cp[1].Value] = true
					case "envVars":
						e.envVars(cp[1])
					}
				}
			}
		case "envVars":
			e.envVars(p[1])
		case "volumes":
			for _, v := range items(p[1]) {
				for _, vp := range pairs(v) {
					if mp := lookup(vp[1], "mountPath"); mp != nil {
						e.mounts[filepath.Clean(mp.Value)] = true
					}
				}
			}
		}
	}
}

func (e *expectation) envVars(n *yaml.Node) {
	for _, it := range items(n) {
		for _, p := range pairs(it) {
			if k := lookup(p[1], "key"); k != nil {
				e.env[k.Value] = true
			}
		}
	}
}

// rendered is what the imported templates' pods have.
type rendered struct{ images, env, mounts map[string]bool }

func render(t *testing.T, s *podtemplate.Set) rendered {
	t.Helper()
	r := rendered{images: map[string]bool{}, env: map[string]bool{}, mounts: map[string]bool{}}
	for _, tp := range s.Templates {
		pod, _, err := podtemplate.Render(tp, podtemplate.Identity{Name: tp.Name + "-abcde", Namespace: "ci", Secret: "s", JenkinsURL: "http://jenkins:8080/"})
		if err != nil {
			t.Fatalf("render %s: %v", tp.Name, err)
		}
		for _, c := range pod.Spec.Containers {
			r.images[c.Image] = true
			for _, e := range c.Env {
				r.env[e.Name] = true
			}
			for _, m := range c.VolumeMounts {
				r.mounts[m.MountPath] = true
			}
		}
	}
	return r
}

func TestRealFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/*/*")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Fatalf("only %d real files in testdata", len(files))
	}
	for _, file := range files {
		t.Run(file, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Import([]Input{{Name: file, Data: data}}, Options{})
			if err != nil {
				t.Fatalf("Import: %v", err)
			}
			s, err := podtemplate.Parse(file+" (imported)", res.YAML)
			if err != nil {
				t.Fatalf("imported templates do not pass the loader: %v\n%s", err, res.YAML)
			}
			got := render(t, s)
			dropped := map[int][]Finding{}
			for _, f := range res.Findings {
				if f.File == file {
					dropped[f.Line] = append(dropped[f.Line], f)
				}
			}
			want := collect(t, file, data)
			if res.Formats[file] == FormatHelm {
				want = helmExpectations[filepath.Base(file)]
			}
			for _, img := range sorted(want.images) {
				if !got.images[img] {
					t.Errorf("image %s not in any rendered pod", img)
				}
			}
			for _, name := range sorted(want.env) {
				if !got.env[name] && !reported(res.Findings, "envVars "+name) {
					t.Errorf("env %s neither rendered nor reported", name)
				}
			}
			for _, m := range sorted(want.mounts) {
				if !got.mounts[m] {
					t.Errorf("volume mount %s not in any rendered pod", m)
				}
			}
			for _, k := range want.keys {
				if !k.carried && len(dropped[k.line]) == 0 {
					t.Errorf("%s field %s (line %d) neither carried over nor reported", k.where, k.key, k.line)
				}
			}
		})
	}
}

// The Helm values' templates are made by the chart's template code, so what they must hold is
// written out by hand from the files.
var helmExpectations = map[string]*expectation{
	"values.yaml": {
		images: set("jenkins/inbound-agent:3385.vf1123fb_515da_-1"),
		env:    set(), mounts: set("/home/jenkins/agent"),
	},
	"other-values.yaml": {
		images: set("jenkins/inbound-agent:3385.vf1123fb_515da_-1", "python:3"),
		env:    set("HOME", "PATH"), mounts: set("/var/myapp/myemptydir", "/home/jenkins/agent"),
	},
}

func reported(fs []Finding, field string) bool {
	for _, f := range fs {
		if f.Field == field {
			return true
		}
	}
	return false
}

func sorted(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
