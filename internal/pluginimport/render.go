package pluginimport

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
)

// render writes the templates file: settings as comments first, then one template per entry,
// each with a comment naming where it came from.
func (im *importer) render() ([]byte, error) {
	var head strings.Builder
	head.WriteString("Imported from the Jenkins Kubernetes plugin's configuration by `provisioner templates import`.\n")
	head.WriteString("Check it with `provisioner templates check --file FILE`; see the import report for what was not carried over.")
	if len(im.settings) > 0 {
		head.WriteString("\n\nSettings from the clouds, for provisioner.env (or the chart's settings: values):")
		for _, s := range im.settings {
			fmt.Fprintf(&head, "\n  %s=%s    (from %s)", s.Name, s.Value, s.Source)
		}
	}
	list := &yaml.Node{Kind: yaml.SequenceNode}
	for _, t := range im.templates {
		n, err := im.templateNode(t)
		if err != nil {
			return nil, err
		}
		list.Content = append(list.Content, n)
	}
	root := &yaml.Node{Kind: yaml.MappingNode, HeadComment: head.String()}
	root.Content = []*yaml.Node{str("templates"), list}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}); err != nil {
		return nil, fmt.Errorf("write templates: %w", err)
	}
	return buf.Bytes(), nil
}

func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func num(n int64) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(n, 10)}
}

func flowList(vs []string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, v := range vs {
		n.Content = append(n.Content, str(v))
	}
	return n
}

func (im *importer) templateNode(t *outTemplate) (*yaml.Node, error) {
	m := &yaml.Node{Kind: yaml.MappingNode}
	m.HeadComment = fmt.Sprintf("%s:%d: %s, cloud %s", t.file, t.line, t.subject(), t.cloud.name)
	add := func(k string, v *yaml.Node) { m.Content = append(m.Content, str(k), v) }
	add("name", str(t.name))
	if len(t.labels) > 0 {
		add("labels", flowList(t.labels))
	}
	if len(t.inheritFrom) > 0 {
		add("inheritFrom", flowList(t.inheritFrom))
	}
	add("mode", str(t.mode))
	if t.maxAgents > 0 {
		add("maxAgents", num(int64(t.maxAgents)))
	}
	if t.connectTimeout != "" {
		add("connectTimeout", str(t.connectTimeout))
	}
	if t.activeDeadline > 0 {
		add("activeDeadlineSeconds", num(t.activeDeadline))
	}
	if t.podRetention != "" {
		add("podRetention", str(t.podRetention))
	}
	if t.workspace != nil {
		n, err := toNode(t.workspace)
		if err != nil {
			return nil, err
		}
		add("workspace", n)
	}
	if t.webSocket != nil && *t.webSocket {
		a := &yaml.Node{Kind: yaml.MappingNode}
		a.Content = []*yaml.Node{str("webSocket"), {Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"}}
		add("agent", a)
	}
	pod := &t.pod
	if t.yamlPod != nil {
		merged, err := mergePods(t.yamlPod, &t.pod)
		if err != nil {
			im.dropf(t.file, t.yamlLine, t.subject(), "yaml", "cannot merge with the template's fields (%v); the yaml is not carried over", err)
		} else {
			pod = merged
		}
	}
	if pn, err := podNode(pod); err != nil {
		return nil, err
	} else if pn != nil {
		add("pod", pn)
	}
	return m, nil
}

// podNode writes a PodTemplateSpec as users write it: no nulls, no empty metadata or resources.
func podNode(p *corev1.PodTemplateSpec) (*yaml.Node, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	v = prune(v, "")
	if m, ok := v.(map[string]any); !ok || len(m) == 0 {
		return nil, nil
	}
	return toNode(v)
}

// prune drops nulls, and the empty objects JSON gives types that are never empty on purpose.
func prune(v any, key string) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if e == nil {
				delete(x, k)
				continue
			}
			x[k] = prune(e, k)
			if m, ok := x[k].(map[string]any); ok && len(m) == 0 && (k == "metadata" || k == "resources" || k == "securityContext" || k == "spec") {
				delete(x, k)
			}
		}
		if key == "metadata" {
			delete(x, "creationTimestamp")
		}
		return x
	case []any:
		for i := range x {
			x[i] = prune(x[i], key)
		}
		return x
	}
	return v
}

// toNode turns decoded JSON into YAML nodes in block style with keys in a stable order: the
// order Kubernetes' documentation uses for the common fields first, the rest sorted.
func toNode(v any) (*yaml.Node, error) {
	switch x := v.(type) {
	case map[string]any:
		n := &yaml.Node{Kind: yaml.MappingNode}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			ri, rj := keyRank(keys[i]), keyRank(keys[j])
			if ri != rj {
				return ri < rj
			}
			return keys[i] < keys[j]
		})
		for _, k := range keys {
			c, err := toNode(x[k])
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, str(k), c)
		}
		return n, nil
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode}
		for _, e := range x {
			c, err := toNode(e)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, c)
		}
		return n, nil
	case string:
		return str(x), nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(x)}, nil
	case float64:
		if x == float64(int64(x)) {
			return num(int64(x)), nil
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: strconv.FormatFloat(x, 'g', -1, 64)}, nil
	}
	return nil, fmt.Errorf("write templates: unexpected value %T", v)
}

var keyOrder = []string{"name", "metadata", "spec", "image", "imagePullPolicy", "command", "args", "workingDir", "tty", "securityContext", "ports", "env", "resources", "volumeMounts", "livenessProbe", "labels", "annotations", "containers", "volumes"}

func keyRank(k string) int {
	for i, o := range keyOrder {
		if o == k {
			return i
		}
	}
	return len(keyOrder)
}
