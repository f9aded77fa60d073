package pluginimport

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Bounds on what one import reads: configuration files are small, and a nested string of YAML
// inside a string of YAML is as deep as real files go (the Helm chart's unit-test snapshots).
const (
	maxInputBytes   = 8 << 20
	maxNestingDepth = 4
	maxDocuments    = 1000
	maxWalkNodes    = 1 << 20
)

// doc is one parsed YAML document with every node's Line made absolute in its file.
type doc struct {
	file string
	root *yaml.Node
}

// parseDocuments reads every YAML document of data; lineOffset is added to every node's line, so
// that YAML found inside a string scalar reports lines of the file that holds it.
func parseDocuments(file string, data []byte, lineOffset int) ([]*doc, error) {
	if len(data) > maxInputBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", file, maxInputBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*doc
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return docs, fmt.Errorf("%s:%d: invalid YAML: %s", file, lineOffset+yamlErrorLine(err), strings.TrimPrefix(err.Error(), "yaml: "))
		}
		if len(docs) >= maxDocuments {
			return docs, fmt.Errorf("%s: more than %d YAML documents", file, maxDocuments)
		}
		if lineOffset != 0 {
			shiftLines(&n, lineOffset)
		}
		root := &n
		if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
			root = root.Content[0]
		}
		docs = append(docs, &doc{file: file, root: root})
	}
	return docs, nil
}

func yamlErrorLine(err error) int {
	var line int
	if _, scanErr := fmt.Sscanf(err.Error(), "yaml: line %d:", &line); scanErr == nil {
		return line
	}
	return 1
}

func shiftLines(n *yaml.Node, by int) {
	seen := 0
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil || seen > maxWalkNodes {
			return
		}
		seen++
		n.Line += by
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
}

// stringOffset is the line offset of YAML written inside the string scalar n: a block scalar's
// content starts on the line after its indicator; a quoted or plain scalar's on its own line.
func stringOffset(n *yaml.Node) int {
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return n.Line
	}
	return n.Line - 1
}

// resolve follows aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// pairs lists a mapping's key/value pairs, with merge keys (<<) expanded the way YAML defines
// them: the mapping's own keys win over merged ones.
func pairs(n *yaml.Node) [][2]*yaml.Node {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var own, merged [][2]*yaml.Node
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		if k.Tag == "!!merge" || k.Value == "<<" && k.Style == 0 {
			srcs := []*yaml.Node{v}
			if v != nil && v.Kind == yaml.SequenceNode {
				srcs = v.Content
			}
			for _, s := range srcs {
				merged = append(merged, pairs(s)...)
			}
			continue
		}
		own = append(own, [2]*yaml.Node{k, v})
		seen[k.Value] = true
	}
	for _, p := range merged {
		if !seen[p[0].Value] {
			own = append(own, p)
			seen[p[0].Value] = true
		}
	}
	return own
}

func lookup(n *yaml.Node, key string) *yaml.Node {
	for _, p := range pairs(n) {
		if p[0].Value == key {
			return p[1]
		}
	}
	return nil
}

func items(n *yaml.Node) []*yaml.Node {
	n = resolve(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	out := make([]*yaml.Node, 0, len(n.Content))
	for _, c := range n.Content {
		out = append(out, resolve(c))
	}
	return out
}

func kindName(n *yaml.Node) string {
	n = resolve(n)
	switch {
	case n == nil || isNull(n):
		return "null"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	default:
		return "a scalar"
	}
}

// obj reads one mapping of the plugin's configuration and remembers which keys were read, so
// that every key nobody read is reported instead of being lost.
type obj struct {
	im   *importer
	file string
	n    *yaml.Node
	what string // "template maven", "cloud kubernetes", for messages
	used map[string]bool
	keys map[string][2]*yaml.Node
	list [][2]*yaml.Node
	// parent is the mapping a Helm additional agent falls back to.
	parent *obj
	done   bool // rest() reported already
	// helmOverlay: an additionalClouds agent: overlay, whose cloud-level keys the default agent
	// reports.
	helmOverlay bool
}

func (im *importer) obj(file string, n *yaml.Node, what string) *obj {
	o := &obj{im: im, file: file, n: n, what: what, used: map[string]bool{}, keys: map[string][2]*yaml.Node{}}
	o.list = pairs(n)
	for _, p := range o.list {
		o.keys[p[0].Value] = p
	}
	return o
}

// get returns the value of key (nil when absent or null) and marks the key read.
func (o *obj) get(key string) *yaml.Node {
	p, ok := o.keys[key]
	if !ok {
		return nil
	}
	o.used[key] = true
	if isNull(p[1]) {
		return nil
	}
	return p[1]
}

func (o *obj) has(key string) bool {
	_, ok := o.keys[key]
	return ok && !isNull(o.keys[key][1])
}

// line is the line of key, else of the mapping.
func (o *obj) line(key string) int {
	if p, ok := o.keys[key]; ok {
		return p[0].Line
	}
	if o.n != nil {
		return o.n.Line
	}
	return 1
}

// str reads a scalar as text; a mapping or list where text is expected is reported.
func (o *obj) str(key string) (string, bool) {
	v := o.get(key)
	if v == nil {
		return "", false
	}
	if v.Kind != yaml.ScalarNode {
		o.im.dropf(o.file, o.line(key), o.what, key, "expected a scalar, got %s", kindName(v))
		return "", false
	}
	if name, ok := cascVariable(v.Value); ok {
		o.im.changef(o.file, o.line(key), o.what, key, "${%s} is a JCasC variable, which Jenkins resolves from its environment or secrets when it loads the file; left as written: put in its value", name)
	}
	// JCasC writes a literal "${" as "^${".
	return strings.ReplaceAll(v.Value, "^${", "${"), true
}

// cascVariable finds an unescaped ${NAME} other than the plugin's own ${computer.*}, which the
// plugin substitutes per agent (and the import handles where it matters).
func cascVariable(s string) (string, bool) {
	for i := 0; i+1 < len(s); i++ {
		if s[i] != '$' || s[i+1] != '{' || (i > 0 && s[i-1] == '^') {
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", false
		}
		name := s[i+2 : i+end]
		if !strings.HasPrefix(name, "computer.") {
			return name, true
		}
	}
	return "", false
}

// drop marks key read and reports it as not carried over, when it is present.
func (o *obj) drop(key, format string, args ...any) {
	if _, ok := o.keys[key]; !ok || o.used[key] {
		return
	}
	o.used[key] = true
	o.im.dropf(o.file, o.line(key), o.what, key, format, args...)
}

// rest reports every key nobody read.
func (o *obj) rest() {
	if o.done {
		return
	}
	o.done = true
	for _, p := range o.list {
		if !o.used[p[0].Value] {
			o.im.dropf(o.file, p[0].Line, o.what, p[0].Value, "not a field the importer knows; not carried over")
		}
	}
}

// path looks a dotted path up in the mapping, marking the first key read.
func (o *obj) path(p string) *yaml.Node {
	parts := strings.Split(p, ".")
	v := o.get(parts[0])
	for _, k := range parts[1:] {
		if v == nil {
			return nil
		}
		v = lookup(v, k)
	}
	if isNull(v) {
		return nil
	}
	return v
}

func (o *obj) mark(key string) {
	if _, ok := o.keys[key]; ok {
		o.used[key] = true
	}
}
