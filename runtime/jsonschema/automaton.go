package jsonschema

// The automaton is a pushdown machine over bytes. A State is an
// immutable stack of frames, so that stepping never changes the state it
// started from: the masker walks a trie of the vocabulary and branches
// the state at every node without copying it.

type frameKind uint8

const (
	fValue    frameKind = iota // a value of node n is next
	fLiterals                  // one of lits, pos bytes matched
	fString                    // inside a string, after the opening quote
	fNumber
	fObject    // a kindObject, phase ph
	fAnyObject // any object, phase ph
	fArray     // phase ph
	fHeads     // OneOf: lits are the heads still possible, pos bytes matched
)

// Object and array phases.
const (
	phOpen     = iota // after '{' or '['
	phAfter           // after a member or element
	phNeedNext        // after ','
	phKey             // object: matching keys (a kindObject) or after a key string (any object: ':' next)
)

// String phases.
const (
	strText = iota
	strEscape
	strHex // pos hex digits left
)

type frame struct {
	kind frameKind
	ph   uint8
	n    *Node
	// pos: literal bytes matched, UTF-8 continuation bytes owed (strings),
	// hex digits owed, the number's phase; next is the object's next
	// property index.
	pos, next int
	lits      [][]byte // fLiterals: candidates still possible
	keys      []int    // fObject in phKey: candidate properties
}

type cell struct {
	f    frame
	next *cell
}

// State is where the automaton is: nil is "the value is complete".
type State struct{ top *cell }

// Start is the state before the first byte of a value of n.
func Start(n *Node) State { return State{&cell{f: frame{kind: fValue, n: n}}} }

// Complete reports whether the bytes so far are a whole value.
func (s State) Complete() bool {
	return s.top == nil || (s.top.next == nil && canEnd(&s.top.f))
}

// Done reports whether no byte may follow.
func (s State) Done() bool { return s.top == nil }

// Step returns the state after b, or false if b may not come next.
func (s State) Step(b byte) (State, bool) {
	c, ok := step(s.top, b)
	return State{c}, ok
}

// Bytes steps through bs.
func (s State) Bytes(bs []byte) (State, bool) {
	c := s.top
	for _, b := range bs {
		var ok bool
		if c, ok = step(c, b); !ok {
			return State{}, false
		}
	}
	return State{c}, true
}

// canEnd: the frame holds a whole value if the next byte is not its own
// (a number's digits, a literal that is a prefix of another).
func canEnd(f *frame) bool {
	switch f.kind {
	case fNumber:
		switch f.pos {
		case numInt, numZero, numFrac, numExp:
			return true
		}
	case fLiterals:
		for _, l := range f.lits {
			if len(l) == f.pos {
				return true
			}
		}
	}
	return false
}

func push(next *cell, f frame) *cell { return &cell{f: f, next: next} }

var (
	openString = frame{kind: fString}
)

func step(c *cell, b byte) (*cell, bool) {
	if c == nil {
		return nil, false
	}
	f := c.f
	switch f.kind {
	case fValue:
		return startValue(f.n, c.next, b)
	case fLiterals:
		var alive [][]byte
		for _, l := range f.lits {
			if len(l) > f.pos && l[f.pos] == b {
				alive = append(alive, l)
			}
		}
		if len(alive) == 0 {
			if canEnd(&f) {
				return step(c.next, b)
			}
			return nil, false
		}
		f.lits, f.pos = alive, f.pos+1
		if len(alive) == 1 && len(alive[0]) == f.pos {
			return c.next, true
		}
		return push(c.next, f), true
	case fHeads:
		var alive [][]byte
		for _, l := range f.lits {
			if len(l) > f.pos && l[f.pos] == b {
				alive = append(alive, l)
			}
		}
		if len(alive) == 0 {
			return nil, false
		}
		f.lits, f.pos = alive, f.pos+1
		if len(alive) > 1 || len(alive[0]) != f.pos {
			return push(c.next, f), true
		}
		// The head is whole (heads are prefix-free): its body, then the
		// tail.
		rest := c.next
		if len(f.n.tail) > 0 {
			rest = push(rest, frame{kind: fLiterals, lits: [][]byte{f.n.tail}})
		}
		for i, h := range f.n.lits {
			if len(h) == f.pos && string(h) == string(alive[0]) && f.n.bodies != nil && f.n.bodies[i] != nil {
				return push(rest, frame{kind: fValue, n: f.n.bodies[i]}), true
			}
		}
		return rest, true
	case fString:
		return stepString(f, c.next, b)
	case fNumber:
		if p, ok := numStep(f.pos, b, f.n.kind == kindInteger); ok {
			if p == f.pos {
				f.next++ // one more digit in the same run
			} else {
				f.next = 1
			}
			if f.next <= maxDigits[p] {
				f.pos = p
				return push(c.next, f), true
			}
		}
		if canEnd(&f) {
			return step(c.next, b)
		}
		return nil, false
	case fObject:
		return stepObject(f, c.next, b)
	case fAnyObject:
		switch f.ph {
		case phOpen, phNeedNext:
			if b == '}' && f.ph == phOpen {
				return c.next, true
			}
			if b == '"' {
				f.ph = phKey
				return push(push(c.next, f), openString), true
			}
		case phKey:
			if b == ':' {
				f.ph = phAfter
				return push(push(c.next, f), frame{kind: fValue, n: anyNode}), true
			}
		case phAfter:
			switch b {
			case ',':
				f.ph = phNeedNext
				return push(c.next, f), true
			case '}':
				return c.next, true
			}
		}
		return nil, false
	case fArray:
		switch f.ph {
		case phOpen, phNeedNext:
			if b == ']' && f.ph == phOpen {
				return c.next, true
			}
			f.ph = phAfter
			return startValue(f.n.items, push(c.next, f), b)
		case phAfter:
			switch b {
			case ',':
				f.ph = phNeedNext
				return push(c.next, f), true
			case ']':
				return c.next, true
			}
		}
		return nil, false
	}
	return nil, false
}

var anyNode = &Node{kind: kindAny}

// startValue takes the first byte of a value of n; rest is what follows
// the value.
func startValue(n *Node, rest *cell, b byte) (*cell, bool) {
	switch n.kind {
	case kindString:
		if b == '"' {
			return push(rest, openString), true
		}
	case kindNumber, kindInteger:
		if p, ok := numStep(numStart, b, n.kind == kindInteger); ok {
			return push(rest, frame{kind: fNumber, n: n, pos: p, next: 1}), true
		}
	case kindLiterals, kindNull:
		return step(push(rest, frame{kind: fLiterals, lits: n.lits}), b)
	case kindHeads:
		return step(push(rest, frame{kind: fHeads, n: n, lits: n.lits}), b)
	case kindBool:
		return step(push(rest, frame{kind: fLiterals, lits: boolLits}), b)
	case kindObject:
		if b == '{' {
			return push(rest, frame{kind: fObject, n: n, ph: phOpen}), true
		}
	case kindAnyObject:
		if b == '{' {
			return push(rest, frame{kind: fAnyObject, ph: phOpen}), true
		}
	case kindArray:
		if b == '[' {
			return push(rest, frame{kind: fArray, n: n, ph: phOpen}), true
		}
	case kindAny:
		switch {
		case b == '"':
			return push(rest, openString), true
		case b == '-' || (b >= '0' && b <= '9'):
			return startValue(numberNode, rest, b)
		case b == '{':
			return push(rest, frame{kind: fAnyObject, ph: phOpen}), true
		case b == '[':
			return push(rest, frame{kind: fArray, n: anyArray, ph: phOpen}), true
		case b == 't' || b == 'f' || b == 'n':
			return step(push(rest, frame{kind: fLiterals, lits: anyLits}), b)
		}
	}
	return nil, false
}

var (
	numberNode = &Node{kind: kindNumber}
	anyArray   = &Node{kind: kindArray, items: anyNode}
	boolLits   = [][]byte{[]byte("true"), []byte("false")}
	anyLits    = [][]byte{[]byte("true"), []byte("false"), []byte("null")}
)

func stepString(f frame, rest *cell, b byte) (*cell, bool) {
	switch f.ph {
	case strText:
		if f.pos > 0 { // a UTF-8 continuation byte is owed
			if b&0xC0 != 0x80 {
				return nil, false
			}
			f.pos--
			return push(rest, f), true
		}
		switch {
		case b == '"':
			return rest, true
		case b == '\\':
			f.ph = strEscape
		case b < 0x20:
			return nil, false // control characters must be escaped
		case b < 0x80:
		case b >= 0xC2 && b <= 0xDF:
			f.pos = 1
		case b >= 0xE0 && b <= 0xEF:
			f.pos = 2
		case b >= 0xF0 && b <= 0xF4:
			f.pos = 3
		default:
			return nil, false // not a UTF-8 lead byte
		}
		return push(rest, f), true
	case strEscape:
		switch b {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			f.ph = strText
		case 'u':
			f.ph, f.pos = strHex, 4
		default:
			return nil, false
		}
		return push(rest, f), true
	case strHex:
		if !isHex(b) {
			return nil, false
		}
		f.pos--
		if f.pos == 0 {
			f.ph = strText
		}
		return push(rest, f), true
	}
	return nil, false
}

func isHex(b byte) bool {
	return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F')
}

// Number phases, after JSON's number grammar.
const (
	numStart   = iota
	numMinus   // after '-'
	numInt     // in the integer digits (not a leading zero)
	numZero    // after a leading 0
	numDot     // after '.'
	numFrac    // in the fraction digits
	numE       // after 'e'
	numExpSign // after the exponent's sign
	numExp     // in the exponent digits
)

// maxDigits bounds each run of digits, as llama.cpp's grammars bound
// integers: 15 integer and 15 fraction digits (more than a float64
// keeps) and 2 exponent digits (so every number fits a float64), so that
// a model cannot write digits until max_tokens.
var maxDigits = [...]int{numStart: 1, numMinus: 1, numInt: 15, numZero: 1, numDot: 1, numFrac: 15, numE: 1, numExpSign: 1, numExp: 2}

func numStep(p int, b byte, integer bool) (int, bool) {
	digit := b >= '0' && b <= '9'
	switch p {
	case numStart:
		switch {
		case b == '-':
			return numMinus, true
		case b == '0':
			return numZero, true
		case digit:
			return numInt, true
		}
	case numMinus:
		switch {
		case b == '0':
			return numZero, true
		case digit:
			return numInt, true
		}
	case numInt, numZero:
		switch {
		case digit && p == numInt:
			return numInt, true
		case b == '.' && !integer:
			return numDot, true
		case (b == 'e' || b == 'E') && !integer:
			return numE, true
		}
	case numDot, numFrac:
		switch {
		case digit:
			return numFrac, true
		case (b == 'e' || b == 'E') && p == numFrac:
			return numE, true
		}
	case numE:
		switch {
		case b == '+' || b == '-':
			return numExpSign, true
		case digit:
			return numExp, true
		}
	case numExpSign, numExp:
		if digit {
			return numExp, true
		}
	}
	return 0, false
}

// stepObject follows a kindObject: its properties in order, the
// required ones present.
func stepObject(f frame, rest *cell, b byte) (*cell, bool) {
	props := f.n.props
	// candidates: the properties that may come next, from f.next up to
	// the first required one.
	candidates := func() []int {
		var out []int
		for i := f.next; i < len(props); i++ {
			out = append(out, i)
			if props[i].required {
				break
			}
		}
		return out
	}
	mayClose := func() bool {
		for i := f.next; i < len(props); i++ {
			if props[i].required {
				return false
			}
		}
		return true
	}
	switch f.ph {
	case phOpen, phNeedNext:
		if b == '}' && f.ph == phOpen && mayClose() {
			return rest, true
		}
		f.ph, f.keys, f.pos = phKey, candidates(), 0
		return stepObject(f, rest, b)
	case phKey:
		var alive []int
		for _, k := range f.keys {
			if key := props[k].key; len(key) > f.pos && key[f.pos] == b {
				alive = append(alive, k)
			}
		}
		if len(alive) == 0 {
			return nil, false
		}
		f.keys, f.pos = alive, f.pos+1
		if len(alive) == 1 && len(props[alive[0]].key) == f.pos {
			k := alive[0]
			f.ph, f.next, f.keys, f.pos = phAfter, k+1, nil, 0
			return push(push(rest, f), frame{kind: fValue, n: props[k].node}), true
		}
		return push(rest, f), true
	case phAfter:
		switch {
		case b == ',' && f.next < len(props):
			f.ph = phNeedNext
			return push(rest, f), true
		case b == '}' && mayClose():
			return rest, true
		}
	}
	return nil, false
}
