package pluginimport

import (
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Reading the plugin's scalar fields as its classes do: booleans, numbers, the nodeSelector format,
// key/value lists and the pod retention.

func (im *importer) boolean(file string, line int, subject, field, v string) (bool, bool) {
	b, err := strconv.ParseBool(strings.ToLower(strings.TrimSpace(v)))
	if err != nil {
		im.dropf(file, line, subject, field, "%q is not true or false; not carried over", v)
		return false, false
	}
	return b, true
}

func (im *importer) int64Field(file string, line int, subject, field, v string) *int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		im.dropf(file, line, subject, field, "%q is not a number; not carried over", v)
		return nil
	}
	return &n
}

// nodeSelector parses "k=v,k2=v2" as PodTemplateBuilder.getNodeSelectorMap does: pairs that are
// not exactly key=value are left out (the plugin logs and ignores them; here they are reported).
func (im *importer) nodeSelector(file string, line int, subject, v string) map[string]string {
	out := map[string]string{}
	for _, sel := range strings.Split(v, ",") {
		parts := strings.Split(strings.TrimSpace(sel), "=")
		if len(parts) == 2 && parts[0] != "" && parts[1] != "" {
			out[parts[0]] = parts[1]
			continue
		}
		im.dropf(file, line, subject, "nodeSelector", "%q is not key=value; left out, as the plugin ignores it", sel)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// keyValues reads the plugin's lists of {key, value} (PodAnnotation, PodLabel), or a plain map.
func (im *importer) keyValues(file string, n *yaml.Node, subject, field string) map[string]string {
	n = resolve(n)
	if n == nil {
		return nil
	}
	out := map[string]string{}
	if n.Kind == yaml.MappingNode {
		for _, p := range pairs(n) {
			out[p[0].Value] = p[1].Value
		}
		return out
	}
	for _, it := range items(n) {
		// A list item may be wrapped in its symbol (podAnnotation:, podLabel:).
		if inner := lookup(it, "podAnnotation"); inner != nil {
			it = inner
		} else if inner := lookup(it, "podLabel"); inner != nil {
			it = inner
		}
		o := im.obj(file, it, subject+": "+field)
		k, _ := o.str("key")
		v, _ := o.str("value")
		o.rest()
		if k == "" {
			im.dropf(file, it.Line, subject, field, "an entry without a key; not carried over")
			continue
		}
		out[k] = v
	}
	return out
}

func (im *importer) retention(o *obj, t *outTemplate, subject string) {
	n := o.get("podRetention")
	if n == nil {
		return
	}
	val := n.Value
	if n.Kind == yaml.MappingNode && len(n.Content) >= 2 { // {never: {}}, as JCasC may export it
		val = n.Content[0].Value
	}
	switch r := strings.ToLower(strings.TrimSpace(val)); r {
	case "never", "":
		t.podRetention = "never"
	case "always":
		t.podRetention = "always"
	case "onfailure":
		t.podRetention = "onFailure"
	case "evicted":
		t.podRetention = "onFailure"
		im.changef(o.file, o.line("podRetention"), subject, "podRetention", "Evicted (keep evicted pods) has no exact equivalent; onFailure keeps failed pods, evicted ones included")
	case "default":
		t.podRetention = t.cloud.retention // Default: the cloud's podRetention
	default:
		im.dropf(o.file, o.line("podRetention"), subject, "podRetention", "%q is not never, onFailure, always, evicted or default; not carried over", val)
	}
}
