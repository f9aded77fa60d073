package labelexpr

import ()

// The parser: recursive descent over the precedence Jenkins' LabelExpression grammar gives,
// loosest first (<->, ->, ||, &&, !).

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
