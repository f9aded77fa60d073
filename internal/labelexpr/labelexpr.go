// Package labelexpr parses, normalises and evaluates Jenkins label expressions.
//
// Jenkins never tells an outside provisioner which label a queue item wants except through the
// `why` text, which prints the label in Jenkins' own normalised form; pod templates then have to
// answer "do my labels satisfy this expression" exactly as Jenkins would, or an agent is started
// that Jenkins will never give the build to. So this package follows Jenkins core
// (hudson.model.labels: LabelExpressionLexer.g4, LabelExpressionParser.g4, LabelExpression,
// LabelAtom.escape) rule for rule rather than a generic boolean grammar:
//
//   - Tokens: `&&`, `||`, `!`, `->`, `<->`, `(`, `)`, double-quoted strings, and atoms. An atom is a
//     run of any characters except & | ! < > ( ) space tab " ' , and a '-' directly followed by '>'
//     (so `a->b` is an implication, while `a-b` is one atom). Only space and tab separate tokens: a
//     newline is an ordinary atom character, as in Jenkins' lexer.
//   - A quoted atom accepts the escapes \b \t \n \f \r \" \' \\ and no raw CR or LF.
//   - Precedence, loosest first: `<->` (chains, left to right), `->` (does not chain: `a->b->c` is an
//     error, because (a->b)->c and a->(b->c) differ), `||`, `&&`, `!`. `!` applies to an atom or a
//     parenthesised expression only, so `!!a` is an error and `!(!a)` is not.
//   - String() is Jenkins' toString: no spaces, the parentheses the user wrote kept (Jenkins keeps them
//     as a no-op node, so its `why` shows them), none added, and atoms quoted when Jenkins' escape
//     would quote them. One deliberate difference: an atom containing " or ' is quoted too. Jenkins
//     prints those bare, which its own lexer cannot read back; quoting keeps String() re-parseable.
//
// Expressions come from pipeline authors (through Jenkins' `why` texts and job configurations), so
// they are input to bound, not to trust: Parse refuses texts longer than MaxLength and parentheses
// nested deeper than MaxDepth with an error wrapping ErrTooLong or ErrTooDeep, and parsing,
// printing and evaluating are linear in the text's length. Jenkins itself sets no such limits; no
// label expression a person writes comes near them.
package labelexpr

import (
	"errors"
	"fmt"
	"strings"
)

// Bounds on what Parse accepts. A real expression is a few dozen bytes; a long generated one
// (a || of a hundred node names) a few KiB.
const (
	// MaxLength is the longest text, in bytes, Parse reads.
	MaxLength = 16 << 10
	// MaxDepth is the deepest nesting of parentheses Parse accepts. The parser recurses once per
	// level, so this bound is what keeps a text of "(((((..." from exhausting the stack.
	MaxDepth = 100
)

// Errors a caller can tell apart with errors.Is: the text is not wrong, it is too big to read.
var (
	ErrTooLong = errors.New("label expression too long")
	ErrTooDeep = errors.New("label expression nested too deeply")
)

// Expr is a parsed label expression.
type Expr interface {
	// Eval reports whether the atoms for which has is true satisfy the expression. Both sides of a
	// binary operator are always evaluated, like Jenkins' Binary.matches.
	Eval(has func(atom string) bool) bool
	// String is Jenkins' normalised form: no spaces, the user's parentheses, atoms quoted only when
	// needed.
	String() string
	// write appends String() to b: one builder for the whole tree keeps printing linear, where
	// concatenating each subtree's string would copy a left-deep chain quadratically.
	write(b *strings.Builder)
	// precedence orders operators for parenthesising, as LabelOperatorPrecedence does.
	precedence() precedence
}

// stringOf prints e with one builder.
func stringOf(e Expr) string {
	var b strings.Builder
	e.write(&b)
	return b.String()
}

// precedence mirrors Jenkins' LabelOperatorPrecedence: a larger value binds more loosely.
type precedence int

const (
	precAtom precedence = iota
	precNot
	precAnd
	precOr
	precImplies
	precIff
)

type atom struct{ name string }

func (a atom) Eval(has func(string) bool) bool { return has(a.name) }
func (a atom) String() string                  { return QuoteAtom(a.name) }
func (a atom) write(b *strings.Builder)        { writeAtom(b, a.name) }
func (a atom) precedence() precedence          { return precAtom }

// paren keeps the user's parentheses, as Jenkins' LabelExpression.Paren does, so String() matches
// the text Jenkins shows in `why`.
type paren struct{ inner Expr }

func (p paren) Eval(has func(string) bool) bool { return p.inner.Eval(has) }
func (p paren) String() string                  { return stringOf(p) }
func (p paren) write(b *strings.Builder) {
	b.WriteByte('(')
	p.inner.write(b)
	b.WriteByte(')')
}
func (p paren) precedence() precedence { return precAtom }

type not struct{ inner Expr }

func (n not) Eval(has func(string) bool) bool { return !n.inner.Eval(has) }
func (n not) String() string                  { return stringOf(n) }
func (n not) write(b *strings.Builder) {
	b.WriteByte('!')
	wrap(b, precNot, n.inner)
}
func (n not) precedence() precedence { return precNot }

type binary struct {
	op       precedence
	lhs, rhs Expr
}

func (b binary) Eval(has func(string) bool) bool {
	l, r := b.lhs.Eval(has), b.rhs.Eval(has)
	switch b.op {
	case precAnd:
		return l && r
	case precOr:
		return l || r
	case precImplies:
		return !l || r
	default: // precIff: the parser builds no other binary operator
		return l == r
	}
}

func (b binary) String() string { return stringOf(b) }

func (b binary) write(sb *strings.Builder) {
	wrap(sb, b.op, b.lhs)
	sb.WriteString(operatorText[b.op])
	wrap(sb, b.op, b.rhs)
}

func (b binary) precedence() precedence { return b.op }

var operatorText = map[precedence]string{
	precAnd:     "&&",
	precOr:      "||",
	precImplies: "->",
	precIff:     "<->",
}

// wrap is Jenkins' LabelExpression.paren: parenthesise a child that binds more loosely than op.
func wrap(b *strings.Builder, op precedence, e Expr) {
	if op < e.precedence() {
		b.WriteByte('(')
		e.write(b)
		b.WriteByte(')')
		return
	}
	e.write(b)
}

// Parse parses a label expression as Jenkins' Label.parseExpression does. The empty string (or one
// of only spaces) is an error: "no label" is the caller's case to handle, not an expression.
func Parse(s string) (Expr, error) {
	if len(s) > MaxLength {
		return nil, &Error{Expr: s, Column: 1, Msg: fmt.Sprintf("%d bytes, more than the %d a label expression may have", len(s), MaxLength), kind: ErrTooLong}
	}
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := &parser{src: s, toks: toks}
	e, err := p.iff()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, p.errorf(t, "unexpected %s after a complete expression", t.describe())
	}
	// Quoting can make the normal form longer than the text (a\b prints as "a\\b"); refusing
	// what would print past the bound keeps every String() Parse's own input.
	if n := len(e.String()); n > MaxLength {
		return nil, &Error{Expr: s, Column: 1, Msg: fmt.Sprintf("normal form of %d bytes, more than the %d a label expression may have", n, MaxLength), kind: ErrTooLong}
	}
	return e, nil
}

// Normalize returns Jenkins' normalised form of s.
func Normalize(s string) (string, error) {
	e, err := Parse(s)
	if err != nil {
		return "", err
	}
	return e.String(), nil
}

// Matches reports whether a node carrying labels satisfies expr.
func Matches(expr Expr, labels []string) bool {
	set := make(map[string]struct{}, len(labels))
	for _, l := range labels {
		set[l] = struct{}{}
	}
	return expr.Eval(func(a string) bool {
		_, ok := set[a]
		return ok
	})
}

// QuoteAtom writes one label name the way Jenkins' LabelAtom.escape does: bare when it is a safe
// name, otherwise double-quoted with \" \\ \n \r \t \f \b escaped. A label that needs no quoting is
// also one that can be written unquoted in an expression and as a node label, so callers use
// QuoteAtom(l) == l to check that a label is a plain atom.
func QuoteAtom(name string) string {
	if !needsQuote(name) {
		return name
	}
	var b strings.Builder
	writeAtom(&b, name)
	return b.String()
}

// writeAtom appends QuoteAtom(name) to b.
func writeAtom(b *strings.Builder, name string) {
	if !needsQuote(name) {
		b.WriteString(name)
		return
	}
	b.WriteByte('"')
	for i := 0; i < len(name); i++ {
		switch c := name[i]; c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\f':
			b.WriteString(`\f`)
		case '\b':
			b.WriteString(`\b`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}

// needsQuote is Jenkins' LabelAtom.needsEscape (Jenkins.checkGoodName plus space, parentheses, tab
// and newline), with " and ' added so that String() always parses back.
func needsQuote(name string) bool {
	if name == "" {
		return true
	}
	trimmed := strings.TrimFunc(name, func(r rune) bool { return r <= ' ' }) // Java's String.trim
	if trimmed == "." || trimmed == ".." || strings.HasSuffix(trimmed, ".") {
		return true
	}
	for _, r := range name {
		if isISOControl(r) || strings.ContainsRune("?*/\\%!@#$^&|<>[]:; ()\t\n\"'", r) {
			return true
		}
	}
	return false
}

// isISOControl is Java's Character.isISOControl.
func isISOControl(r rune) bool { return r <= 0x1f || (r >= 0x7f && r <= 0x9f) }
