package dsl

import (
	"fmt"
	"io"
	"strings"

	"github.com/alecthomas/participle/v2/lexer"
)

// Token types of the .arch lexer.
const (
	tokFloat lexer.TokenType = -(iota + 2)
	tokInt
	tokString
	tokIdent
	tokPunct
	tokWhitespace
	tokComment
)

// archLexer is a hand-written lexer: the regular-expression lexer
// participle offers spent a fifth of `minervac check` matching tokens.
// Whitespace and comments (# to end of line) are tokens that the parser
// elides: participle ends a node's span at the next raw token, so they
// make spans end where the node's text ends.
var archLexer = lexerDef{}

type lexerDef struct{}

func (lexerDef) Symbols() map[string]lexer.TokenType {
	return map[string]lexer.TokenType{
		"EOF": lexer.EOF, "Float": tokFloat, "Int": tokInt, "String": tokString, "Ident": tokIdent, "Punct": tokPunct,
		"Whitespace": tokWhitespace, "Comment": tokComment,
	}
}

func (d lexerDef) Lex(filename string, r io.Reader) (lexer.Lexer, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return d.LexString(filename, string(b))
}

func (d lexerDef) LexBytes(filename string, b []byte) (lexer.Lexer, error) {
	return d.LexString(filename, string(b))
}

func (lexerDef) LexString(filename string, s string) (lexer.Lexer, error) {
	return &archScanner{src: s, pos: lexer.Position{Filename: filename, Line: 1, Column: 1}}, nil
}

type archScanner struct {
	src string
	pos lexer.Position
}

// twoCharPunct are the operators of two characters.
var twoCharPunct = [...]string{"..", "==", "!=", "<=", ">="}

const oneCharPunct = "-+*/%(){}[],:=<>."

func (s *archScanner) advance(n int) {
	for i := 0; i < n; i++ {
		if s.src[s.pos.Offset] == '\n' {
			s.pos.Line++
			s.pos.Column = 1
		} else {
			s.pos.Column++
		}
		s.pos.Offset++
	}
}

func (s *archScanner) Next() (lexer.Token, error) {
	start := s.pos
	if s.pos.Offset >= len(s.src) {
		return lexer.EOFToken(start), nil
	}
	if c := s.src[s.pos.Offset]; c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '#' {
		n := 0
		rest := s.src[s.pos.Offset:]
		typ := tokWhitespace
		if c == '#' {
			typ = tokComment
			n = strings.IndexByte(rest, '\n')
			if n < 0 {
				n = len(rest)
			}
		} else {
			for n < len(rest) && (rest[n] == ' ' || rest[n] == '\t' || rest[n] == '\r' || rest[n] == '\n') {
				n++
			}
		}
		s.advance(n)
		return lexer.Token{Type: typ, Value: rest[:n], Pos: start}, nil
	}
	rest := s.src[s.pos.Offset:]
	c := rest[0]
	tok := func(t lexer.TokenType, n int) (lexer.Token, error) {
		s.advance(n)
		return lexer.Token{Type: t, Value: rest[:n], Pos: start}, nil
	}
	switch {
	case isDigit(c):
		n := 0
		for n < len(rest) && isDigit(rest[n]) {
			n++
		}
		float := false
		// A float needs digits after the point so that `0..layers` is a range.
		if n+1 < len(rest) && rest[n] == '.' && isDigit(rest[n+1]) {
			float = true
			n++
			for n < len(rest) && isDigit(rest[n]) {
				n++
			}
		}
		if n < len(rest) && (rest[n] == 'e' || rest[n] == 'E') {
			m := n + 1
			if m < len(rest) && (rest[m] == '+' || rest[m] == '-') {
				m++
			}
			if m < len(rest) && isDigit(rest[m]) {
				for m < len(rest) && isDigit(rest[m]) {
					m++
				}
				n, float = m, true
			}
		}
		if float {
			return tok(tokFloat, n)
		}
		return tok(tokInt, n)
	case c == '_' || isLetter(c):
		n := 1
		for n < len(rest) && (rest[n] == '_' || isLetter(rest[n]) || isDigit(rest[n])) {
			n++
		}
		return tok(tokIdent, n)
	case c == '"':
		n := 1
		for n < len(rest) {
			switch rest[n] {
			case '\\':
				n += 2
				continue
			case '"':
				return tok(tokString, n+1)
			case '\n':
				return lexer.Token{}, &lexer.Error{Msg: "string not closed before the end of the line", Pos: start}
			}
			n++
		}
		return lexer.Token{}, &lexer.Error{Msg: "string not closed before the end of the file", Pos: start}
	}
	for _, p := range twoCharPunct {
		if strings.HasPrefix(rest, p) {
			return tok(tokPunct, 2)
		}
	}
	if strings.IndexByte(oneCharPunct, c) >= 0 {
		return tok(tokPunct, 1)
	}
	return lexer.Token{}, &lexer.Error{Msg: fmt.Sprintf("invalid character %q", rest[:1]), Pos: start}
}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
