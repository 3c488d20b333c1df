package jsonschema

import "unicode/utf8"

// Masker finds the tokens that may come next. Its vocabulary is a trie
// of the tokens' byte strings, built once per tokenizer: the walk steps
// the automaton once per trie edge, so tokens that share a prefix share
// its steps, and a byte the automaton refuses prunes every token under
// it. Inside a string, where almost every token is allowed, a table
// computed once (which tokens are plain string text: whole UTF-8
// characters, none a control character, '"' or '\\') lets those tokens
// through without a walk.
type Masker struct {
	// Trie nodes: children of node i are edges[first[i]:first[i+1]],
	// sorted by byte; ends[i] lists the tokens whose bytes end there.
	first []int32
	edges []edge
	ends  [][]int32
	// plain lists the tokens that are plain string text.
	plain []int32
	// plainRoot is the trie without the plain tokens, walked inside
	// strings.
	plainless *Masker
	vocab     int
}

type edge struct {
	b     byte
	child int32
}

// NewMasker builds the trie of a vocabulary: tokens[id] is the token's
// bytes, nil for ids that never appear in JSON text (special tokens, ids
// the tokenizer lacks).
func NewMasker(tokens [][]byte) *Masker {
	m := build(tokens, nil)
	isPlain := make([]bool, len(tokens))
	for id, t := range tokens {
		if len(t) == 0 {
			continue
		}
		p := utf8.Valid(t)
		for _, b := range t {
			if b < 0x20 || b == '"' || b == '\\' {
				p = false
				break
			}
		}
		if p {
			isPlain[id] = true
			m.plain = append(m.plain, int32(id))
		}
	}
	m.plainless = build(tokens, isPlain)
	return m
}

func build(tokens [][]byte, skip []bool) *Masker {
	// A pointer trie first, then flattened breadth-first.
	type node struct {
		kids map[byte]*node
		ends []int32
	}
	root := &node{}
	for id, t := range tokens {
		if len(t) == 0 || (skip != nil && skip[id]) {
			continue
		}
		n := root
		for _, b := range t {
			if n.kids == nil {
				n.kids = map[byte]*node{}
			}
			c := n.kids[b]
			if c == nil {
				c = &node{}
				n.kids[b] = c
			}
			n = c
		}
		n.ends = append(n.ends, int32(id))
	}
	m := &Masker{vocab: len(tokens)}
	queue := []*node{root}
	for i := 0; i < len(queue); i++ {
		n := queue[i]
		m.first = append(m.first, int32(len(m.edges)))
		m.ends = append(m.ends, n.ends)
		for b := 0; b < 256; b++ {
			if c := n.kids[byte(b)]; c != nil {
				m.edges = append(m.edges, edge{b: byte(b), child: int32(len(queue))})
				queue = append(queue, c)
			}
		}
	}
	m.first = append(m.first, int32(len(m.edges)))
	return m
}

// Allowed sets allow[id] for every token that may come next in state s
// (allow is cleared first, and has one entry per token).
func (m *Masker) Allowed(s State, allow []bool) {
	clear(allow)
	t := m
	if inPlainString(s) {
		for _, id := range m.plain {
			allow[id] = true
		}
		t = m.plainless
	}
	t.walk(0, s.top, allow)
}

// inPlainString: s is inside a string's text, where plain text may
// follow whatever it is (the string stays open).
func inPlainString(s State) bool {
	return s.top != nil && s.top.f.kind == fString && s.top.f.ph == strText && s.top.f.pos == 0
}

func (m *Masker) walk(n int32, c *cell, allow []bool) {
	for _, e := range m.edges[m.first[n]:m.first[n+1]] {
		next, ok := step(c, e.b)
		if !ok {
			continue
		}
		for _, id := range m.ends[e.child] {
			allow[id] = true
		}
		m.walk(e.child, next, allow)
	}
}
