package ir

import (
	"fmt"
	"strconv"
	"strings"
)

// Parse reads the canonical text form written by Print. Tests use it to
// build IR by hand; it checks syntax and references, and Verify checks the
// rest.
func Parse(text string) (*Func, error) {
	p := &irParser{lines: strings.Split(text, "\n")}
	f, err := p.parse()
	if err != nil {
		return nil, fmt.Errorf("ir:%d: %w", p.line, err)
	}
	return f, nil
}

type irParser struct {
	lines []string
	line  int // 1-based number of the current line
	f     *Func
	vals  map[string]*Value
}

func (p *irParser) next() (string, bool) {
	for p.line < len(p.lines) {
		s := strings.TrimSpace(p.lines[p.line])
		p.line++
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		return s, true
	}
	return "", false
}

func (p *irParser) parse() (*Func, error) {
	p.vals = map[string]*Value{}
	line, ok := p.next()
	if !ok {
		return nil, fmt.Errorf("empty input")
	}
	sc := newScanner(line)
	if sc.word() != "model" {
		return nil, fmt.Errorf("expected `model \"name\"`")
	}
	name, err := sc.str()
	if err != nil {
		return nil, err
	}
	p.f = &Func{Model: name}
	for {
		line, ok = p.next()
		if !ok {
			return nil, fmt.Errorf("missing `func forward`")
		}
		sc = newScanner(line)
		switch sc.word() {
		case "weight":
			if err := p.weight(sc); err != nil {
				return nil, err
			}
			continue
		case "func":
			if err := p.funcHeader(sc); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("expected `weight` or `func`, found %q", line)
		}
		break
	}
	for {
		line, ok = p.next()
		if !ok {
			return nil, fmt.Errorf("missing `}` at the end of the function")
		}
		if line == "}" {
			break
		}
		if strings.HasPrefix(line, "return ") {
			sc = newScanner(line[len("return "):])
			v, err := p.value(sc)
			if err != nil {
				return nil, err
			}
			p.f.Output = v
			continue
		}
		op, err := p.op(line, nil)
		if err != nil {
			return nil, err
		}
		p.f.Ops = append(p.f.Ops, op)
	}
	if p.f.Output == nil {
		return nil, fmt.Errorf("the function has no `return`")
	}
	return p.f, nil
}

func (p *irParser) weight(sc *scanner) error {
	ref := sc.token()
	if !strings.HasPrefix(ref, "@") || len(ref) < 2 {
		return fmt.Errorf("expected a weight name like @embed, found %q", ref)
	}
	t, err := sc.typ()
	if err != nil {
		return err
	}
	ckpt, err := sc.str()
	if err != nil {
		return err
	}
	w := &Weight{Name: ref[1:], DType: t.DType, Shape: t.Shape, Checkpoint: ckpt, Layer: -1}
	if sc.peekWord() == "layer" {
		sc.word()
		n, err := strconv.Atoi(sc.token())
		if err != nil {
			return fmt.Errorf("bad layer number: %v", err)
		}
		w.Layer = n
	}
	if p.f.Weight(w.Name) != nil {
		return fmt.Errorf("weight @%s declared twice", w.Name)
	}
	p.f.Weights = append(p.f.Weights, w)
	return sc.end()
}

func (p *irParser) funcHeader(sc *scanner) error {
	if sc.word() != "forward" || !sc.punct("(") {
		return fmt.Errorf("expected `func forward(%%0: i32[seq]) -> ...`")
	}
	ref := sc.token()
	if !sc.punct(":") {
		return fmt.Errorf("expected `:` after the input")
	}
	t, err := sc.typ()
	if err != nil {
		return err
	}
	if !sc.punct(")") || !sc.punct("->") {
		return fmt.Errorf("expected `) -> type {`")
	}
	if _, err := sc.typ(); err != nil {
		return err
	}
	if !sc.punct("{") {
		return fmt.Errorf("expected `{`")
	}
	p.f.Input = &Value{Type: t, Name: "tokens", Param: -1}
	return p.define(ref, p.f.Input, p.vals)
}

func (p *irParser) define(ref string, v *Value, scope map[string]*Value) error {
	if !strings.HasPrefix(ref, "%") || len(ref) < 2 {
		return fmt.Errorf("expected a value name like %%3, found %q", ref)
	}
	if _, dup := scope[ref]; dup {
		return fmt.Errorf("%s is defined twice", ref)
	}
	if n, err := strconv.Atoi(ref[1:]); err == nil {
		v.ID = n
		if n >= p.f.nextID {
			p.f.nextID = n + 1
		}
	}
	scope[ref] = v
	return nil
}

func (p *irParser) value(sc *scanner) (*Value, error) {
	ref := sc.token()
	v, ok := p.vals[ref]
	if !ok {
		return nil, fmt.Errorf("%s is not defined", ref)
	}
	return v, nil
}

// op parses one op line; body is non-nil inside a fused op, where it maps
// local names (%b0) and params ($0).
func (p *irParser) op(line string, body map[string]*Value) (*Op, error) {
	text, comment, _ := strings.Cut(line, "#")
	sc := newScanner(text)
	var results []string
	for {
		results = append(results, sc.token())
		if sc.punct(",") {
			continue
		}
		if !sc.punct("=") {
			return nil, fmt.Errorf("expected `=` after the results of %q", line)
		}
		break
	}
	op := &Op{Kind: OpKind(sc.word()), Layer: -1}
	def, ok := Lookup(op.Kind)
	if !ok {
		return nil, fmt.Errorf("unknown op %q", op.Kind)
	}
	for !sc.atEnd() && sc.peek() != "{" && sc.peek() != ":" {
		if len(op.Args) > 0 && !sc.punct(",") {
			return nil, fmt.Errorf("expected `,` between operands")
		}
		ref := sc.token()
		switch {
		case ref == "_":
			op.Args = append(op.Args, Arg{})
		case strings.HasPrefix(ref, "@"):
			w := p.f.Weight(ref[1:])
			if w == nil {
				return nil, fmt.Errorf("weight %s is not declared", ref)
			}
			op.Args = append(op.Args, Arg{W: w})
		default:
			v, ok := p.vals[ref]
			if body != nil {
				v, ok = body[ref]
			}
			if !ok {
				return nil, fmt.Errorf("%s is not defined", ref)
			}
			op.Args = append(op.Args, Arg{V: v})
		}
	}
	if sc.punct("{") {
		for !sc.punct("}") {
			if len(op.Attrs) > 0 && !sc.punct(",") {
				return nil, fmt.Errorf("expected `,` between attributes")
			}
			key := sc.word()
			if !sc.punct("=") {
				return nil, fmt.Errorf("expected `=` after attribute %s", key)
			}
			v, err := sc.attr(def.attr(key))
			if err != nil {
				return nil, fmt.Errorf("attribute %s: %w", key, err)
			}
			op.Attrs = append(op.Attrs, Attr{key, v})
			if sc.atEnd() {
				return nil, fmt.Errorf("missing `}` after the attributes")
			}
		}
	}
	if !sc.punct(":") {
		return nil, fmt.Errorf("expected `:` and the result types")
	}
	for i := range results {
		if i > 0 && !sc.punct(",") {
			return nil, fmt.Errorf("expected one type per result")
		}
		t, err := sc.typ()
		if err != nil {
			return nil, err
		}
		v := &Value{Type: t, Def: op, Param: -1}
		op.Results = append(op.Results, v)
	}
	hasBody := sc.punct("{")
	if err := sc.end(); err != nil {
		return nil, err
	}
	name, layer := parseComment(comment)
	for i, r := range op.Results {
		if i == 0 {
			r.Name = name
		}
		scope := p.vals
		if body != nil {
			scope = body
		}
		if err := p.define(results[i], r, scope); err != nil {
			return nil, err
		}
	}
	op.Layer = layer
	if hasBody {
		if err := p.body(op); err != nil {
			return nil, err
		}
	}
	return op, nil
}

func (p *irParser) body(op *Op) error {
	scope := map[string]*Value{}
	for i, a := range op.Args {
		if a.V != nil {
			scope["$"+strconv.Itoa(i)] = &Value{Type: a.V.Type, Param: i}
		}
	}
	for {
		line, ok := p.next()
		if !ok {
			return fmt.Errorf("fused op %s: missing `}`", op.Kind)
		}
		if strings.HasPrefix(line, "yield ") {
			sc := newScanner(line[len("yield "):])
			for !sc.atEnd() {
				if len(op.Yield) > 0 && !sc.punct(",") {
					return fmt.Errorf("expected `,` between yielded values")
				}
				ref := sc.token()
				v, ok := scope[ref]
				if !ok {
					return fmt.Errorf("yield of undefined %s", ref)
				}
				op.Yield = append(op.Yield, v)
			}
			if line, ok = p.next(); !ok || line != "}" {
				return fmt.Errorf("expected `}` after yield")
			}
			return nil
		}
		// Weights in a body are written as $n too; map them to the op's operand.
		bop, err := p.op(line, scope)
		if err != nil {
			return err
		}
		op.Body = append(op.Body, bop)
	}
}

func parseComment(c string) (name string, layer int) {
	layer = -1
	c = strings.TrimSpace(c)
	if i := strings.Index(c, "(layer "); i >= 0 {
		if n, err := strconv.Atoi(strings.TrimSuffix(c[i+len("(layer "):], ")")); err == nil {
			layer = n
		}
		c = strings.TrimSpace(c[:i])
	}
	return c, layer
}

// scanner splits one line into tokens.
type scanner struct {
	s   string
	pos int
}

func newScanner(s string) *scanner { return &scanner{s: s} }

func (s *scanner) skip() {
	for s.pos < len(s.s) && (s.s[s.pos] == ' ' || s.s[s.pos] == '\t') {
		s.pos++
	}
}

func (s *scanner) atEnd() bool { s.skip(); return s.pos >= len(s.s) }

func (s *scanner) end() error {
	if !s.atEnd() {
		return fmt.Errorf("unexpected %q", s.s[s.pos:])
	}
	return nil
}

func isWordByte(c byte) bool {
	return c == '_' || c == '.' || c == '%' || c == '$' || c == '@' || c == '-' || c == '+' ||
		(c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

// token returns the next word or punctuation mark.
func (s *scanner) token() string {
	s.skip()
	if s.pos >= len(s.s) {
		return ""
	}
	if strings.HasPrefix(s.s[s.pos:], "->") {
		s.pos += 2
		return "->"
	}
	start := s.pos
	if !isWordByte(s.s[s.pos]) {
		s.pos++
		return s.s[start:s.pos]
	}
	for s.pos < len(s.s) && isWordByte(s.s[s.pos]) {
		s.pos++
	}
	return s.s[start:s.pos]
}

func (s *scanner) peek() string {
	save := s.pos
	t := s.token()
	s.pos = save
	return t
}

func (s *scanner) word() string { return s.token() }

func (s *scanner) peekWord() string { return s.peek() }

func (s *scanner) punct(p string) bool {
	if s.peek() == p {
		s.token()
		return true
	}
	return false
}

func (s *scanner) str() (string, error) {
	s.skip()
	if s.pos >= len(s.s) || s.s[s.pos] != '"' {
		return "", fmt.Errorf("expected a string")
	}
	q, err := strconv.QuotedPrefix(s.s[s.pos:])
	if err != nil {
		return "", fmt.Errorf("bad string: %v", err)
	}
	s.pos += len(q)
	return strconv.Unquote(q)
}

func (s *scanner) typ() (Type, error) {
	// dtype[d, d, ...]: the dtype word ends at '['.
	s.skip()
	start := s.pos
	for s.pos < len(s.s) && s.s[s.pos] != '[' && s.s[s.pos] != ' ' {
		s.pos++
	}
	dt, ok := ParseDType(s.s[start:s.pos])
	if !ok {
		return Type{}, fmt.Errorf("unknown dtype %q", s.s[start:s.pos])
	}
	if !s.punct("[") {
		return Type{}, fmt.Errorf("expected `[` after the dtype")
	}
	var shape Shape
	for !s.punct("]") {
		if len(shape) > 0 && !s.punct(",") {
			return Type{}, fmt.Errorf("expected `,` between dimensions")
		}
		t := s.token()
		if t == "seq" {
			shape = append(shape, Seq)
			continue
		}
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil || n < 0 {
			return Type{}, fmt.Errorf("bad dimension %q", t)
		}
		shape = append(shape, n)
		if s.atEnd() {
			return Type{}, fmt.Errorf("missing `]`")
		}
	}
	return Type{DType: dt, Shape: shape}, nil
}

func (s *scanner) attr(def *AttrDef) (any, error) {
	s.skip()
	if s.pos < len(s.s) && s.s[s.pos] == '"' {
		return s.str()
	}
	t := s.token()
	switch t {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	if def == nil || def.Kind == IntAttr {
		if n, err := strconv.ParseInt(t, 10, 64); err == nil {
			return n, nil
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil {
		return nil, fmt.Errorf("bad value %q", t)
	}
	return f, nil
}
