package labelexpr

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// The lexer (Jenkins' LabelExpressionLexer rules) and the syntax errors it and the parser report.

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
