package dsl

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"

	"github.com/minerva-ml/minerva/dsl/diag"
)

// parser is built on first use, not at package initialisation: building
// it takes a millisecond or more, which every command that never parses
// an .arch file (minervac --help, minerva serve's handlers) would pay.
var parser = sync.OnceValue(func() *participle.Parser[File] { return buildParser() })

func buildParser() *participle.Parser[File] {
	return participle.MustBuild[File](
		participle.Lexer(archLexer),
		participle.Elide("Whitespace", "Comment"),
		participle.Unquote("String"),
		// No lookahead: once a branch has read a token it is committed, so a
		// mistake is reported at the token that is wrong rather than where the
		// parser last backtracked to. The grammar is LL(1) for this reason.
		participle.UseLookahead(0),
	)
}

// maxSyntaxErrors bounds error recovery; past it the file is too broken for
// more messages to help.
const maxSyntaxErrors = 20

// Parse reads one .arch file. On syntax errors it returns every error it can
// find, sorted by position: after each error it blanks the offending line and
// parses again, so one typo yields one message rather than a cascade.
func Parse(name, src string) (*File, error) {
	var diags diag.List
	diags.AddSource(name, src)
	text := []byte(src)
	blanked := map[int]bool{} // lines already removed by recovery
	for attempt := 0; attempt < maxSyntaxErrors; attempt++ {
		f, err := parser().ParseBytes(name, text)
		if err == nil {
			if diags.Len() > 0 {
				return nil, diags.Err()
			}
			f.Name, f.Source = name, src
			resolve(f, &diags)
			if diags.Len() > 0 {
				return nil, diags.Err()
			}
			return f, nil
		}
		d := syntaxDiagnostic(name, err)
		if !blanked[d.Pos.Line] {
			diags.Add(d)
		}
		// An error at the end of the file cannot be skipped past.
		if d.Pos.Offset >= len(strings.TrimRight(string(text), " \t\r\n")) || !d.Pos.IsValid() {
			break
		}
		var ok bool
		text, ok = blankLine(text, d.Pos.Line, blanked)
		if !ok {
			break
		}
	}
	return nil, diags.Err()
}

// syntaxDiagnostic turns a participle error into a diagnostic with a span
// and, where the grammar makes it clear, a hint.
func syntaxDiagnostic(file string, err error) diag.Diagnostic {
	var perr participle.Error
	if !errors.As(err, &perr) {
		return diag.Diagnostic{Pos: diag.Pos{File: file}, Message: err.Error()}
	}
	pos := toPos(perr.Position())
	pos.File = file
	d := diag.Diagnostic{Pos: pos}
	var ut *participle.UnexpectedTokenError
	var lerr *lexer.Error
	switch {
	case errors.As(err, &ut):
		tok := ut.Unexpected
		if tok.EOF() {
			d.Message = "unexpected end of file"
			d.Hint = "a block is not closed: check that every '{' has its '}'"
		} else {
			d.Message = fmt.Sprintf("unexpected %s", describeToken(tok))
			d.End = pos
			d.End.Col += len(tok.Value)
			d.End.Offset += len(tok.Value)
			if ut.Expect != "" {
				d.Hint = "expected " + ut.Expect
			}
		}
	case errors.As(err, &lerr):
		d.Message = "invalid character"
		d.Hint = "the .arch language uses letters, digits, strings in double quotes and the operators + - * / % == != < <= > >= .. = : , ( ) [ ] { }"
	default:
		d.Message = perr.Message()
	}
	return d
}

func describeToken(t lexer.Token) string {
	switch {
	case t.Type == tokString:
		return fmt.Sprintf("string %q", t.Value)
	default:
		return fmt.Sprintf("'%s'", t.Value)
	}
}

// blankLine replaces one line with spaces (keeping every other byte offset,
// so later diagnostics stay exact). Braces are kept the first time, so a
// broken `for ... {` line does not unbalance the file; the second time the
// whole line goes.
func blankLine(text []byte, line int, blanked map[int]bool) ([]byte, bool) {
	start, cur := 0, 1
	for i := 0; i < len(text) && cur < line; i++ {
		if text[i] == '\n' {
			cur++
			start = i + 1
		}
	}
	if cur != line {
		return text, false
	}
	end := start
	for end < len(text) && text[end] != '\n' {
		end++
	}
	out := append([]byte(nil), text...)
	keepBraces := !blanked[line]
	changed := false
	for i := start; i < end; i++ {
		c := out[i]
		if c == ' ' || c == '\t' || c == '\r' || (keepBraces && (c == '{' || c == '}')) {
			continue
		}
		out[i] = ' '
		changed = true
	}
	blanked[line] = true
	if !changed {
		// Only braces were left: drop them too.
		for i := start; i < end; i++ {
			if out[i] == '{' || out[i] == '}' {
				out[i] = ' '
				changed = true
			}
		}
	}
	return out, changed
}

func toPos(p lexer.Position) diag.Pos {
	return diag.Pos{File: p.Filename, Line: p.Line, Col: p.Column, Offset: p.Offset}
}

// PosOf converts a participle position to a diagnostic position.
func PosOf(file string, p lexer.Position) diag.Pos {
	d := toPos(p)
	d.File = file
	return d
}

// resolve fills the fields the grammar leaves for after parsing: which
// named config items are parameters, and the names of named arguments.
func resolve(f *File, diags *diag.List) {
	for _, b := range f.Blocks {
		if b.Config != nil {
			for _, it := range b.Config.Items {
				if n := it.Named; n != nil {
					if n.Param != nil {
						n.Param.Name, n.Param.Pos, n.Param.EndPos = n.Name, n.Pos, n.EndPos
						it.Param = n.Param
					} else {
						n.Derived.Name, n.Derived.Pos, n.Derived.EndPos = n.Name, n.Pos, n.EndPos
						it.Derived = n.Derived
					}
				}
			}
		}
	}
	visitArgs(f, func(l *ListItems) {
		if l.For != nil && len(l.Elems) != 1 {
			diags.Errorf(PosOf(f.Name, l.For.Pos), diag.Pos{}, "write [expr for i in a..b]", "a list comprehension takes exactly one expression before 'for'")
		}
	}, func(a *Arg) {
		if a.Second == nil {
			a.Value = a.First
			return
		}
		a.Value = a.Second
		if u := a.First.First; len(a.First.Rest) == 0 && u.Operand != nil && len(u.Operand.Suffixes) == 0 && u.Operand.Primary.Ident != "" {
			a.Name = u.Operand.Primary.Ident
			return
		}
		p := PosOf(f.Name, a.First.Pos)
		diags.Errorf(p, PosOf(f.Name, a.First.EndPos), "write name=value, where name is an attribute or operand of the op", "the left side of '=' in an argument must be a name")
	})
}

// visitArgs calls fn on every call argument and lists on every list in
// the file.
func visitArgs(f *File, lists func(*ListItems), fn func(*Arg)) {
	var expr func(e *Expr)
	var unary func(u *Unary)
	expr = func(e *Expr) {
		if e == nil {
			return
		}
		unary(e.First)
		for _, r := range e.Rest {
			unary(r.Operand)
		}
	}
	unary = func(u *Unary) {
		if u.X != nil {
			unary(u.X)
			return
		}
		p := u.Operand
		pr := p.Primary
		switch {
		case pr.If != nil:
			expr(pr.If.Cond)
			expr(pr.If.Then)
			expr(pr.If.Else)
		case pr.List != nil:
			lists(pr.List.Items)
			for _, e := range pr.List.Items.Elems {
				expr(e)
			}
			if pr.List.Items.For != nil {
				expr(pr.List.Items.For.From)
				expr(pr.List.Items.For.To)
			}
		case pr.Paren != nil:
			expr(pr.Paren)
		}
		for _, s := range p.Suffixes {
			if s.Call != nil {
				for _, a := range s.Call.Args {
					fn(a)
					expr(a.First)
					expr(a.Second)
				}
			}
			expr(s.Index)
		}
	}
	var stmts func([]*Stmt)
	var ifStmt func(*IfStmt)
	ifStmt = func(s *IfStmt) {
		expr(s.Cond)
		stmts(s.Then)
		if s.ElseIf != nil {
			ifStmt(s.ElseIf)
		}
		stmts(s.Else)
	}
	stmts = func(list []*Stmt) {
		for _, s := range list {
			switch {
			case s.For != nil:
				expr(s.For.From)
				expr(s.For.To)
				stmts(s.For.Body)
			case s.If != nil:
				ifStmt(s.If)
			case s.Return != nil:
				expr(s.Return.Value)
			case s.Assign != nil:
				expr(s.Assign.Value)
			}
		}
	}
	for _, b := range f.Blocks {
		switch {
		case b.Config != nil:
			for _, it := range b.Config.Items {
				switch {
				case it.Check != nil:
					expr(it.Check.Cond)
				case it.Named != nil && it.Named.Param != nil:
					expr(it.Named.Param.Default)
					if a := it.Named.Param.Accept; a != nil {
						expr(a.From)
						expr(a.To)
					}
					if it.Named.Param.From != nil {
						expr(it.Named.Param.From.Or)
					}
				case it.Named != nil && it.Named.Derived != nil:
					expr(it.Named.Derived.Value)
				}
			}
		case b.Weights != nil:
			for _, it := range b.Weights.Items {
				if it.Layers != nil {
					expr(it.Layers.From)
					expr(it.Layers.To)
					for _, w := range it.Layers.Weights {
						for _, d := range w.Dims {
							expr(d)
						}
						expr(w.When)
					}
				}
				if it.Weight != nil {
					for _, d := range it.Weight.Dims {
						expr(d)
					}
					expr(it.Weight.When)
				}
			}
		case b.Forward != nil:
			stmts(b.Forward.Body)
		}
	}
}
