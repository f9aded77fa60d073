package pluginimport

import (
	"errors"
	"fmt"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/jenkins-agent-provisioner/provisioner/internal/labelexpr"
)

// Format is the shape of an input file.
type Format string

const (
	// FormatAuto detects the format of each file.
	FormatAuto Format = ""
	// FormatJCasC is a Configuration-as-Code document with jenkins.clouds[].kubernetes, alone, in a
	// ConfigMap's data, or in a string of YAML anywhere in the file.
	FormatJCasC Format = "jcasc"
	// FormatHelm is the jenkinsci/jenkins Helm chart's values (agent:, additionalAgents:,
	// additionalClouds:).
	FormatHelm Format = "helm"
	// FormatList is a plain list of the plugin's pod templates (or a mapping with templates:).
	FormatList Format = "list"
)

// ParseFormat accepts the --format values.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case FormatAuto, "auto":
		return FormatAuto, nil
	case FormatJCasC, FormatHelm, FormatList:
		return f, nil
	}
	return "", fmt.Errorf("unknown format %q (want jcasc, helm or list)", s)
}

// Input is one file to import.
type Input struct {
	Name string
	Data []byte
}

// Options tune an import.
type Options struct {
	// Format forces every file's format; FormatAuto detects it.
	Format Format
	// HelmRelease is the Helm release name the chart's labels are made from
	// ("<release>-jenkins-agent"); default "jenkins".
	HelmRelease string
}

// SettingLine is one PROVISIONER_* setting the import derived from a cloud.
type SettingLine struct {
	Name, Value string
	Source      string // file:line
}

// Result is the outcome of an import.
type Result struct {
	// YAML is the templates file (docs/templates.md), with the settings as comments on top.
	YAML []byte
	// Findings is the report: every field not carried over verbatim, in file and line order.
	Findings []Finding
	// Settings are the PROVISIONER_* lines to put in provisioner.env (or the chart's values).
	Settings []SettingLine
	// Templates is how many templates were imported.
	Templates int
	// Formats is the format each input was read as, by name.
	Formats map[string]Format
}

type importer struct {
	opts      Options
	findings  []Finding
	settings  []SettingLine
	templates []*outTemplate
	envLines  map[string]int
	clouds    int
}

// Import converts the inputs. It fails only when an input is not YAML or holds no pod template
// configuration at all; everything else is carried over or reported.
func Import(inputs []Input, opts Options) (*Result, error) {
	if opts.HelmRelease == "" {
		opts.HelmRelease = "jenkins"
	}
	im := &importer{opts: opts, envLines: map[string]int{}}
	res := &Result{Formats: map[string]Format{}}
	var errs []error
	for _, in := range inputs {
		f, err := im.importFile(in)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		res.Formats[in.Name] = f
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(im.templates) == 0 {
		return nil, fmt.Errorf("no pod templates found in %s", names(inputs))
	}
	im.finish()
	out, err := im.render()
	if err != nil {
		return nil, err
	}
	im.findings = sortFindings(im.findings)
	res.YAML, res.Findings, res.Settings, res.Templates = out, im.findings, im.settings, len(im.templates)
	return res, nil
}

func names(inputs []Input) string {
	var ns []string
	for _, in := range inputs {
		ns = append(ns, in.Name)
	}
	return strings.Join(ns, ", ")
}

func (im *importer) importFile(in Input) (Format, error) {
	docs, err := parseDocuments(in.Name, in.Data, 0)
	if err != nil {
		return "", err
	}
	format := im.opts.Format
	if format == FormatAuto {
		format = detect(docs)
		if format == FormatAuto {
			return "", fmt.Errorf("%s: no Kubernetes plugin configuration found: want a JCasC document with jenkins.clouds[].kubernetes, the Helm chart's values (agent:, additionalAgents:, additionalClouds:) or a list of pod templates", in.Name)
		}
	}
	before := len(im.templates)
	for _, d := range docs {
		im.scanPipelines(d.file, d.root, 0)
		switch format {
		case FormatJCasC:
			im.jcasc(d.file, d.root, 0)
		case FormatHelm:
			im.helm(d.file, d.root)
		case FormatList:
			im.list(d.file, d.root)
		}
	}
	if len(im.templates) == before {
		return "", fmt.Errorf("%s: read as %s, but no pod templates found", in.Name, format)
	}
	return format, nil
}

// detect tells the format from the documents' shape.
func detect(docs []*doc) Format {
	for _, d := range docs {
		r := resolve(d.root)
		if r == nil {
			continue
		}
		if r.Kind == yaml.SequenceNode && looksLikeTemplates(r) {
			return FormatList
		}
		if r.Kind != yaml.MappingNode {
			continue
		}
		// The chart's values: its agent keys, or only its controller (the chart then renders its
		// default agent, and controller.JCasC.configScripts may add clouds of their own).
		if lookup(r, "jenkins") == nil && (lookup(r, "agent") != nil || lookup(r, "additionalAgents") != nil || lookup(r, "additionalClouds") != nil || lookup(r, "controller") != nil) {
			return FormatHelm
		}
		if l := lookup(r, "templates"); l != nil && lookup(r, "jenkins") == nil && looksLikeTemplates(resolve(l)) {
			return FormatList
		}
	}
	for _, d := range docs {
		if hasClouds(d.file, d.root, 0) {
			return FormatJCasC
		}
	}
	return FormatAuto
}

// templateKeys are fields only the plugin's PodTemplate has.
var templateKeys = []string{"containers", "label", "yaml", "inheritFrom", "nodeUsageMode", "instanceCap", "instanceCapStr", "idleMinutes", "volumes", "workspaceVolume", "podRetention"}

func looksLikeTemplates(n *yaml.Node) bool {
	its := items(n)
	if len(its) == 0 {
		return false
	}
	for _, it := range its {
		if it.Kind != yaml.MappingNode {
			return false
		}
		found := false
		for _, k := range templateKeys {
			if lookup(it, k) != nil {
				found = true
			}
		}
		// Ours have labels: and pod:, never the plugin's label: or containers: at the top.
		if !found || lookup(it, "pod") != nil {
			return false
		}
	}
	return true
}

// hasClouds reports whether n, or YAML in a string inside it, has jenkins.clouds.
func hasClouds(file string, n *yaml.Node, depth int) bool {
	found := false
	walkStrings(file, n, depth, func(m *yaml.Node) bool {
		if j := lookup(m, "jenkins"); j != nil && lookup(j, "clouds") != nil {
			found = true
		}
		return !found
	}, nil)
	return found
}

// walkStrings calls visit for every mapping under n, including those of YAML documents written in
// string scalars (a ConfigMap's data, a Helm snapshot's rendered files), until visit says stop.
func walkStrings(file string, n *yaml.Node, depth int, visit func(m *yaml.Node) bool, report func(line int, msg string)) bool {
	count := 0
	var walk func(n *yaml.Node, depth int) bool
	walk = func(n *yaml.Node, depth int) bool {
		n = resolve(n)
		if n == nil || count > maxWalkNodes {
			return true
		}
		count++
		switch n.Kind {
		case yaml.MappingNode:
			if !visit(n) {
				return false
			}
			for _, p := range pairs(n) {
				if !walk(p[1], depth) {
					return false
				}
			}
		case yaml.SequenceNode:
			for _, c := range n.Content {
				if !walk(c, depth) {
					return false
				}
			}
		case yaml.ScalarNode:
			if depth >= maxNestingDepth || !strings.Contains(n.Value, "\n") || !strings.Contains(n.Value, "clouds") {
				return true
			}
			docs := parseNested(file, n, report)
			for _, d := range docs {
				if !walk(d.root, depth+1) {
					return false
				}
			}
		}
		return true
	}
	return walk(n, depth)
}

// jcasc imports every jenkins.clouds[].kubernetes under n.
func (im *importer) jcasc(file string, n *yaml.Node, depth int) {
	walkStrings(file, n, depth, func(m *yaml.Node) bool {
		j := lookup(m, "jenkins")
		if j == nil {
			return true
		}
		for i, c := range items(lookup(j, "clouds")) {
			k := lookup(c, "kubernetes")
			if k == nil {
				kind := "?"
				if ps := pairs(c); len(ps) > 0 {
					kind = ps[0][0].Value
				}
				im.dropf(file, c.Line, fmt.Sprintf("clouds[%d]", i), kind, "not a Kubernetes cloud; not read")
				continue
			}
			im.cloud(file, k)
		}
		return true
	}, func(line int, msg string) {
		im.dropf(file, line, "embedded YAML", "", "%s", msg)
	})
}

// list imports a plain list of templates, or a mapping with templates:.
func (im *importer) list(file string, n *yaml.Node) {
	n = resolve(n)
	if n != nil && n.Kind == yaml.MappingNode {
		o := im.obj(file, n, "file")
		n = o.get("templates")
		o.rest()
	}
	cloud := &cloudCtx{name: "templates", file: file}
	for i, t := range items(n) {
		if ot := im.template(file, t, cloud, i+1); ot != nil {
			im.templates = append(im.templates, ot)
		}
	}
}

// setting records a PROVISIONER_* line; a second, different value is reported, the first kept.
func (im *importer) setting(name, value, file string, line int, subject, field string) {
	src := fmt.Sprintf("%s:%d", file, line)
	for _, s := range im.settings {
		if s.Name != name {
			continue
		}
		if s.Value != value {
			im.dropf(file, line, subject, field, "%s is already %s (from %s); one provisioner has one value: run a second provisioner for this one", name, s.Value, s.Source)
		}
		return
	}
	im.settings = append(im.settings, SettingLine{Name: name, Value: value, Source: src})
	im.add(Setting, file, line, subject, field, "%s=%s", name, value)
}

// namespace: the plugin lets each template pick a namespace; a provisioner starts all its agents
// in one (PROVISIONER_NAMESPACE).
func (im *importer) namespace(file string, line int, subject, ns string) {
	for _, s := range im.settings {
		if s.Name == "PROVISIONER_NAMESPACE" && s.Value == ns {
			im.add(Setting, file, line, subject, "namespace", "PROVISIONER_NAMESPACE=%s: a provisioner starts all its agents in one namespace", ns)
			return
		}
	}
	im.setting("PROVISIONER_NAMESPACE", ns, file, line, subject, "namespace")
}

func quoteAtom(l string) string { return labelexpr.QuoteAtom(l) }

// parseNested parses the YAML in string scalar n. Real files carry broken YAML after the part that
// matters (the Configuration-as-Code plugin's demos hold a jobs: script SnakeYAML accepts and
// YAML 1.2 does not), so on an error the text before the failing line is read instead, and the
// rest reported.
func parseNested(file string, n *yaml.Node, report func(line int, msg string)) []*doc {
	text := n.Value
	offset := stringOffset(n)
	for attempt := 0; attempt < 3; attempt++ {
		docs, err := parseDocuments(file, []byte(text), offset)
		if err == nil {
			return docs
		}
		var line int
		if _, scanErr := fmt.Sscanf(strings.TrimPrefix(err.Error(), file+":"), "%d:", &line); scanErr != nil {
			return docs
		}
		rel := line - offset
		lines := strings.Split(text, "\n")
		if rel <= 1 || rel > len(lines) {
			return docs
		}
		// The error is reported at the line yaml.v3 noticed it; cut at the top-level key that
		// holds it, so the documents before it stay whole.
		cut := rel - 1
		for cut > 0 && (len(lines[cut]) == 0 || lines[cut][0] == ' ' || lines[cut][0] == '-' || lines[cut][0] == '\t') {
			cut--
		}
		if report != nil {
			msg := strings.TrimPrefix(err.Error(), fmt.Sprintf("%s:%d: invalid YAML: ", file, line))
			if _, rest, ok := strings.Cut(msg, ": "); ok && strings.HasPrefix(msg, "line ") {
				msg = rest
			}
			report(offset+cut+1, fmt.Sprintf("the YAML in this string is invalid from line %d on (%s); read up to this line, the rest is not carried over", line, msg))
		}
		if cut == 0 {
			return docs
		}
		text = strings.Join(lines[:cut], "\n")
	}
	return nil
}
