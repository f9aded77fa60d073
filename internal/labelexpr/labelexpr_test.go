package labelexpr

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"linux", "linux"},
		{"linux && docker", "linux&&docker"},
		{"  linux\t&&\tdocker  ", "linux&&docker"},
		{"a || b && c", "a||b&&c"},
		{"(a || b) && c", "(a||b)&&c"},
		{"((a))", "((a))"},
		{"!a && b", "!a&&b"},
		{"!(a && b)", "!(a&&b)"},
		{"a -> b", "a->b"},
		{"a->b", "a->b"},
		{"a-b", "a-b"},
		{"a--b", "a--b"},
		{"a-->b", "a-->b"},
		{"-a", "-a"},
		{"a <-> b <-> c", "a<->b<->c"},
		{"a || b -> c <-> d", "a||b->c<->d"},
		{`"my label"`, `"my label"`},
		{`"plain"`, "plain"},
		{`"a\"b" && c`, `"a\"b"&&c`},
		{`"it's"`, `"it's"`},
		{`"tab\there"`, `"tab\there"`},
		{`"back\\slash"`, `"back\\slash"`},
		{`"x\'y"`, `"x'y"`},
		{`""`, `""`},
		{`"a&&b"`, `"a&&b"`},
		{`"v1."`, `"v1."`},
		{`"c:d"`, `"c:d"`},
		{"jdk-17.0", "jdk-17.0"},
		{"größe", "größe"},
		{"a\nb", `"a\nb"`},
		{"os=linux", "os=linux"},
	}
	for _, tt := range tests {
		got, err := Normalize(tt.in)
		if err != nil {
			t.Errorf("Normalize(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Normalize(%q) mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestEval(t *testing.T) {
	tests := []struct {
		expr   string
		labels []string
		want   bool
	}{
		{"linux", []string{"linux"}, true},
		{"linux", []string{"windows"}, false},
		{"linux && docker", []string{"linux", "docker"}, true},
		{"linux && docker", []string{"linux"}, false},
		{"linux || docker", []string{"docker"}, true},
		{"linux || docker", nil, false},
		// && binds tighter than ||: a || (b && c).
		{"a || b && c", []string{"a"}, true},
		{"a || b && c", []string{"b"}, false},
		{"(a || b) && c", []string{"a"}, false},
		{"(a || b) && c", []string{"a", "c"}, true},
		// ! binds tighter than &&.
		{"!a && b", []string{"b"}, true},
		{"!a && b", []string{"a", "b"}, false},
		{"!(a && b)", []string{"a"}, true},
		{"!(a && b)", []string{"a", "b"}, false},
		{"!windows", nil, true},
		// Implication: false only when the left holds and the right does not.
		{"a -> b", nil, true},
		{"a -> b", []string{"b"}, true},
		{"a -> b", []string{"a"}, false},
		{"a -> b", []string{"a", "b"}, true},
		// || binds tighter than ->: (a||b) -> c.
		{"a || b -> c", []string{"b"}, false},
		{"a || b -> c", []string{"b", "c"}, true},
		// Iff.
		{"a <-> b", nil, true},
		{"a <-> b", []string{"a"}, false},
		{"a <-> b", []string{"a", "b"}, true},
		// -> binds tighter than <->: a <-> (b -> c).
		{"a <-> b -> c", []string{"a", "b"}, false},
		{"a <-> b -> c", []string{"a"}, true},
		// <-> chains left to right: (a<->b)<->c.
		{"a <-> b <-> c", []string{"c"}, true},
		{"a <-> b <-> c", nil, false},
		{"a <-> b <-> c", []string{"a", "b", "c"}, true},
		{`"my label" && x`, []string{"my label", "x"}, true},
		{`"my label"`, []string{"my", "label"}, false},
		{"a-b", []string{"a-b"}, true},
		{"a-b", []string{"a"}, false},
	}
	for _, tt := range tests {
		e, err := Parse(tt.expr)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.expr, err)
			continue
		}
		if got := Matches(e, tt.labels); got != tt.want {
			t.Errorf("Matches(%q, %q) = %v, want %v", tt.expr, tt.labels, got, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"", `label expression "": column 1: unexpected end of expression, want a label, "(" or "!"`},
		{"   ", `label expression "   ": column 4: unexpected end of expression, want a label, "(" or "!"`},
		{"a &&", `label expression "a &&": column 5: unexpected end of expression, want a label, "(" or "!"`},
		{"a && || b", `label expression "a && || b": column 6: unexpected "||", want a label, "(" or "!"`},
		{"a & b", `label expression "a & b": column 3: unexpected character "&" (use && and ||, and quote labels containing it)`},
		{"a | b", `label expression "a | b": column 3: unexpected character "|" (use && and ||, and quote labels containing it)`},
		{"a b", `label expression "a b": column 3: unexpected label b after a complete expression`},
		{"(a && b", `label expression "(a && b": column 8: unexpected end of expression, want ")" to close the "(" at column 1`},
		{"a)", `label expression "a)": column 2: unexpected ")" after a complete expression`},
		{"!!a", `label expression "!!a": column 2: "!" cannot follow "!"; write !(!a)`},
		{"a -> b -> c", `label expression "a -> b -> c": column 8: "->" does not chain; add parentheses, e.g. (a->b)->c`},
		{"a <- b", `label expression "a <- b": column 3: unexpected character "<" (use && and ||, and quote labels containing it)`},
		{"it's", `label expression "it's": column 3: unexpected character "'" (use && and ||, and quote labels containing it)`},
		{`"open`, `label expression "\"open": column 1: unterminated quoted label`},
		{`"open\`, `label expression "\"open\\": column 1: unterminated quoted label`},
		{`"a\qb"`, `label expression "\"a\\qb\"": column 3: invalid escape \q in a quoted label (allowed: \b \t \n \f \r \" \' \\)`},
		{"\"a\nb\"", `label expression "\"a\nb\"": column 3: line break inside a quoted label (write it as \n or \r)`},
		{"größe && (", `label expression "größe && (": column 11: unexpected end of expression, want a label, "(" or "!"`},
		{"a && !", `label expression "a && !": column 7: unexpected end of expression, want a label, "(" or "!"`},
	}
	for _, tt := range tests {
		_, err := Parse(tt.in)
		if err == nil {
			t.Errorf("Parse(%q): no error, want %s", tt.in, tt.want)
			continue
		}
		var perr *Error
		if !errors.As(err, &perr) {
			t.Errorf("Parse(%q): error %T is not *Error", tt.in, err)
		}
		if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
			t.Errorf("Parse(%q) error mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestQuoteAtom(t *testing.T) {
	tests := []struct{ in, want string }{
		{"maven", "maven"},
		{"jdk17", "jdk17"},
		{"linux-amd64", "linux-amd64"},
		{"a.b", "a.b"},
		{"trailing.", `"trailing."`},
		{"..", `".."`},
		{"with space", `"with space"`},
		{"a&b", `"a&b"`},
		{"x:y", `"x:y"`},
		{"", `""`},
		{"q\"uote", `"q\"uote"`},
		{"bell\x07", "\"bell\x07\""},
		{"\b\f\r", `"\b\f\r"`},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, QuoteAtom(tt.in)); diff != "" {
			t.Errorf("QuoteAtom(%q) mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
}

// FuzzParse checks what callers rely on: Parse never panics, String() parses back to the same
// String(), and the re-parsed expression evaluates like the original for every assignment of its
// atoms (up to a bound, so the test stays fast).
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"linux", "linux && docker", "a || b && c", "(a||b)&&!c", "a -> b", "a<->b<->c", `"my label"`,
		`"a\"b\\c\n"`, "!(a)", "a-->b", "-", "a->", "((x))", `"" && "."`, "größe||x", "a\nb", "\x01",
		// Deep nesting and long chains, at and past the bounds.
		nested(MaxDepth), nested(MaxDepth + 1), strings.Repeat("(", 10_000), strings.Repeat("!(", 60) + "a",
		chain(MaxLength), strings.Repeat("a||", 2000) + nested(50),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s)
		if err != nil {
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("Parse(%q): error %T is not *Error", s, err)
			}
			if perr.Offset < 0 || perr.Offset > len(s) || perr.Column < 1 {
				t.Fatalf("Parse(%q): position out of range: %+v", s, perr)
			}
			return
		}
		norm := e.String()
		e2, err := Parse(norm)
		if err != nil {
			t.Fatalf("Parse(%q).String() = %q does not parse: %v", s, norm, err)
		}
		if got := e2.String(); got != norm {
			t.Fatalf("String() not stable: %q -> %q -> %q", s, norm, got)
		}
		atoms := collectAtoms(e)
		if len(atoms) > 10 {
			atoms = atoms[:10]
		}
		for mask := 0; mask < 1<<len(atoms); mask++ {
			has := func(a string) bool {
				for i, x := range atoms {
					if x == a {
						return mask&(1<<i) != 0
					}
				}
				return false
			}
			if e.Eval(has) != e2.Eval(has) {
				t.Fatalf("%q and %q evaluate differently for mask %b of %q", s, norm, mask, atoms)
			}
		}
	})
}

// collectAtoms lists the distinct atoms of e, in order of first appearance.
func collectAtoms(e Expr) []string {
	var out []string
	seen := map[string]bool{}
	var walk func(Expr)
	walk = func(e Expr) {
		switch v := e.(type) {
		case atom:
			if !seen[v.name] {
				seen[v.name] = true
				out = append(out, v.name)
			}
		case paren:
			walk(v.inner)
		case not:
			walk(v.inner)
		case binary:
			walk(v.lhs)
			walk(v.rhs)
		}
	}
	walk(e)
	return out
}

func TestCollectAtomsSeesEveryAtom(t *testing.T) {
	// The fuzz test's evaluation check is only as good as collectAtoms; make sure it finds atoms
	// under every node kind.
	e, err := Parse(`a && !(b || "c d") -> e <-> f`)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(collectAtoms(e), ",")
	if diff := cmp.Diff("a,b,c d,e,f", got); diff != "" {
		t.Errorf("collectAtoms mismatch (-want +got):\n%s", diff)
	}
}
