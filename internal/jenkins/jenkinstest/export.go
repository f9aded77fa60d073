package jenkinstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file is the emulator's copy of Stapler's export machinery (org.kohsuke.stapler.export):
// model objects are described as beans with named, ordered properties carrying a visibility, and
// one writer honours `depth`, `tree` and `pretty` the way Stapler does. Handlers never build JSON
// by hand, so every endpoint answers with the same key order, the same `_class` rules and the same
// pruning as Jenkins.

// bean is one @ExportedBean instance. class is written as `_class` when it is not empty; callers
// leave it empty where Jenkins' declared type equals the runtime type (Stapler's IF_NEEDED rule).
type bean struct {
	class string
	props []prop
}

// prop is one @Exported property. vis is Stapler's visibility (1 unless the Jenkins source says
// otherwise); inline properties do not count as a nesting level for depth pruning.
type prop struct {
	name   string
	vis    int
	inline bool
	val    any
}

// entries is an exported java.util.Map (Computer.monitorData): keys in insertion order, every
// entry written, values pruned with the map's own pruner.
type entries struct {
	keys []string
	vals []any
}

func (e *entries) add(k string, v any) {
	e.keys = append(e.keys, k)
	e.vals = append(e.vals, v)
}

// p builds a property with Stapler's default visibility.
func p(name string, val any) prop { return prop{name: name, vis: 1, val: val} }

// pv builds a property with an explicit visibility, as @Exported(visibility=N).
func pv(name string, vis int, val any) prop { return prop{name: name, vis: vis, val: val} }

// pi builds an @Exported(inline=true) property.
func pi(name string, val any) prop { return prop{name: name, vis: 1, inline: true, val: val} }

// pruner decides, per property, whether it is written and how its value is pruned in turn.
type pruner interface {
	accept(pr prop) (pruner, *rangeSpec, bool)
}

// depthPruner is Stapler's TreePruner.ByDepth: the top level starts at 1-depth, a property is shown
// when its visibility reaches the current level, and each non-inline property goes one level down.
type depthPruner struct{ n int }

func (d depthPruner) accept(pr prop) (pruner, *rangeSpec, bool) {
	if pr.vis < d.n {
		return nil, nil, false
	}
	if pr.inline {
		return d, nil, true
	}
	return depthPruner{n: d.n + 1}, nil, true
}

// treePruner is Stapler's NamedPathPruner: only named properties (or `*`) are written, whatever
// their visibility, with their own sub-tree.
type treePruner struct{ t *treeNode }

func (tp treePruner) accept(pr prop) (pruner, *rangeSpec, bool) {
	child, ok := tp.t.children[pr.name]
	if !ok {
		child, ok = tp.t.children["*"]
	}
	if !ok {
		return nil, nil, false
	}
	return treePruner{t: child}, child.rng, true
}

// treeNode is one parsed level of a `tree=` parameter.
type treeNode struct {
	children map[string]*treeNode
	rng      *rangeSpec
}

// rangeSpec is Stapler's Range `{M,N}`: elements M (inclusive) to N (exclusive).
type rangeSpec struct {
	min, max int // max < 0 means no upper bound
}

func (r *rangeSpec) apply(n int) (int, int) {
	lo, hi := r.min, n
	if r.max >= 0 && r.max < hi {
		hi = r.max
	}
	if lo > n {
		lo = n
	}
	if hi < lo {
		hi = lo
	}
	return lo, hi
}

// parseTree parses Stapler's tree syntax: `a,b[c,d[e]]{0,10},*`. An error names the offset, as a
// client that sends a broken tree should be told where.
func parseTree(s string) (*treeNode, error) {
	t := &treeParser{s: s}
	root, err := t.list()
	if err != nil {
		return nil, err
	}
	if t.i != len(t.s) {
		return nil, fmt.Errorf("tree %q: unexpected %q at offset %d", s, t.s[t.i], t.i)
	}
	return root, nil
}

type treeParser struct {
	s string
	i int
}

func (t *treeParser) list() (*treeNode, error) {
	n := &treeNode{children: map[string]*treeNode{}}
	for {
		start := t.i
		for t.i < len(t.s) && !strings.ContainsRune("[]{},", rune(t.s[t.i])) {
			t.i++
		}
		name := strings.TrimSpace(t.s[start:t.i])
		if name == "" {
			return nil, fmt.Errorf("tree %q: property name expected at offset %d", t.s, start)
		}
		child := &treeNode{children: map[string]*treeNode{}}
		if t.i < len(t.s) && t.s[t.i] == '[' {
			t.i++
			sub, err := t.list()
			if err != nil {
				return nil, err
			}
			if t.i >= len(t.s) || t.s[t.i] != ']' {
				return nil, fmt.Errorf("tree %q: ']' expected at offset %d", t.s, t.i)
			}
			t.i++
			child = sub
		}
		if t.i < len(t.s) && t.s[t.i] == '{' {
			r, err := t.rangeSpec()
			if err != nil {
				return nil, err
			}
			child.rng = r
		}
		n.children[name] = child
		if t.i < len(t.s) && t.s[t.i] == ',' {
			t.i++
			continue
		}
		return n, nil
	}
}

func (t *treeParser) rangeSpec() (*rangeSpec, error) {
	start := t.i
	end := strings.IndexByte(t.s[t.i:], '}')
	if end < 0 {
		return nil, fmt.Errorf("tree %q: '}' expected after offset %d", t.s, start)
	}
	body := t.s[t.i+1 : t.i+end]
	t.i += end + 1
	num := func(v string) (int, error) {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return 0, fmt.Errorf("tree %q: bad range %q at offset %d", t.s, body, start)
		}
		return n, nil
	}
	lo, hi, comma := strings.Cut(body, ",")
	r := &rangeSpec{max: -1}
	if strings.TrimSpace(lo) != "" {
		v, err := num(lo)
		if err != nil {
			return nil, err
		}
		r.min = v
	}
	switch {
	case !comma: // {N}: the single element N
		if strings.TrimSpace(lo) == "" {
			return nil, fmt.Errorf("tree %q: empty range at offset %d", t.s, start)
		}
		r.max = r.min + 1
	case strings.TrimSpace(hi) != "":
		v, err := num(hi)
		if err != nil {
			return nil, err
		}
		r.max = v
	}
	return r, nil
}

// exportOpts are the query parameters of an /api/json request.
type exportOpts struct {
	tree   *treeNode
	depth  int
	pretty bool
}

// render writes a bean as Jenkins' /api/json would.
func render(b *bean, o exportOpts) []byte {
	var pr pruner = depthPruner{n: 1 - o.depth}
	if o.tree != nil {
		pr = treePruner{t: o.tree}
	}
	w := &jsonWriter{pretty: o.pretty}
	w.object(b, pr, 0, true)
	return w.buf.Bytes()
}

type jsonWriter struct {
	buf    bytes.Buffer
	pretty bool
}

// Pretty output mirrors Stapler's JSONDataWriter with indentation: `"k" : v`, two spaces per
// level, and an empty container still gets one (blank) indented line.
func (w *jsonWriter) nl(level int) {
	if w.pretty {
		w.buf.WriteByte('\n')
		w.buf.WriteString(strings.Repeat("  ", level))
	}
}

func (w *jsonWriter) key(k string) {
	w.str(k)
	if w.pretty {
		w.buf.WriteString(" : ")
	} else {
		w.buf.WriteByte(':')
	}
}

func (w *jsonWriter) str(s string) {
	// Nearly every string the emulator writes needs no escaping; writing those directly instead of
	// through an encoder per string took most of the allocations out of a large answer.
	if plainJSON(s) {
		w.buf.WriteByte('"')
		w.buf.WriteString(s)
		w.buf.WriteByte('"')
		return
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // encoding a string cannot fail
	w.buf.Write(bytes.TrimRight(b.Bytes(), "\n"))
}

// plainJSON reports whether encoding/json (HTML escaping off) writes s unchanged between quotes:
// no quote, backslash or control character, valid UTF-8, and neither U+2028 nor U+2029, which it
// escapes for JavaScript's sake.
func plainJSON(s string) bool {
	ascii := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' {
			return false
		}
		if c >= 0x80 {
			ascii = false
		}
	}
	return ascii || (utf8.ValidString(s) && !strings.Contains(s, "\u2028") && !strings.Contains(s, "\u2029"))
}

func (w *jsonWriter) object(b *bean, pr pruner, level int, top bool) {
	w.buf.WriteByte('{')
	n := 0
	sep := func() {
		if n > 0 {
			w.buf.WriteByte(',')
		}
		w.nl(level + 1)
		n++
	}
	if b.class != "" || top {
		sep()
		w.key("_class")
		w.str(b.class)
	}
	for _, pr2 := range b.props {
		child, rng, ok := pr.accept(pr2)
		if !ok {
			continue
		}
		sep()
		w.key(pr2.name)
		w.value(pr2.val, child, rng, level+1)
	}
	if n == 0 {
		w.nl(level + 1)
	}
	w.nl(level)
	w.buf.WriteByte('}')
}

func (w *jsonWriter) value(v any, pr pruner, rng *rangeSpec, level int) {
	switch x := v.(type) {
	case nil:
		w.buf.WriteString("null")
	case func() any:
		// Lazy values let beans refer to each other (node -> label -> node) without being built
		// unless the pruner asks for them.
		w.value(x(), pr, rng, level)
	case *bean:
		if x == nil {
			w.buf.WriteString("null")
			return
		}
		w.object(x, pr, level, false)
	case *entries:
		w.buf.WriteByte('{')
		for i, k := range x.keys {
			if i > 0 {
				w.buf.WriteByte(',')
			}
			w.nl(level + 1)
			w.key(k)
			w.value(x.vals[i], pr, nil, level+1)
		}
		if len(x.keys) == 0 {
			w.nl(level + 1)
		}
		w.nl(level)
		w.buf.WriteByte('}')
	case []any:
		lo, hi := 0, len(x)
		if rng != nil {
			lo, hi = rng.apply(len(x))
		}
		w.buf.WriteByte('[')
		for i := lo; i < hi; i++ {
			if i > lo {
				w.buf.WriteByte(',')
			}
			w.nl(level + 1)
			w.value(x[i], pr, nil, level+1)
		}
		if hi == lo {
			w.nl(level + 1)
		}
		w.nl(level)
		w.buf.WriteByte(']')
	case string:
		w.str(x)
	case *string:
		if x == nil {
			w.buf.WriteString("null")
		} else {
			w.str(*x)
		}
	case bool:
		w.buf.WriteString(strconv.FormatBool(x))
	case int:
		w.buf.WriteString(strconv.Itoa(x))
	case int64:
		w.buf.WriteString(strconv.FormatInt(x, 10))
	case float64:
		w.buf.WriteString(strconv.FormatFloat(x, 'f', -1, 64))
	default:
		panic(fmt.Sprintf("jenkinstest: cannot export %T", v)) // a programming error in this package
	}
}

// strp is a nullable exported string (Java String that may be null).
func strp(s string) *string { return &s }
