package dsl

import (
	"strconv"

	"github.com/alecthomas/participle/v2/lexer"
)

// fastParse reads a file that has no syntax error, without participle:
// building participle's parser (reflection over the grammar's struct tags)
// and its reflective parse took most of `minervac check`'s time in a
// fresh process (about 20 of 45 ms). It returns false on any error, and
// the caller then runs the participle parser, which finds and words every
// error as before; so fastParse needs to be right only about what it
// accepts.
//
// It accepts exactly the files the participle grammar in ast.go accepts
// and builds the same tree, positions included; TestFastParseMatchesGrammar
// and FuzzFastParse check this against participle. It follows
// participle's rules with UseLookahead(0), not the grammar's intent:
//   - a literal ('model', '(', ...) matches any token whose value is the
//     literal's, a string token (after unquoting) included;
//   - a choice, an optional part or a repetition that fails before taking
//     a token tries the next alternative or ends; one that fails after
//     taking a token fails the whole parse (so `def f(a,)` is an error:
//     the ',' commits to another parameter);
//   - a node's Pos is the next non-whitespace token's position where it
//     starts, its EndPos the position just after the last token it took.
func fastParse(name, src string) (f *File, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			if _, bad := r.(fastFail); !bad {
				panic(r)
			}
			f, ok = nil, false
		}
	}()
	p := fastParser{s: archScanner{src: src, pos: lexer.Position{Filename: name, Line: 1, Column: 1}}}
	p.advance()
	return p.file(), true
}

// fastFail is the panic that unwinds a failed fast parse.
type fastFail struct{}

// fastParser reads tokens as it goes, holding only the next one: a list
// of every token, as participle keeps, is a tenth of a megabyte of fresh
// memory for a model, and on this project's VM each new page costs about
// 10 µs to touch.
type fastParser struct {
	s      archScanner
	tok    lexer.Token    // the next token that is not whitespace or a comment
	tokEnd lexer.Position // where tok's text ends
	last   lexer.Position // where the last token taken ends
}

// advance reads the next token that is not whitespace or a comment. A
// lexical error anywhere fails the parse, as participle lexes the whole
// file first.
func (p *fastParser) advance() {
	for {
		t, err := p.s.Next()
		if err != nil {
			p.fail()
		}
		if t.Type == tokWhitespace || t.Type == tokComment {
			continue
		}
		if t.Type == tokString {
			if t, err = unquoteString(t); err != nil {
				p.fail()
			}
		}
		p.tok, p.tokEnd = t, p.s.pos
		return
	}
}

func (p *fastParser) fail() { panic(fastFail{}) }

func (p *fastParser) peek() *lexer.Token { return &p.tok }

// pos is where a node starts; end is where the last one taken ends (the
// position of the raw token after it, which participle gives EndPos).
func (p *fastParser) pos() lexer.Position { return p.tok.Pos }
func (p *fastParser) end() lexer.Position { return p.last }

func (p *fastParser) take() string {
	v := p.tok.Value
	p.last = p.tokEnd
	p.advance()
	return v
}

// is reports whether the next token matches the literal s.
func (p *fastParser) is(s string) bool {
	t := p.peek()
	return t.Type != lexer.EOF && t.Value == s
}

// opt takes the literal s if it is next.
func (p *fastParser) opt(s string) bool {
	if p.is(s) {
		p.take()
		return true
	}
	return false
}

// must takes the literal s, or fails.
func (p *fastParser) must(s string) {
	if !p.opt(s) {
		p.fail()
	}
}

func (p *fastParser) isType(t lexer.TokenType) bool { return p.peek().Type == t }

// mustType takes a token of type t and returns its value, or fails.
func (p *fastParser) mustType(t lexer.TokenType) string {
	if !p.isType(t) {
		p.fail()
	}
	return p.take()
}

func (p *fastParser) file() *File {
	f := &File{Pos: p.pos()}
	if f.Model = p.modelDecl(); f.Model == nil {
		p.fail()
	}
	for {
		b := p.block()
		if b == nil {
			break
		}
		f.Blocks = append(f.Blocks, b)
	}
	if !p.isType(lexer.EOF) {
		p.fail()
	}
	return f
}

func (p *fastParser) modelDecl() *ModelDecl {
	d := &ModelDecl{Pos: p.pos()}
	if !p.opt("model") {
		return nil
	}
	d.Name = p.mustType(tokString)
	if p.opt("for") {
		d.HF = append(d.HF, p.mustType(tokString))
		for p.opt(",") {
			d.HF = append(d.HF, p.mustType(tokString))
		}
	}
	d.EndPos = p.end()
	return d
}

func (p *fastParser) block() *Block {
	b := &Block{Pos: p.pos()}
	switch {
	case p.is("config"):
		c := &ConfigBlock{Pos: p.pos()}
		p.take()
		p.must("{")
		for {
			it := p.configItem()
			if it == nil {
				break
			}
			c.Items = append(c.Items, it)
		}
		p.must("}")
		b.Config = c
	case p.is("weights"):
		w := &WeightsBlock{Pos: p.pos()}
		p.take()
		p.must("{")
		for {
			it := p.weightItem()
			if it == nil {
				break
			}
			w.Items = append(w.Items, it)
		}
		p.must("}")
		b.Weights = w
	case p.is("forward"):
		fw := &ForwardBlock{Pos: p.pos()}
		p.take()
		p.must("(")
		fw.Input = p.mustType(tokIdent)
		p.must(")")
		fw.Body = p.body()
		b.Forward = fw
	case p.is("def"):
		d := &FuncDecl{Pos: p.pos()}
		p.take()
		d.Name = p.mustType(tokIdent)
		p.must("(")
		if p.isType(tokIdent) {
			d.Params = append(d.Params, p.take())
			// A ',' commits to another parameter, so the grammar's
			// trailing ','? is never reached.
			for p.opt(",") {
				d.Params = append(d.Params, p.mustType(tokIdent))
			}
		}
		p.must(")")
		d.Body = p.body()
		d.EndPos = p.end()
		b.Def = d
	default:
		return nil
	}
	return b
}

// body is `'{' Stmt* '}'`.
func (p *fastParser) body() []*Stmt {
	p.must("{")
	var out []*Stmt
	for {
		s := p.stmt()
		if s == nil {
			break
		}
		out = append(out, s)
	}
	p.must("}")
	return out
}

func (p *fastParser) configItem() *ConfigItem {
	it := &ConfigItem{Pos: p.pos()}
	switch {
	case p.is("check"):
		c := &CheckDecl{Pos: p.pos()}
		p.take()
		c.Cond = p.mustExpr()
		if p.opt(",") {
			c.Message = p.mustType(tokString)
		}
		c.EndPos = p.end()
		it.Check = c
	case p.isType(tokIdent):
		n := &NamedItem{Pos: p.pos()}
		n.Name = p.take()
		switch {
		case p.is(":"):
			n.Param = p.paramDecl()
		case p.is("="):
			d := &DerivedDecl{Pos: p.pos()}
			p.take()
			d.Value = p.mustExpr()
			d.EndPos = p.end()
			n.Derived = d
		default:
			p.fail()
		}
		n.EndPos = p.end()
		it.Named = n
	default:
		return nil
	}
	return it
}

func (p *fastParser) paramDecl() *ParamDecl {
	d := &ParamDecl{Pos: p.pos()}
	p.must(":")
	if d.Type = p.typeExpr(); d.Type == nil {
		p.fail()
	}
	if p.is("in") {
		a := &AcceptClause{Pos: p.pos()}
		p.take()
		a.From = p.mustExpr()
		if p.opt("..") {
			a.To = p.mustExpr()
		}
		d.Accept = a
	}
	if p.opt("=") {
		d.Default = p.mustExpr()
	}
	if p.is("from") {
		fc := &FromClause{Pos: p.pos()}
		p.take()
		fc.Keys = append(fc.Keys, p.mustType(tokString))
		for p.opt(",") {
			fc.Keys = append(fc.Keys, p.mustType(tokString))
		}
		if p.opt("or") {
			if p.opt("default") {
				fc.OrDefault = true
			} else {
				fc.Or = p.mustExpr()
			}
		}
		d.From = fc
	}
	d.EndPos = p.end()
	return d
}

func (p *fastParser) typeExpr() *TypeExpr {
	t := &TypeExpr{Pos: p.pos()}
	switch {
	case p.opt("["):
		if t.List = p.typeExpr(); t.List == nil {
			p.fail()
		}
		p.must("]")
	case p.isType(tokIdent):
		t.Name = p.take()
	default:
		return nil
	}
	t.EndPos = p.end()
	return t
}

func (p *fastParser) weightItem() *WeightItem {
	it := &WeightItem{Pos: p.pos()}
	switch {
	case p.is("for"):
		l := &WeightLoop{Pos: p.pos()}
		p.take()
		l.Var = p.mustType(tokIdent)
		p.must("in")
		l.From = p.mustExpr()
		p.must("..")
		l.To = p.mustExpr()
		p.must("{")
		for {
			w := p.weightDecl()
			if w == nil {
				break
			}
			l.Weights = append(l.Weights, w)
		}
		p.must("}")
		it.Layers = l
	default:
		if it.Weight = p.weightDecl(); it.Weight == nil {
			return nil
		}
	}
	return it
}

func (p *fastParser) weightDecl() *WeightDecl {
	if !p.isType(tokIdent) {
		return nil
	}
	w := &WeightDecl{Pos: p.pos()}
	w.Name = p.take()
	p.must(":")
	w.DType = p.mustType(tokIdent)
	p.must("[")
	w.Dims = append(w.Dims, p.mustExpr())
	for p.opt(",") {
		w.Dims = append(w.Dims, p.mustExpr())
	}
	p.must("]")
	p.must("=")
	w.Pattern = p.mustType(tokString)
	if p.opt("when") {
		w.When = p.mustExpr()
	}
	w.EndPos = p.end()
	return w
}

func (p *fastParser) stmt() *Stmt {
	s := &Stmt{Pos: p.pos()}
	switch {
	case p.is("for"):
		f := &ForStmt{Pos: p.pos()}
		p.take()
		f.Var = p.mustType(tokIdent)
		p.must("in")
		f.From = p.mustExpr()
		p.must("..")
		f.To = p.mustExpr()
		f.Body = p.body()
		s.For = f
	case p.is("if"):
		s.If = p.ifStmt()
	case p.is("return"):
		r := &ReturnStmt{Pos: p.pos()}
		p.take()
		r.Value = p.mustExpr()
		s.Return = r
	case p.isType(tokIdent):
		a := &AssignStmt{Pos: p.pos()}
		a.Names = append(a.Names, p.take())
		for p.opt(",") {
			a.Names = append(a.Names, p.mustType(tokIdent))
		}
		p.must("=")
		a.Value = p.mustExpr()
		a.EndPos = p.end()
		s.Assign = a
	default:
		return nil
	}
	s.EndPos = p.end()
	return s
}

func (p *fastParser) ifStmt() *IfStmt {
	s := &IfStmt{Pos: p.pos()}
	p.must("if")
	s.Cond = p.mustExpr()
	s.Then = p.body()
	if p.opt("else") {
		switch {
		case p.is("if"):
			s.ElseIf = p.ifStmt()
		case p.is("{"):
			s.Else = p.body()
		default:
			p.fail()
		}
	}
	return s
}

// mustExpr reads an expression where the grammar requires one.
func (p *fastParser) mustExpr() *Expr {
	e := p.expr()
	if e == nil {
		p.fail()
	}
	return e
}

// binaryOps are OpTerm's operators but `not in`.
var binaryOps = map[string]bool{
	"or": true, "and": true, "in": true, "==": true, "!=": true, "<=": true, ">=": true,
	"<": true, ">": true, "+": true, "-": true, "*": true, "/": true, "%": true,
}

func (p *fastParser) expr() *Expr {
	e := &Expr{Pos: p.pos()}
	if e.First = p.unary(); e.First == nil {
		return nil
	}
	for {
		t := p.peek()
		if t.Type == lexer.EOF || !(binaryOps[t.Value] || t.Value == "not") {
			break
		}
		o := &OpTerm{Pos: p.pos()}
		o.Op = p.take()
		if o.Op == "not" {
			p.must("in")
			o.Op = "notin" // participle concatenates the captured tokens
		}
		if o.Operand = p.unary(); o.Operand == nil {
			p.fail()
		}
		e.Rest = append(e.Rest, o)
	}
	e.EndPos = p.end()
	return e
}

func (p *fastParser) unary() *Unary {
	u := &Unary{Pos: p.pos()}
	if p.is("-") || p.is("not") {
		u.Op = p.take()
		if u.X = p.unary(); u.X == nil {
			p.fail()
		}
	} else if u.Operand = p.postfix(); u.Operand == nil {
		return nil
	}
	u.EndPos = p.end()
	return u
}

func (p *fastParser) postfix() *Postfix {
	x := &Postfix{Pos: p.pos()}
	if x.Primary = p.primary(); x.Primary == nil {
		return nil
	}
	for {
		s := &Suffix{Pos: p.pos()}
		switch {
		case p.opt("("):
			c := &CallArgs{Pos: p.pos()}
			if a := p.arg(); a != nil {
				c.Args = append(c.Args, a)
				for p.opt(",") {
					if a := p.arg(); a != nil {
						c.Args = append(c.Args, a)
					}
				}
			}
			p.must(")")
			s.Call = c
		case p.opt("["):
			s.Index = p.mustExpr()
			p.must("]")
		case p.opt("."):
			s.Field = p.mustType(tokIdent)
		default:
			x.EndPos = p.end()
			return x
		}
		s.EndPos = p.end()
		x.Suffixes = append(x.Suffixes, s)
	}
}

func (p *fastParser) arg() *Arg {
	a := &Arg{Pos: p.pos()}
	if a.First = p.expr(); a.First == nil {
		return nil
	}
	if p.opt("=") {
		a.Second = p.mustExpr()
	}
	a.EndPos = p.end()
	return a
}

func (p *fastParser) primary() *Primary {
	x := &Primary{Pos: p.pos()}
	t := p.peek()
	switch {
	case t.Type == tokFloat:
		v, err := strconv.ParseFloat(p.take(), 64)
		if err != nil {
			p.fail()
		}
		x.Float = &v
	case t.Type == tokInt:
		// Base 0, as participle converts: a leading 0 is octal.
		v, err := strconv.ParseInt(p.take(), 0, 64)
		if err != nil {
			p.fail()
		}
		x.Int = &v
	case t.Type == tokString:
		v := p.take()
		x.String = &v
	case p.is("true") || p.is("false"):
		b := Boolean(p.take() == "true")
		x.Bool = &b
	case p.is("none"):
		p.take()
		x.None = true
	case p.is("if"):
		e := &IfExpr{Pos: p.pos()}
		p.take()
		e.Cond = p.mustExpr()
		p.must("then")
		e.Then = p.mustExpr()
		p.must("else")
		e.Else = p.mustExpr()
		x.If = e
	case p.is("["):
		l := &ListExpr{Pos: p.pos()}
		p.take()
		l.Items = p.listItems()
		p.must("]")
		x.List = l
	case p.opt("("):
		x.Paren = p.mustExpr()
		p.must(")")
	case t.Type == tokIdent:
		x.Ident = p.take()
	default:
		return nil
	}
	x.EndPos = p.end()
	return x
}

func (p *fastParser) listItems() *ListItems {
	l := &ListItems{Pos: p.pos()}
	if e := p.expr(); e != nil {
		l.Elems = append(l.Elems, e)
		for p.opt(",") {
			if e := p.expr(); e != nil {
				l.Elems = append(l.Elems, e)
			}
		}
	}
	if p.is("for") {
		f := &ListFor{Pos: p.pos()}
		p.take()
		f.Var = p.mustType(tokIdent)
		p.must("in")
		f.From = p.mustExpr()
		p.must("..")
		f.To = p.mustExpr()
		l.For = f
	}
	return l
}
