package jsonschema

import (
	"bytes"
	"sort"
	"unicode/utf8"
)

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
	// The tokens sorted by bytes: each token shares a prefix with the
	// one before it, and its new nodes are the last children of that
	// prefix's nodes. Node 0 is the root.
	ids := make([]int32, 0, len(tokens))
	for id, t := range tokens {
		if len(t) > 0 && (skip == nil || !skip[id]) {
			ids = append(ids, int32(id))
		}
	}
	sort.Slice(ids, func(a, b int) bool {
		if c := bytes.Compare(tokens[ids[a]], tokens[ids[b]]); c != 0 {
			return c < 0
		}
		return ids[a] < ids[b]
	})
	type node struct {
		b           byte
		first, last int32 // children, -1 for none
		sibling     int32
	}
	nodes := []node{{first: -1, last: -1, sibling: -1}}
	ends := [][]int32{nil}
	var path []int32 // path[d] is the node of the previous token's byte d
	var prev []byte
	for _, id := range ids {
		t := tokens[id]
		l := 0
		for l < len(t) && l < len(prev) && t[l] == prev[l] {
			l++
		}
		path = path[:l]
		for d := l; d < len(t); d++ {
			parent := int32(0)
			if d > 0 {
				parent = path[d-1]
			}
			n := int32(len(nodes))
			nodes = append(nodes, node{b: t[d], first: -1, last: -1, sibling: -1})
			ends = append(ends, nil)
			if nodes[parent].last >= 0 {
				nodes[nodes[parent].last].sibling = n
			} else {
				nodes[parent].first = n
			}
			nodes[parent].last = n
			path = append(path, n)
		}
		end := path[len(t)-1]
		ends[end] = append(ends[end], id)
		prev = t
	}
	// Flatten: the children of node i are edges[first[i]:first[i+1]],
	// sorted by byte (the insertion order).
	m := &Masker{vocab: len(tokens), first: make([]int32, len(nodes)+1), ends: ends}
	m.edges = make([]edge, 0, len(nodes))
	for i := range nodes {
		m.first[i] = int32(len(m.edges))
		for c := nodes[i].first; c >= 0; c = nodes[c].sibling {
			m.edges = append(m.edges, edge{b: nodes[c].b, child: c})
		}
	}
	m.first[len(nodes)] = int32(len(m.edges))
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
