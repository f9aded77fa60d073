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
	"unicode/utf8"
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

type tokKind int

const (
	tokEOF tokKind = iota
	tokAnd
	tokOr
	tokNot
	tokImplies
	tokIff
	tokLParen
	tokRParen
	tokAtom // text holds the atom's name, already unquoted for string literals
)

type token struct {
	kind tokKind
	pos  int // byte offset in the source
	text string
}

func (t token) describe() string {
	switch t.kind {
	case tokEOF:
		return "end of expression"
	case tokAtom:
		return fmt.Sprintf("label %s", QuoteAtom(t.text))
	default:
		return fmt.Sprintf("%q", tokenText[t.kind])
	}
}

var tokenText = map[tokKind]string{
	tokAnd: "&&", tokOr: "||", tokNot: "!", tokImplies: "->", tokIff: "<->", tokLParen: "(", tokRParen: ")",
}

// Error is a syntax error with the position it was found at.
type Error struct {
	Expr   string // the whole input
	Offset int    // byte offset of the offending text
	Column int    // 1-based character column of the offending text, as an editor counts it
	Msg    string

	kind error // ErrTooLong, ErrTooDeep or nil (a syntax error)
}

// maxQuoted is how much of the input Error() quotes: all of a normal expression, and of a long one
// the part around the offending position, so an error about a hostile megabyte stays one line.
const maxQuoted = 120

func (e *Error) Error() string {
	return fmt.Sprintf("label expression %s: column %d: %s", excerpt(e.Expr, e.Offset), e.Column, e.Msg)
}

// Unwrap exposes ErrTooLong and ErrTooDeep to errors.Is.
func (e *Error) Unwrap() error { return e.kind }

// excerpt quotes s whole when it is short, else about maxQuoted bytes around offset with the total
// length, cut at rune boundaries.
func excerpt(s string, offset int) string {
	if len(s) <= maxQuoted {
		return fmt.Sprintf("%q", s)
	}
	start := max(0, offset-maxQuoted/2)
	end := min(len(s), start+maxQuoted)
	for start > 0 && !utf8.RuneStart(s[start]) {
		start--
	}
	for end < len(s) && !utf8.RuneStart(s[end]) {
		end++
	}
	var b strings.Builder
	b.WriteString(fmt.Sprintf("(%d bytes) ", len(s)))
	if start > 0 {
		b.WriteString("…")
	}
	b.WriteString(fmt.Sprintf("%q", s[start:end]))
	if end < len(s) {
		b.WriteString("…")
	}
	return b.String()
}

func newError(src string, offset int, format string, args ...any) *Error {
	return &Error{
		Expr:   src,
		Offset: offset,
		Column: utf8.RuneCountInString(src[:offset]) + 1,
		Msg:    fmt.Sprintf(format, args...),
	}
}

// isAtomByte reports whether c may appear in an unquoted atom (LabelExpressionLexer's IDENTIFIER_PART;
// the '-' case is handled by the caller because it needs a look-ahead). Multi-byte UTF-8 sequences
// are all atom characters, so working on bytes is exact.
func isAtomByte(c byte) bool {
	return !strings.ContainsRune("&|!<>() \t\"'-", rune(c))
}

func lex(s string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case strings.HasPrefix(s[i:], "&&"):
			toks = append(toks, token{kind: tokAnd, pos: i})
			i += 2
		case strings.HasPrefix(s[i:], "||"):
			toks = append(toks, token{kind: tokOr, pos: i})
			i += 2
		case strings.HasPrefix(s[i:], "->"):
			toks = append(toks, token{kind: tokImplies, pos: i})
			i += 2
		case strings.HasPrefix(s[i:], "<->"):
			toks = append(toks, token{kind: tokIff, pos: i})
			i += 3
		case c == '!':
			toks = append(toks, token{kind: tokNot, pos: i})
			i++
		case c == '(':
			toks = append(toks, token{kind: tokLParen, pos: i})
			i++
		case c == ')':
			toks = append(toks, token{kind: tokRParen, pos: i})
			i++
		case c == '"':
			name, n, err := lexString(s, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: tokAtom, pos: i, text: name})
			i += n
		case c == '-' || isAtomByte(c):
			start := i
			for i < len(s) && (isAtomByte(s[i]) || (s[i] == '-' && (i+1 >= len(s) || s[i+1] != '>'))) {
				i++
			}
			toks = append(toks, token{kind: tokAtom, pos: start, text: s[start:i]})
		default:
			return nil, newError(s, i, "unexpected character %q (use && and ||, and quote labels containing it)", string(c))
		}
	}
	toks = append(toks, token{kind: tokEOF, pos: len(s)})
	return toks, nil
}

// lexString reads the quoted atom starting at s[start] == '"' and returns its unquoted name and
// length in bytes, following LabelExpressionLexer's STRINGLITERAL and QuotedStringTokenizer.unquote.
func lexString(s string, start int) (string, int, error) {
	var b strings.Builder
	for i := start + 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), i + 1 - start, nil
		case '\r', '\n':
			return "", 0, newError(s, i, "line break inside a quoted label (write it as \\n or \\r)")
		case '\\':
			if i+1 >= len(s) {
				return "", 0, newError(s, start, "unterminated quoted label")
			}
			i++
			switch e := s[i]; e {
			case 'b':
				b.WriteByte('\b')
			case 't':
				b.WriteByte('\t')
			case 'n':
				b.WriteByte('\n')
			case 'f':
				b.WriteByte('\f')
			case 'r':
				b.WriteByte('\r')
			case '"', '\'', '\\':
				b.WriteByte(e)
			default:
				return "", 0, newError(s, i-1, "invalid escape \\%s in a quoted label (allowed: \\b \\t \\n \\f \\r \\\" \\' \\\\)", string(s[i:i+utf8RuneLen(s[i:])]))
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, newError(s, start, "unterminated quoted label")
}

func utf8RuneLen(s string) int {
	_, n := utf8.DecodeRuneInString(s)
	return n
}

type parser struct {
	src   string
	toks  []token
	i     int
	depth int // parentheses open at the current position
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (p *parser) errorf(t token, format string, args ...any) error {
	return newError(p.src, t.pos, format, args...)
}

// iff is LabelExpressionParser's term1: left-associative chain of <->.
func (p *parser) iff() (Expr, error) {
	l, err := p.implies()
	if err != nil {
		return nil, err
	}
	for p.peek().kind == tokIff {
		p.next()
		r, err := p.implies()
		if err != nil {
			return nil, err
		}
		l = binary{op: precIff, lhs: l, rhs: r}
	}
	return l, nil
}

// implies is term2: at most one ->.
func (p *parser) implies() (Expr, error) {
	l, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.peek().kind != tokImplies {
		return l, nil
	}
	p.next()
	r, err := p.or()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind == tokImplies {
		return nil, p.errorf(t, `"->" does not chain; add parentheses, e.g. (a->b)->c`)
	}
	return binary{op: precImplies, lhs: l, rhs: r}, nil
}

// or is term3.
func (p *parser) or() (Expr, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.peek().kind == tokOr {
		p.next()
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = binary{op: precOr, lhs: l, rhs: r}
	}
	return l, nil
}

// and is term4.
func (p *parser) and() (Expr, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.peek().kind == tokAnd {
		p.next()
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		l = binary{op: precAnd, lhs: l, rhs: r}
	}
	return l, nil
}

// unary is term5: ! applies to a primary only.
func (p *parser) unary() (Expr, error) {
	if p.peek().kind != tokNot {
		return p.primary()
	}
	p.next()
	if t := p.peek(); t.kind == tokNot {
		return nil, p.errorf(t, `"!" cannot follow "!"; write !(!a)`)
	}
	e, err := p.primary()
	if err != nil {
		return nil, err
	}
	return not{inner: e}, nil
}

// primary is term6: a parenthesised expression or an atom.
func (p *parser) primary() (Expr, error) {
	t := p.next()
	switch t.kind {
	case tokAtom:
		return atom{name: t.text}, nil
	case tokLParen:
		if p.depth++; p.depth > MaxDepth {
			err := newError(p.src, t.pos, "parentheses nested more than %d deep", MaxDepth)
			err.kind = ErrTooDeep
			return nil, err
		}
		e, err := p.iff()
		if err != nil {
			return nil, err
		}
		p.depth--
		if c := p.next(); c.kind != tokRParen {
			return nil, p.errorf(c, "unexpected %s, want \")\" to close the \"(\" at column %d", c.describe(), newError(p.src, t.pos, "").Column)
		}
		return paren{inner: e}, nil
	default:
		return nil, p.errorf(t, "unexpected %s, want a label, \"(\" or \"!\"", t.describe())
	}
}
