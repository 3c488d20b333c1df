package dsl

import (
	"github.com/alecthomas/participle/v2/lexer"

	"github.com/minerva-ml/minerva/dsl/diag"
)

// Node is an expression as a tree. The grammar reads binary operators as a
// flat list (participle has no precedence); Tree builds this form, which the
// compiler evaluates.
type Node interface {
	Span() (pos, end diag.Pos)
}

type span struct{ P, E diag.Pos }

func (s span) Span() (diag.Pos, diag.Pos) { return s.P, s.E }

// Lit is a literal: int64, float64, string, bool, or nil for `none`.
type Lit struct {
	span
	Value any
}

// Name refers to a config value, weight, loop variable or local tensor.
type Name struct {
	span
	Name string
}

// Binary is `L op R`.
type Binary struct {
	span
	Op   string
	L, R Node
}

// UnaryOp is `-x` or `not x`.
type UnaryOp struct {
	span
	Op string
	X  Node
}

// Call is `fn(args)`; Fn is the callee's name and FnSpan its position.
type Call struct {
	span
	Fn     string
	FnSpan span
	Args   []CallArg
}

// CallArg is a positional (Name == "") or named argument.
type CallArg struct {
	span
	Name  string
	Value Node
}

// Index is `x[i]`.
type Index struct {
	span
	X, Index Node
}

// Field is `x.name`.
type Field struct {
	span
	X    Node
	Name string
}

// Cond is `if c then a else b`.
type Cond struct {
	span
	C, Then, Else Node
}

// List is `[a, b]`.
type List struct {
	span
	Elems []Node
}

// Comprehension is `[elem for var in from..to]`.
type Comprehension struct {
	span
	Elem     Node
	Var      string
	From, To Node
}

// precedence of binary operators; higher binds tighter.
var precedence = map[string]int{
	"or": 1, "and": 2,
	"==": 3, "!=": 3, "in": 3, "notin": 3, "<": 3, "<=": 3, ">": 3, ">=": 3,
	"+": 4, "-": 4,
	"*": 5, "/": 5, "%": 5,
}

// Tree converts a parsed expression into a Node. file names the source for
// positions.
func (e *Expr) Tree(file string) Node {
	if e == nil {
		return nil
	}
	if e.tree == nil {
		e.tree = e.buildTree(file)
	}
	return e.tree
}

func (e *Expr) buildTree(file string) Node {
	operands := []Node{e.First.tree(file)}
	ops := []*OpTerm{}
	for _, t := range e.Rest {
		operands = append(operands, t.Operand.tree(file))
		ops = append(ops, t)
	}
	// Precedence climbing over the flat list.
	pos := 0
	var climb func(minPrec int) Node
	climb = func(minPrec int) Node {
		left := operands[pos]
		for pos < len(ops) && precedence[ops[pos].Op] >= minPrec {
			op := ops[pos]
			prec := precedence[op.Op]
			pos++
			right := climb(prec + 1)
			lp, _ := left.Span()
			_, re := right.Span()
			left = &Binary{span: span{lp, re}, Op: op.Op, L: left, R: right}
		}
		return left
	}
	return climb(0)
}

func (u *Unary) tree(file string) Node {
	if u.X != nil {
		x := u.X.tree(file)
		_, e := x.Span()
		return &UnaryOp{span: span{PosOf(file, u.Pos), e}, Op: u.Op, X: x}
	}
	return u.Operand.tree(file)
}

func (p *Postfix) tree(file string) Node {
	n := p.Primary.tree(file)
	for _, s := range p.Suffixes {
		start, _ := n.Span()
		sp := span{start, PosOf(file, s.EndPos)}
		switch {
		case s.Call != nil:
			name, fnSpan := "", span{}
			if id, ok := n.(*Name); ok {
				name, fnSpan = id.Name, id.span
			}
			c := &Call{span: sp, Fn: name, FnSpan: fnSpan}
			if name == "" {
				// Calling something that is not a name: keep the callee so
				// the checker can say what it is.
				c.FnSpan = span{start, start}
			}
			for _, a := range s.Call.Args {
				c.Args = append(c.Args, CallArg{span: spanOf(file, a.Pos, a.EndPos), Name: a.Name, Value: a.Value.Tree(file)})
			}
			n = c
		case s.Index != nil:
			n = &Index{span: sp, X: n, Index: s.Index.Tree(file)}
		default:
			n = &Field{span: sp, X: n, Name: s.Field}
		}
	}
	return n
}

func (p *Primary) tree(file string) Node {
	sp := spanOf(file, p.Pos, p.EndPos)
	switch {
	case p.Float != nil:
		return &Lit{span: sp, Value: *p.Float}
	case p.Int != nil:
		return &Lit{span: sp, Value: *p.Int}
	case p.String != nil:
		return &Lit{span: sp, Value: *p.String}
	case p.Bool != nil:
		return &Lit{span: sp, Value: bool(*p.Bool)}
	case p.None:
		return &Lit{span: sp, Value: nil}
	case p.If != nil:
		return &Cond{span: sp, C: p.If.Cond.Tree(file), Then: p.If.Then.Tree(file), Else: p.If.Else.Tree(file)}
	case p.List != nil:
		if p.List.Items.For != nil && len(p.List.Items.Elems) == 1 {
			f := p.List.Items.For
			return &Comprehension{span: sp, Elem: p.List.Items.Elems[0].Tree(file), Var: f.Var, From: f.From.Tree(file), To: f.To.Tree(file)}
		}
		l := &List{span: sp}
		for _, e := range p.List.Items.Elems {
			l.Elems = append(l.Elems, e.Tree(file))
		}
		return l
	case p.Paren != nil:
		return p.Paren.Tree(file)
	default:
		return &Name{span: sp, Name: p.Ident}
	}
}

func spanOf(file string, p, e lexer.Position) span {
	return span{PosOf(file, p), PosOf(file, e)}
}

// SpanOf returns the diagnostic span of any node, for callers outside the package.
func SpanOf(n Node) (diag.Pos, diag.Pos) { return n.Span() }
