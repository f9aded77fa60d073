package podtemplate

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// The template file is decoded by walking the YAML node tree against the Go types (their json tags,
// as Kubernetes' own decoding uses them) instead of going through sigs.k8s.io/yaml: that route turns
// YAML into JSON first and loses every line number, and its type errors drop list indexes, so an
// administrator would get "cannot unmarshal number into ... containers.name" without knowing which
// container of which template on which line. Here every error carries the file line and the full
// field path, and the rules are Kubernetes' strict ones: unknown fields, duplicate keys and wrong
// scalar types are errors, field names are case-sensitive. Types with their own JSON decoding
// (resource.Quantity, intstr.IntOrString, durations) get the JSON of their node, so they accept
// exactly what the apiserver accepts.

// fieldError is one problem at one place in one file.
type fieldError struct {
	File string
	Line int
	Path string
	Msg  string
}

func (e *fieldError) Error() string {
	switch {
	case e.Path == "":
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	case e.Line == 0:
		return fmt.Sprintf("%s: %s: %s", e.File, e.Path, e.Msg)
	default:
		return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Path, e.Msg)
	}
}

type decoder struct {
	file string
	// steps counts nodes visited, aliases expanded each time: a few aliases can stand for a
	// billion nodes ("billion laughs"), so decoding stops past maxDecodeSteps.
	steps int
	// expanding holds the anchored nodes whose alias is being expanded, to refuse an alias inside
	// its own anchor, which would recurse forever.
	expanding map[*yaml.Node]bool
}

// maxDecodeSteps is far above any real template file (a hundred templates are some ten thousand
// nodes) and low enough to stop alias bombs in well under a second.
const maxDecodeSteps = 500_000

// enter follows n if it is an alias and counts the visit; leave must be called when the node's
// decoding is done.
func (d *decoder) enter(n *yaml.Node, path string) (node *yaml.Node, leave func(), err error) {
	d.steps++
	if d.steps > maxDecodeSteps {
		return nil, nil, d.errorf(n, path, "document too large: more than %d nodes after expanding aliases", maxDecodeSteps)
	}
	if n.Kind != yaml.AliasNode {
		return n, func() {}, nil
	}
	target := resolve(n)
	if d.expanding == nil {
		d.expanding = map[*yaml.Node]bool{}
	}
	if d.expanding[target] {
		return nil, nil, d.errorf(n, path, "alias *%s refers to a node that contains it", n.Value)
	}
	d.expanding[target] = true
	return target, func() { delete(d.expanding, target) }, nil
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) *fieldError {
	return &fieldError{File: d.file, Line: n.Line, Path: path, Msg: fmt.Sprintf(format, args...)}
}

var jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// resolve follows aliases so that anchors work as YAML users expect.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// mappingPairs returns the key/value pairs of a mapping with YAML merge keys (<<) expanded, explicit
// keys winning over merged ones, and rejects duplicate keys (which sigs.k8s.io/yaml also rejects).
func (d *decoder) mappingPairs(n *yaml.Node, path string) ([][2]*yaml.Node, error) {
	var explicit, merged [][2]*yaml.Node
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, d.errorf(k, path, "mapping keys must be strings")
		}
		if k.Tag == "!!merge" {
			pairs, err := d.mergeSources(v, path)
			if err != nil {
				return nil, err
			}
			merged = append(merged, pairs...)
			continue
		}
		if prev, dup := seen[k.Value]; dup {
			return nil, d.errorf(k, joinPath(path, k.Value), "duplicate key (first at line %d)", prev.Line)
		}
		seen[k.Value] = k
		explicit = append(explicit, [2]*yaml.Node{k, v})
	}
	for _, p := range merged {
		if _, ok := seen[p[0].Value]; !ok {
			seen[p[0].Value] = p[0]
			explicit = append(explicit, p)
		}
	}
	return explicit, nil
}

// mergeSources returns the pairs a merge key's value (a mapping or a list of mappings) brings in.
func (d *decoder) mergeSources(v *yaml.Node, path string) ([][2]*yaml.Node, error) {
	v, leave, err := d.enter(v, path)
	if err != nil {
		return nil, err
	}
	defer leave()
	var sources []*yaml.Node
	switch v.Kind {
	case yaml.MappingNode:
		sources = []*yaml.Node{v}
	case yaml.SequenceNode:
		sources = v.Content
	default:
		return nil, d.errorf(v, path, "a merge key (<<) must refer to a mapping")
	}
	var out [][2]*yaml.Node
	for _, src := range sources {
		if src == v {
			pairs, err := d.mappingPairs(v, path)
			if err != nil {
				return nil, err
			}
			out = append(out, pairs...)
			continue
		}
		s, leaveSrc, err := d.enter(src, path)
		if err != nil {
			return nil, err
		}
		if s.Kind != yaml.MappingNode {
			leaveSrc()
			return nil, d.errorf(s, path, "a merge key (<<) must refer to a mapping")
		}
		pairs, err := d.mappingPairs(s, path)
		leaveSrc()
		if err != nil {
			return nil, err
		}
		out = append(out, pairs...)
	}
	return out, nil
}

func joinPath(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.Tag {
	case "!!str":
		return fmt.Sprintf("string %q", n.Value)
	case "!!int":
		return "number " + n.Value
	case "!!float":
		return "number " + n.Value
	case "!!bool":
		return "boolean " + n.Value
	case "!!null":
		return "null"
	}
	return fmt.Sprintf("%s %q", n.Tag, n.Value)
}

// decode stores node n into v (a settable value), following the json tags of v's type.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) error {
	n, leave, err := d.enter(n, path)
	if err != nil {
		return err
	}
	defer leave()
	if isNull(n) {
		// JSON null leaves a value at its zero, as encoding/json does.
		v.Set(reflect.Zero(v.Type()))
		return nil
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return d.decode(n, v.Elem(), path)
	}
	if reflect.PointerTo(v.Type()).Implements(jsonUnmarshalerType) {
		return d.decodeViaJSON(n, v, path)
	}
	switch v.Kind() {
	case reflect.Struct:
		return d.decodeStruct(n, v, path)
	case reflect.Map:
		return d.decodeMap(n, v, path)
	case reflect.Slice:
		return d.decodeSlice(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
			return d.errorf(n, path, "expected a string, got %s (quote it)", kindName(n))
		}
		v.SetString(n.Value)
		return nil
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			return d.errorf(n, path, "expected true or false, got %s", kindName(n))
		}
		b, err := strconv.ParseBool(n.Value)
		if err != nil {
			return d.errorf(n, path, "expected true or false, got %q", n.Value)
		}
		v.SetBool(b)
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var i int64
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&i) != nil {
			return d.errorf(n, path, "expected an integer, got %s", kindName(n))
		}
		if v.OverflowInt(i) {
			return d.errorf(n, path, "integer %s out of range", n.Value)
		}
		v.SetInt(i)
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		var i uint64
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&i) != nil {
			return d.errorf(n, path, "expected a non-negative integer, got %s", kindName(n))
		}
		if v.OverflowUint(i) {
			return d.errorf(n, path, "integer %s out of range", n.Value)
		}
		v.SetUint(i)
		return nil
	case reflect.Float32, reflect.Float64:
		var f float64
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&f) != nil ||
			math.IsInf(f, 0) || math.IsNaN(f) {
			return d.errorf(n, path, "expected a number, got %s", kindName(n))
		}
		v.SetFloat(f)
		return nil
	case reflect.Interface:
		j, err := d.toJSONValue(n, path)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(j))
		return nil
	}
	return d.errorf(n, path, "cannot decode into %s", v.Type())
}

func (d *decoder) decodeViaJSON(n *yaml.Node, v reflect.Value, path string) error {
	j, err := d.toJSONValue(n, path)
	if err != nil {
		return err
	}
	data, err := json.Marshal(j)
	if err != nil {
		return d.errorf(n, path, "%v", err)
	}
	if err := v.Addr().Interface().(json.Unmarshaler).UnmarshalJSON(data); err != nil {
		return d.errorf(n, path, "invalid value %s: %v", strings.TrimSpace(string(data)), err)
	}
	return nil
}

// structField is one JSON-visible field of a struct, with the index path through inlined structs.
type structField struct {
	name  string
	index []int
}

func jsonFields(t reflect.Type) []structField {
	var out []structField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		inline := strings.Contains(","+opts+",", ",inline,") || (f.Anonymous && name == "")
		if inline {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for _, sub := range jsonFields(ft) {
					out = append(out, structField{name: sub.name, index: append([]int{i}, sub.index...)})
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, structField{name: name, index: []int{i}})
	}
	return out
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.MappingNode {
		return d.errorf(n, path, "expected a mapping, got %s", kindName(n))
	}
	fields := jsonFields(v.Type())
	byName := make(map[string]structField, len(fields))
	for _, f := range fields {
		byName[f.name] = f
	}
	pairs, err := d.mappingPairs(n, path)
	if err != nil {
		return err
	}
	for _, p := range pairs {
		key := p[0].Value
		f, ok := byName[key]
		if !ok {
			msg := fmt.Sprintf("unknown field %q", key)
			for name := range byName {
				if strings.EqualFold(name, key) {
					msg += fmt.Sprintf(" (did you mean %q?)", name)
					break
				}
			}
			return &fieldError{File: d.file, Line: p[0].Line, Path: joinPath(path, key), Msg: msg}
		}
		if err := d.decode(p[1], fieldByIndexAlloc(v, f.index), joinPath(path, key)); err != nil {
			return err
		}
	}
	return nil
}

// fieldByIndexAlloc is reflect.Value.FieldByIndex that allocates nil embedded pointers on the way.
func fieldByIndexAlloc(v reflect.Value, index []int) reflect.Value {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.MappingNode {
		return d.errorf(n, path, "expected a mapping, got %s", kindName(n))
	}
	if v.Type().Key().Kind() != reflect.String {
		return d.errorf(n, path, "cannot decode into %s", v.Type())
	}
	pairs, err := d.mappingPairs(n, path)
	if err != nil {
		return err
	}
	m := reflect.MakeMapWithSize(v.Type(), len(pairs))
	for _, p := range pairs {
		elem := reflect.New(v.Type().Elem()).Elem()
		if err := d.decode(p[1], elem, joinPath(path, p[0].Value)); err != nil {
			return err
		}
		m.SetMapIndex(reflect.ValueOf(p[0].Value).Convert(v.Type().Key()), elem)
	}
	v.Set(m)
	return nil
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) error {
	if v.Type().Elem().Kind() == reflect.Uint8 {
		// []byte is base64 text in JSON; no template field has one, so refuse rather than guess.
		return d.errorf(n, path, "binary fields are not supported in templates")
	}
	if n.Kind != yaml.SequenceNode {
		return d.errorf(n, path, "expected a list, got %s", kindName(n))
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		if err := d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return err
		}
	}
	v.Set(s)
	return nil
}

// toJSONValue converts a node into the value encoding/json would produce from the same document
// converted by sigs.k8s.io/yaml; the pod part of a template is kept in this form so inheritance can
// strategic-merge exactly the fields the user wrote.
func (d *decoder) toJSONValue(n *yaml.Node, path string) (any, error) {
	n, leave, err := d.enter(n, path)
	if err != nil {
		return nil, err
	}
	defer leave()
	switch n.Kind {
	case yaml.MappingNode:
		pairs, err := d.mappingPairs(n, path)
		if err != nil {
			return nil, err
		}
		m := make(map[string]any, len(pairs))
		for _, p := range pairs {
			val, err := d.toJSONValue(p[1], joinPath(path, p[0].Value))
			if err != nil {
				return nil, err
			}
			m[p[0].Value] = val
		}
		return m, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for i, item := range n.Content {
			val, err := d.toJSONValue(item, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out = append(out, val)
		}
		return out, nil
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil, nil
		case "!!str":
			return n.Value, nil
		case "!!bool":
			b, err := strconv.ParseBool(n.Value)
			if err != nil {
				return nil, d.errorf(n, path, "invalid boolean %q", n.Value)
			}
			return b, nil
		case "!!int":
			var i int64
			if err := n.Decode(&i); err != nil {
				return nil, d.errorf(n, path, "invalid integer %q", n.Value)
			}
			return json.Number(strconv.FormatInt(i, 10)), nil
		case "!!float":
			var f float64
			if err := n.Decode(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, d.errorf(n, path, "invalid number %q", n.Value)
			}
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
		}
		return nil, d.errorf(n, path, "unsupported YAML tag %s", n.Tag)
	}
	return nil, d.errorf(n, path, "unsupported YAML node")
}

// locate finds the line of path (as built by joinPath and [i]) below n, or of the deepest part of
// it that exists, so that errors found after decoding still point at a line.
func locate(n *yaml.Node, path string) int {
	n = resolve(n)
	line := n.Line
	for _, part := range splitPath(path) {
		switch {
		case part.index >= 0:
			if n.Kind != yaml.SequenceNode || part.index >= len(n.Content) {
				return line
			}
			n = resolve(n.Content[part.index])
		default:
			if n.Kind != yaml.MappingNode {
				return line
			}
			var next *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if k := resolve(n.Content[i]); k.Value == part.key {
					next = resolve(n.Content[i+1])
					line = k.Line
				}
			}
			if next == nil {
				return line
			}
			n = next
			if n.Kind == yaml.ScalarNode {
				line = n.Line
			}
			continue
		}
		line = n.Line
	}
	return line
}

type pathPart struct {
	key   string
	index int // -1 for a key
}

func splitPath(path string) []pathPart {
	var out []pathPart
	for _, seg := range strings.Split(path, ".") {
		if seg == "" {
			continue
		}
		key, rest, _ := strings.Cut(seg, "[")
		if key != "" {
			out = append(out, pathPart{key: key, index: -1})
		}
		for rest != "" {
			num, after, _ := strings.Cut(rest, "]")
			i, err := strconv.Atoi(num)
			if err != nil {
				break
			}
			out = append(out, pathPart{index: i})
			rest = strings.TrimPrefix(after, "[")
		}
	}
	return out
}

// sortErrors orders errors by file and line so a report reads top to bottom.
func sortErrors(errs []*fieldError) {
	sort.SliceStable(errs, func(i, j int) bool {
		if errs[i].File != errs[j].File {
			return errs[i].File < errs[j].File
		}
		return errs[i].Line < errs[j].Line
	})
}
