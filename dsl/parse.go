package dsl

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"

	"github.com/minerva-ml/minerva/dsl/budget"
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
		// Not participle.Unquote: it appends a character at a time to a
		// string, quadratic in the literal's length (50 KB took a second).
		participle.Map(unquoteString, "String"),
		// No lookahead: once a branch has read a token it is committed, so a
		// mistake is reported at the token that is wrong rather than where the
		// parser last backtracked to. The grammar is LL(1) for this reason.
		participle.UseLookahead(0),
	)
}

// maxSyntaxErrors bounds error recovery; past it the file is too broken for
// more messages to help.
const maxSyntaxErrors = 20

// recoveryTokens bounds the work of error recovery, which parses the file
// again after each error: it stops once the next attempt would take the
// tokens parsed in all past this many budget.Limits.Tokens.
const recoveryTokens = 2

// Parse reads one .arch file within the default limits (see ParseWithin).
func Parse(name, src string) (*File, error) {
	return ParseWithin(name, src, budget.Limits{})
}

// ParseWithin reads one .arch file. On syntax errors it returns every error
// it can find, sorted by position: after each error it blanks the offending
// line and parses again, so one typo yields one message rather than a
// cascade. A file past the limits on size, tokens or nesting depth (zero
// fields take the defaults) is refused before the parser runs.
func ParseWithin(name, src string, lim budget.Limits) (*File, error) {
	lim = lim.WithDefaults()
	var diags diag.List
	diags.AddSource(name, src)
	tokens, d := checkLimits(name, src, lim)
	if d != nil {
		diags.Add(*d)
		return nil, diags.Err()
	}
	text := []byte(src)
	if f, ok := fastParse(name, src); ok {
		f.Name, f.Source = name, src
		resolve(f, &diags)
		if diags.Len() > 0 {
			return nil, diags.Err()
		}
		return f, nil
	}
	// The file has a syntax error: participle finds and words it.
	blanked := map[int]bool{} // lines already removed by recovery
	for attempt := 0; attempt < maxSyntaxErrors; attempt++ {
		if attempt > 0 && (attempt+1)*tokens > recoveryTokens*lim.Tokens {
			break
		}
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
		if kd, fixed, ok := unknownKeyword(name, text, err); ok {
			// A word used as a keyword the language does not have: one
			// message, and the construct it starts is skipped whole so
			// that its body does not report again.
			diags.Add(kd)
			text = fixed
			continue
		}
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
		// Blanking a line can join what it separated (the prefix
		// operators of two lines, say) into deeper nesting: the text to
		// parse next must pass the same check.
		if _, d := checkLimits(name, string(text), lim); d != nil {
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
		case b.Def != nil:
			stmts(b.Def.Body)
		}
	}
}

// keywordHints say what to write instead of a keyword from another
// language.
var keywordHints = map[string]string{
	"function": "a function is `def name(params) { ... return expr }`, at the top level",
	"fn":       "a function is `def name(params) { ... return expr }`, at the top level",
	"func":     "a function is `def name(params) { ... return expr }`, at the top level",
	"fun":      "a function is `def name(params) { ... return expr }`, at the top level",
	"define":   "a function is `def name(params) { ... return expr }`, at the top level",
	"let":      "assign with `name = expr`: names need no declaration",
	"var":      "assign with `name = expr`: names need no declaration",
	"val":      "assign with `name = expr`: names need no declaration",
	"const":    "assign with `name = expr`: names need no declaration",
	"while":    "loops are `for i in a..b { ... }`, unrolled at compile time",
	"loop":     "loops are `for i in a..b { ... }`, unrolled at compile time",
	"repeat":   "loops are `for i in a..b { ... }`, unrolled at compile time",
	"elif":     "write `else if`",
	"elsif":    "write `else if`",
	"elseif":   "write `else if`",
	"import":   "an .arch file is self-contained: it imports nothing",
	"include":  "an .arch file is self-contained: it includes nothing",
}

// assignRest matches the rest of `let x = e` after the word: `x = e`.
// Compiled on first use: only a file with an error needs it.
var assignRest = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^\s*[A-Za-z_][A-Za-z_0-9]*\s*=[^=]`)
})

var (
	topKeywords  = []string{"model", "config", "weights", "forward", "def"}
	stmtKeywords = []string{"for", "if", "else", "return"}
)

// unknownKeyword recognises a word used as a keyword: a name where a block
// must start (at the top level), or a name followed by another name at the
// start of a statement (`let x = ...`, `while c {`). It returns the
// diagnostic and the text with the construct blanked: the whole block
// when the line opens one, otherwise the word alone (so `let x = e` still
// binds x and later uses do not report).
func unknownKeyword(file string, text []byte, err error) (diag.Diagnostic, []byte, bool) {
	var ut *participle.UnexpectedTokenError
	if !errors.As(err, &ut) || ut.Unexpected.EOF() || ut.Unexpected.Type != tokIdent {
		return diag.Diagnostic{}, nil, false
	}
	tok := ut.Unexpected
	off := tok.Pos.Offset
	if off > len(text) {
		return diag.Diagnostic{}, nil, false
	}
	lineStart := bytes.LastIndexByte(text[:off], '\n') + 1
	depth, block := braceDepth(text[:lineStart])
	before := strings.TrimSpace(string(text[lineStart:off]))
	var word string
	var wordOff int
	valid := stmtKeywords
	switch {
	case depth == 0 && before == "":
		word, wordOff, valid = tok.Value, off, topKeywords
	case depth > 0 && (block == "forward" || block == "def") && isIdent(before),
		depth > 0 && keywordHints[before] != "":
		word, wordOff = before, lineStart+bytes.Index(text[lineStart:off], []byte(before))
	default:
		return diag.Diagnostic{}, nil, false
	}
	for _, k := range append(topKeywords, stmtKeywords...) {
		if word == k {
			return diag.Diagnostic{}, nil, false
		}
	}
	pos := toPos(tok.Pos)
	pos.File = file
	pos.Col -= off - wordOff
	pos.Offset = wordOff
	end := pos
	end.Col += len(word)
	end.Offset += len(word)
	hint := keywordHints[word]
	if block == "config" && strings.HasPrefix(hint, "assign") {
		hint = "a parameter is `name: type = default from \"key\"`, a derived value `name = expr`"
	}
	if hint == "" {
		hint = diag.DidYouMean(word, valid)
	}
	if hint == "" {
		hint = "the keywords here are " + strings.Join(valid, ", ")
	}
	d := diag.Diagnostic{Pos: pos, End: end, Message: fmt.Sprintf("unknown keyword '%s'", word), Hint: hint}

	out := append([]byte(nil), text...)
	lineEnd := bytes.IndexByte(out[lineStart:], '\n')
	if lineEnd < 0 {
		lineEnd = len(out)
	} else {
		lineEnd += lineStart
	}
	from, to := wordOff, wordOff+len(word)
	if open := bytes.IndexByte(out[lineStart:lineEnd], '{'); open >= 0 {
		// Skip the block: from the word to its closing brace.
		from, to = wordOff, matchingBrace(out, lineStart+open)
	} else if depth == 0 || !assignRest().Match(out[wordOff+len(word):lineEnd]) {
		// Keep the rest of the line only when it is an assignment.
		from, to = lineStart, lineEnd
	}
	for i := from; i < to && i < len(out); i++ {
		if out[i] != '\n' {
			out[i] = ' '
		}
	}
	return d, out, true
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || unicode.IsLetter(r) || (i > 0 && unicode.IsDigit(r))) {
			return false
		}
	}
	return true
}

// braceDepth counts the braces open at the end of text, outside strings
// and comments, and names the top-level block they are in by its first
// word ("forward", "def", "config", ...).
func braceDepth(text []byte) (int, string) {
	depth, block := 0, ""
	inString, inComment := false, false
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case inComment:
			inComment = c != '\n'
		case inString:
			if c == '\\' {
				i++
			} else if c == '"' || c == '\n' {
				inString = false
			}
		case c == '#':
			inComment = true
		case c == '"':
			inString = true
		case c == '{':
			if depth == 0 {
				start := bytes.LastIndexByte(text[:i], '\n') + 1
				block = strings.TrimSpace(string(text[start:i]))
				if f := strings.FieldsFunc(block, func(r rune) bool { return !isIdent(string(r)) }); len(f) > 0 {
					block = f[0]
				}
			}
			depth++
		case c == '}':
			depth--
		}
	}
	return depth, block
}

// matchingBrace returns the offset just past the brace that closes the one
// at open, or the end of the text.
func matchingBrace(text []byte, open int) int {
	depth := 0
	for i := open; i < len(text); i++ {
		switch text[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return len(text)
}

// unquoteString is participle.Unquote's mapping, with the same result and
// error, built in linear time.
func unquoteString(t lexer.Token) (lexer.Token, error) {
	s := t.Value
	quote := s[0]
	s = s[1 : len(s)-1]
	var b strings.Builder
	b.Grow(len(s))
	for s != "" {
		value, _, tail, err := strconv.UnquoteChar(s, quote)
		if err != nil {
			return t, participle.Errorf(t.Pos, "invalid quoted string %q: %s", t.Value, err.Error())
		}
		s = tail
		b.WriteString(string(value))
	}
	t.Value = b.String()
	return t, nil
}
