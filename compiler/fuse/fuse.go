// Package fuse rewrites the IR with declarative fusion rules (rules.fuse):
// each rule is a tree pattern over ops and the fused op that replaces a
// match. A fused op keeps the ops it replaced as its body, so its meaning
// is the body's, and every backend can check its fused kernel against it.
//
// On return from Apply every rule has been applied wherever it matches, in
// the order of the file: earlier rules win.
package fuse

import (
	_ "embed"
	"fmt"
	"sort"
	"strings"

	"github.com/minerva-ml/minerva/compiler/ir"
)

//go:embed rules.fuse
var rulesText string

// Rule is one fusion rule.
type Rule struct {
	Name    string
	Why     string
	Kind    ir.OpKind // the fused op
	Pattern *Node
	// Vars lists the pattern's variables in order of first appearance.
	// Each names one of the fused op's inputs (ir.OpDef.Inputs), which fix
	// the operands' order.
	Vars []string
	Text string
}

// Node is a pattern: an op with operand patterns, or a variable.
type Node struct {
	Op   ir.OpKind
	Args []*Node
	// Var is a variable's name, or the name an op is bound to ($h=op(...)).
	Var string
	// Optional variables also match an absent operand.
	Optional bool
	// Export lets the op's value be read outside the match.
	Export bool
	// Ref is a later mention of a named op.
	Ref bool
}

// Rules is the parsed rules file.
var Rules = mustParse(rulesText)

func mustParse(text string) []*Rule {
	rules, err := Parse(text)
	if err != nil {
		panic("BUG: rules.fuse: " + err.Error())
	}
	return rules
}

// Parse reads rules text.
func Parse(text string) ([]*Rule, error) {
	var rules []*Rule
	var why []string
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "":
			why = nil
			continue
		case strings.HasPrefix(line, "#"):
			why = append(why, strings.TrimSpace(strings.TrimPrefix(line, "#")))
			continue
		}
		r, err := parseRule(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n+1, err)
		}
		r.Why = strings.Join(why, " ")
		if r.Why == "" {
			return nil, fmt.Errorf("line %d: rule %s needs a comment that says why it exists", n+1, r.Name)
		}
		if err := checkOperands(r); err != nil {
			return nil, fmt.Errorf("line %d: %w", n+1, err)
		}
		why = nil
		rules = append(rules, r)
	}
	seen := map[string]bool{}
	for _, r := range rules {
		if seen[r.Name] {
			return nil, fmt.Errorf("rule %s is defined twice", r.Name)
		}
		seen[r.Name] = true
	}
	return rules, nil
}

func parseRule(line string) (*Rule, error) {
	name, rest, ok := strings.Cut(line, ":")
	if !ok {
		return nil, fmt.Errorf("expected `NAME: PATTERN => OP`")
	}
	pat, kind, ok := strings.Cut(rest, "=>")
	if !ok {
		return nil, fmt.Errorf("expected `=> OP` after the pattern")
	}
	r := &Rule{Name: strings.TrimSpace(name), Kind: ir.OpKind(strings.TrimSpace(kind)), Text: strings.TrimSpace(pat)}
	p := &patParser{s: r.Text, names: map[string]bool{}}
	node, err := p.node()
	if err != nil {
		return nil, err
	}
	if p.skip(); p.i != len(p.s) {
		return nil, fmt.Errorf("unexpected %q after the pattern", p.s[p.i:])
	}
	if node.Op == "" {
		return nil, fmt.Errorf("a pattern must be rooted at an op")
	}
	for _, n := range []ir.OpKind{node.Op, r.Kind} {
		if n == "" {
			return nil, fmt.Errorf("empty op name")
		}
	}
	r.Pattern, r.Vars = node, p.vars
	if err := checkOps(node); err != nil {
		return nil, err
	}
	return r, nil
}

// checkOperands checks a rule against its fused op's registry entry: every
// variable names an input, every required input is bound, a variable that
// may be absent binds an optional input, and a variable's uses in the
// pattern can be of the input's kind. So every rule that makes a kind
// gives it the same operands, by name, and consumers read them with
// op.Input.
func checkOperands(r *Rule) error {
	def, ok := ir.Lookup(r.Kind)
	if !ok || !def.Fused {
		return fmt.Errorf("%s is not a fused op of the registry (compiler/ir: fusedOps)", r.Kind)
	}
	uses := map[string][]ir.InputDef{}
	optional := map[string]bool{}
	var walk func(n *Node)
	walk = func(n *Node) {
		d, _ := ir.Lookup(n.Op)
		for i, a := range n.Args {
			switch {
			case a.Op != "":
				walk(a)
			case !a.Ref:
				uses[a.Var] = append(uses[a.Var], d.Inputs[i])
				optional[a.Var] = optional[a.Var] || a.Optional
			}
		}
	}
	walk(r.Pattern)
	bound := map[string]bool{}
	for _, v := range r.Vars {
		bound[v] = true
		i := def.InputIndex(v)
		if i < 0 {
			return fmt.Errorf("$%s is not an input of %s; its inputs are %s", v, r.Kind, inputNames(def))
		}
		in := def.Inputs[i]
		if optional[v] && !in.Optional {
			return fmt.Errorf("$%s? may be absent but input %s of %s is required", v, v, r.Kind)
		}
		for _, u := range uses[v] {
			if u.Kind != ir.AnyIn && in.Kind != ir.AnyIn && u.Kind != in.Kind {
				return fmt.Errorf("$%s is used as operand %s of an op that takes %s, but input %s of %s takes %s", v, u.Name, kindName(u.Kind), v, r.Kind, kindName(in.Kind))
			}
		}
	}
	for _, in := range def.Inputs {
		if !bound[in.Name] && !in.Optional {
			return fmt.Errorf("the pattern does not bind $%s, a required input of %s", in.Name, r.Kind)
		}
	}
	return nil
}

func inputNames(def *ir.OpDef) string {
	var out []string
	for _, in := range def.Inputs {
		out = append(out, in.Name)
	}
	return strings.Join(out, ", ")
}

func kindName(k ir.InputKind) string {
	return [...]string{ir.TensorIn: "an activation", ir.WeightIn: "a weight", ir.AnyIn: "an activation or a weight"}[k]
}

func checkOps(n *Node) error {
	if n.Op == "" {
		return nil
	}
	d, ok := ir.Lookup(n.Op)
	if !ok || d.Fused {
		return fmt.Errorf("pattern op %q is not a base op", n.Op)
	}
	if len(n.Args) != len(d.Inputs) {
		return fmt.Errorf("pattern op %s has %d operands; the op takes %d", n.Op, len(n.Args), len(d.Inputs))
	}
	for _, a := range n.Args {
		if err := checkOps(a); err != nil {
			return err
		}
	}
	return nil
}

type patParser struct {
	s     string
	i     int
	vars  []string
	names map[string]bool // op bindings
}

func (p *patParser) skip() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *patParser) word() string {
	p.skip()
	start := p.i
	for p.i < len(p.s) && (p.s[p.i] == '_' || p.s[p.i] >= 'a' && p.s[p.i] <= 'z' || p.s[p.i] >= '0' && p.s[p.i] <= '9' || p.s[p.i] >= 'A' && p.s[p.i] <= 'Z') {
		p.i++
	}
	return p.s[start:p.i]
}

func (p *patParser) peek(c byte) bool {
	p.skip()
	return p.i < len(p.s) && p.s[p.i] == c
}

func (p *patParser) node() (*Node, error) {
	if p.peek('$') {
		p.i++
		name := p.word()
		if name == "" {
			return nil, fmt.Errorf("expected a variable name after $")
		}
		if p.peek('=') {
			p.i++
			if p.names[name] {
				return nil, fmt.Errorf("$%s is bound twice", name)
			}
			p.names[name] = true
			n, err := p.node()
			if err != nil {
				return nil, err
			}
			if n.Op == "" {
				return nil, fmt.Errorf("$%s= must name an op", name)
			}
			n.Var = name
			return n, nil
		}
		n := &Node{Var: name}
		if p.names[name] {
			n.Ref = true
			return n, nil
		}
		if p.peek('?') {
			p.i++
			n.Optional = true
		}
		known := false
		for _, v := range p.vars {
			known = known || v == name
		}
		if !known {
			p.vars = append(p.vars, name)
		}
		return n, nil
	}
	op := p.word()
	if op == "" {
		return nil, fmt.Errorf("expected an op or a $variable at %q", p.s[p.i:])
	}
	n := &Node{Op: ir.OpKind(op)}
	if !p.peek('(') {
		return nil, fmt.Errorf("expected ( after %s", op)
	}
	p.i++
	for !p.peek(')') {
		if len(n.Args) > 0 {
			if !p.peek(',') {
				return nil, fmt.Errorf("expected , or ) in %s(...)", op)
			}
			p.i++
		}
		a, err := p.node()
		if err != nil {
			return nil, err
		}
		n.Args = append(n.Args, a)
	}
	p.i++
	if p.peek('!') {
		p.i++
		n.Export = true
	}
	return n, nil
}

// match is the state of one attempt. The matcher extends it in place and
// takes back what a failed branch added (log), rather than copying its maps
// at every step: the copies were a third of `minervac check`'s time.
type match struct {
	vars  map[string]ir.Arg
	named map[string]*ir.Op
	ops   []*ir.Op // matched ops, root first
	exp   map[*ir.Op]bool
	log   []undo
}

// undo takes back one binding: a variable, or a name for an op (with the
// op it named before, if any).
type undo struct {
	isVar bool
	name  string
	prev  *ir.Op
}

func newMatch() *match {
	return &match{vars: map[string]ir.Arg{}, named: map[string]*ir.Op{}, exp: map[*ir.Op]bool{}}
}

func (m *match) reset() {
	clear(m.vars)
	clear(m.named)
	clear(m.exp)
	m.ops, m.log = m.ops[:0], m.log[:0]
}

// mark is the state to roll back to: how many ops and bindings.
type mark struct{ ops, log int }

func (m *match) mark() mark { return mark{len(m.ops), len(m.log)} }

func (m *match) rollback(k mark) {
	for _, op := range m.ops[k.ops:] {
		delete(m.exp, op)
	}
	m.ops = m.ops[:k.ops]
	for i := len(m.log) - 1; i >= k.log; i-- {
		u := m.log[i]
		switch {
		case u.isVar:
			delete(m.vars, u.name)
		case u.prev != nil:
			m.named[u.name] = u.prev
		default:
			delete(m.named, u.name)
		}
	}
	m.log = m.log[:k.log]
}

func (m *match) has(op *ir.Op) bool {
	for _, o := range m.ops {
		if o == op {
			return true
		}
	}
	return false
}

// matchOp tries a pattern op against an op. It returns m extended, or
// nil with m as it was.
func matchOp(n *Node, op *ir.Op, m *match) *match {
	if op.Kind != n.Op || len(op.Args) != len(n.Args) || m.has(op) {
		return nil
	}
	start := m.mark()
	m.ops = append(m.ops, op)
	if n.Export {
		m.exp[op] = true
	}
	if n.Var != "" {
		m.log = append(m.log, undo{name: n.Var, prev: m.named[n.Var]})
		m.named[n.Var] = op
	}
	orders := 1
	if d, _ := ir.Lookup(op.Kind); d.Commutative && len(n.Args) == 2 {
		orders = 2 // the operands swapped too
	}
	for swap := 0; swap < orders; swap++ {
		args := m.mark()
		ok := true
		for i, a := range n.Args {
			if swap == 1 {
				i = 1 - i
			}
			if matchArg(a, op.Args[i], m) == nil {
				ok = false
				break
			}
		}
		if ok {
			return m
		}
		m.rollback(args)
	}
	m.rollback(start)
	return nil
}

// matchArg tries a pattern operand against an argument, as matchOp.
func matchArg(n *Node, a ir.Arg, m *match) *match {
	switch {
	case n.Ref:
		op := m.named[n.Var]
		if a.V == nil || a.V.Def != op {
			return nil
		}
		return m
	case n.Op != "":
		if a.V == nil || a.V.Def == nil {
			return nil
		}
		return matchOp(n, a.V.Def, m)
	}
	if a.IsNone() && !n.Optional {
		return nil
	}
	if prev, ok := m.vars[n.Var]; ok {
		if prev != a {
			return nil
		}
		return m
	}
	m.vars[n.Var] = a
	m.log = append(m.log, undo{isVar: true, name: n.Var})
	return m
}

// Apply runs every rule over f and returns how often each fired.
func Apply(f *ir.Func, rules []*Rule) map[string]int {
	fired := map[string]int{}
	var p *pass // built at the first match
	m := newMatch()
	for _, r := range rules {
		changed := false
		for i := 0; i < len(f.Ops); i++ {
			op := f.Ops[i]
			if op == nil || op.Kind != r.Pattern.Op {
				continue
			}
			m.reset()
			if matchOp(r.Pattern, op, m) == nil || !fits(r, m) {
				continue
			}
			if p == nil {
				p = newPass(f)
			}
			if !p.legal(f, m) {
				continue
			}
			p.replace(f, r, m)
			fired[r.Name]++
			changed = true
		}
		if !changed {
			continue
		}
		// Fused ops took their roots' places and left the other
		// matched ops as holes: close them once per rule, not per match.
		ops := f.Ops[:0]
		for _, op := range f.Ops {
			if op != nil {
				p.index[op] = len(ops)
				ops = append(ops, op)
			}
		}
		f.Ops = ops
	}
	f.Renumber()
	return fired
}

// pass is what Apply knows about the ops: each live op's index in f.Ops
// and, for each value, the ops that read it in program order. Each match
// is then checked and replaced in time proportional to its own size, not
// to the program's: Apply is linear, where a scan of every op per match
// made an .arch of 12000 ops take seconds to check.
type pass struct {
	index   map[*ir.Op]int         // live ops; a dead op keeps a stale index
	readers map[*ir.Value][]*ir.Op // ascending index once dead ops are dropped
	dead    map[*ir.Op]bool        // ops a fused op replaced
}

func newPass(f *ir.Func) *pass {
	p := &pass{index: make(map[*ir.Op]int, len(f.Ops)), readers: make(map[*ir.Value][]*ir.Op, len(f.Ops)), dead: map[*ir.Op]bool{}}
	for i, op := range f.Ops {
		p.index[op] = i
		for _, a := range op.Args {
			if a.V == nil {
				continue
			}
			if rs := p.readers[a.V]; len(rs) == 0 || rs[len(rs)-1] != op {
				p.readers[a.V] = append(rs, op)
			}
		}
	}
	return p
}

// live returns v's readers that have not been fused away, dropping the
// others from the list for good.
func (p *pass) live(v *ir.Value) []*ir.Op {
	rs := p.readers[v]
	out := rs[:0]
	for _, op := range rs {
		if !p.dead[op] {
			out = append(out, op)
		}
	}
	p.readers[v] = out
	return out
}

// legal checks that fusing the match keeps the program correct: its
// operands come from outside it, ops inside the match are read only inside
// it (or are exported), exported values are first read after the fused
// op's position, and the output is not hidden.
func (p *pass) legal(f *ir.Func, m *match) bool {
	root := m.ops[0]
	inside := make(map[*ir.Op]bool, len(m.ops))
	for _, op := range m.ops {
		inside[op] = true
	}
	// An operand of the fused op must come from outside it: in
	// `y = linear(x, w); y + y`, linear_add's $residual would be the
	// linear's own result.
	for _, a := range m.vars {
		if a.V != nil && inside[a.V.Def] {
			return false
		}
	}
	for _, o := range m.ops[1:] {
		for _, r := range o.Results {
			if r == f.Output && !m.exp[o] {
				return false
			}
			// Readers are in program order, so the first one outside
			// the match decides: a read from outside is allowed only of
			// an exported value, and only after the fused op will have
			// produced it.
			for _, x := range p.live(r) {
				if inside[x] {
					continue
				}
				if !m.exp[o] || p.index[x] < p.index[root] {
					return false
				}
				break
			}
		}
	}
	return true
}

// replace swaps the matched ops for the fused op, which takes the root's
// index; the other matched ops leave holes (nil) that Apply closes.
func (p *pass) replace(f *ir.Func, r *Rule, m *match) {
	root := m.ops[0]
	at := p.index[root]
	fused := &ir.Op{Kind: r.Kind, Layer: root.Layer, Pos: root.Pos, End: root.End}
	params := map[*ir.Value]*ir.Value{}
	// The operands in the registry's order; an optional input the rule
	// does not bind stays absent.
	for _, in := range ir.MustLookup(r.Kind).Inputs {
		a := m.vars[in.Name]
		if a.V != nil {
			if _, dup := params[a.V]; !dup {
				params[a.V] = &ir.Value{Type: a.V.Type, Name: a.V.Name, Param: len(fused.Args)}
			}
		}
		fused.Args = append(fused.Args, a)
	}
	// The body: matched ops in program order, over the parameters.
	ordered := append([]*ir.Op(nil), m.ops...)
	sort.Slice(ordered, func(i, j int) bool { return p.index[ordered[i]] < p.index[ordered[j]] })
	clones := map[*ir.Value]*ir.Value{}
	for _, op := range ordered {
		c := &ir.Op{Kind: op.Kind, Attrs: append(ir.Attrs(nil), op.Attrs...), Layer: op.Layer, Pos: op.Pos, End: op.End}
		for _, a := range op.Args {
			switch {
			case a.V != nil && clones[a.V] != nil:
				c.Args = append(c.Args, ir.Arg{V: clones[a.V]})
			case a.V != nil:
				pv, ok := params[a.V]
				if !ok {
					panic(fmt.Sprintf("BUG: rule %s: an operand of %s is neither a variable nor inside the match", r.Name, op.Kind))
				}
				c.Args = append(c.Args, ir.Arg{V: pv})
			default:
				c.Args = append(c.Args, a)
			}
		}
		for _, res := range op.Results {
			v := &ir.Value{Type: res.Type, Name: res.Name, Def: c, Param: -1}
			clones[res] = v
			c.Results = append(c.Results, v)
		}
		fused.Body = append(fused.Body, c)
	}
	// Results: the root's, then exported values in pattern order.
	out := append([]*ir.Op{root}, exported(m)...)
	for _, op := range out {
		for _, res := range op.Results {
			res.Def = fused
			fused.Results = append(fused.Results, res)
			fused.Yield = append(fused.Yield, clones[res])
		}
	}
	for _, op := range m.ops {
		p.dead[op] = true
		f.Ops[p.index[op]] = nil
	}
	f.Ops[at] = fused
	p.index[fused] = at
	// The fused op reads its operands at the root's index.
	for _, a := range fused.Args {
		if a.V != nil {
			p.addReader(a.V, fused, at)
		}
	}
}

// addReader inserts op, at index at, into v's readers in program order.
func (p *pass) addReader(v *ir.Value, op *ir.Op, at int) {
	rs := p.live(v)
	i := sort.Search(len(rs), func(i int) bool { return p.index[rs[i]] > at })
	if i > 0 && rs[i-1] == op {
		return
	}
	rs = append(rs, nil)
	copy(rs[i+1:], rs[i:])
	rs[i] = op
	p.readers[v] = rs
}

// fits checks that each operand is of its input's kind: a variable that
// an elementwise op binds may be an activation or a weight, but the fused
// op's input may take only one of them.
func fits(r *Rule, m *match) bool {
	def := ir.MustLookup(r.Kind)
	for _, in := range def.Inputs {
		a := m.vars[in.Name]
		if in.Kind == ir.TensorIn && a.W != nil || in.Kind == ir.WeightIn && a.V != nil {
			return false
		}
	}
	return true
}

func exported(m *match) []*ir.Op {
	var out []*ir.Op
	for _, op := range m.ops[1:] {
		if m.exp[op] {
			out = append(out, op)
		}
	}
	return out
}
