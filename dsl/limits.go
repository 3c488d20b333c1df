package dsl

import (
	"fmt"

	"github.com/minerva-ml/minerva/dsl/budget"
	"github.com/minerva-ml/minerva/dsl/diag"
)

// keywordsBeforeExpr are the keywords after which an expression starts, so
// that a '-' after them is a prefix operator, not a subtraction.
var keywordsBeforeExpr = map[string]bool{
	"if": true, "then": true, "else": true, "not": true, "and": true, "or": true,
	"return": true, "check": true, "when": true, "in": true, "from": true, "for": true,
}

// checkLimits scans the file once, before the parser sees it, for what
// would make the parser spend too much: its size, its token count, and
// its nesting depth (participle recurses once per level, so 100,000 '['
// overflow the stack).
//
// The depth it measures is an upper bound on the grammar's recursion: one
// level per open bracket, plus one per prefix operator ('-', 'not') and
// per 'if' (an if-expression, or an 'else if' link) that may still be open
// at that bracket level. Those end at the tokens an expression cannot
// contain (',', '=', ':') and after a block's '}' that no 'else' follows.
// It returns the number of tokens, or a diagnostic.
func checkLimits(name, src string, lim budget.Limits) (int, *diag.Diagnostic) {
	if len(src) > lim.SourceBytes {
		s := &archScanner{src: src[:lim.SourceBytes]}
		s.pos.Line, s.pos.Column = 1, 1
		s.advance(lim.SourceBytes)
		p := PosOf(name, s.pos)
		return 0, &diag.Diagnostic{Pos: p, Hint: budget.Hint,
			Message: fmt.Sprintf("the file goes on past the limit of %d bytes for an .arch file", lim.SourceBytes)}
	}
	s := &archScanner{src: src}
	s.pos.Line, s.pos.Column = 1, 1
	tokens := 0
	soft := []int{0} // prefix levels open at each bracket level
	depth := 0       // brackets plus every level's soft count
	operandEnded := false
	afterBlock := false
	for {
		tok, err := s.Next()
		if err != nil {
			// The parser reports lexical errors; skip the byte here.
			s.advance(1)
			operandEnded = false
			continue
		}
		if tok.EOF() {
			return tokens, nil
		}
		// Comments and whitespace count: the parser elides them, but
		// holds them all.
		tokens++
		if tokens > lim.Tokens {
			p := PosOf(name, tok.Pos)
			return 0, &diag.Diagnostic{Pos: p, Hint: budget.Hint,
				Message: fmt.Sprintf("the file goes on past the limit of %d tokens for an .arch file", lim.Tokens)}
		}
		if tok.Type == tokWhitespace || tok.Type == tokComment {
			continue
		}
		top := len(soft) - 1
		if afterBlock && tok.Value != "else" {
			depth -= soft[top]
			soft[top] = 0
		}
		afterBlock = false
		prefix := false
		switch tok.Type {
		case tokPunct:
			switch tok.Value {
			case "(", "[", "{":
				soft = append(soft, 0)
				depth++
			case ")", "]", "}":
				if top > 0 {
					depth -= 1 + soft[top]
					soft = soft[:top]
				}
				afterBlock = tok.Value == "}"
			case ",", "=", ":":
				depth -= soft[top]
				soft[top] = 0
			case "-":
				prefix = !operandEnded
			}
			operandEnded = tok.Value == ")" || tok.Value == "]" || tok.Value == "}"
		case tokIdent:
			prefix = tok.Value == "not" || tok.Value == "if"
			operandEnded = !keywordsBeforeExpr[tok.Value]
		default:
			operandEnded = true
		}
		if prefix {
			soft[len(soft)-1]++
			depth++
		}
		if depth > lim.Depth {
			p := PosOf(name, tok.Pos)
			end := p
			end.Col += len(tok.Value)
			end.Offset += len(tok.Value)
			return 0, &diag.Diagnostic{Pos: p, End: end, Hint: budget.Hint,
				Message: fmt.Sprintf("this is nested %d deep (brackets, prefix operators and if-expressions), past the limit of %d levels for an .arch file", depth, lim.Depth)}
		}
	}
}
