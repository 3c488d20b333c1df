package tokenizer

import "hash/maphash"

// Compact lookup tables for the vocabulary and the merges. gpt-oss has
// 201k tokens and 446k merges; as Go maps they took about 25 MB of fresh
// memory, and on a VM where first touching a page costs ~10 µs, filling
// them was most of loading the tokenizer. These tables are flat, hold no
// pointers, and are sized once.

// idBits is how many bits of a vocabIndex slot hold id+1 (maxID is 1<<22,
// so id+1 needs 23); the rest hold a tag from the hash that rules out
// most mismatches without touching the token's bytes.
const idBits = 23

// vocabIndex finds a token's id by its bytes: open addressing with linear
// probing over keys, the bytes of each id.
type vocabIndex struct {
	seed  maphash.Seed
	slots []uint32 // tag<<idBits | id+1; 0 is empty
	mask  uint32
	keys  []string // by id; ids not indexed may hold anything
}

// newVocabIndex makes an index for n keys; keys are added by insert.
func newVocabIndex(n int) vocabIndex {
	size := 2
	for size < 2*n {
		size <<= 1
	}
	return vocabIndex{seed: maphash.MakeSeed(), slots: make([]uint32, size), mask: uint32(size - 1)}
}

func (x *vocabIndex) hash(s string) (pos, tag uint32) {
	h := maphash.String(x.seed, s)
	return uint32(h) & x.mask, uint32(h >> (64 - (32 - idBits)))
}

// find returns the id whose bytes are s, or -1.
func (x *vocabIndex) find(s string) int32 {
	if len(x.slots) == 0 {
		return -1
	}
	pos, tag := x.hash(s)
	for {
		v := x.slots[pos]
		if v == 0 {
			return -1
		}
		if v>>idBits == tag {
			if id := int32(v&(1<<idBits-1)) - 1; x.keys[id] == s {
				return id
			}
		}
		pos = (pos + 1) & x.mask
	}
}

// insert indexes id under keys[id]. If another id has the same bytes it
// is returned and nothing changes; otherwise the result is -1.
func (x *vocabIndex) insert(id int32) int32 {
	s := x.keys[id]
	pos, tag := x.hash(s)
	for {
		v := x.slots[pos]
		if v == 0 {
			x.slots[pos] = tag<<idBits | uint32(id+1)
			return -1
		}
		if v>>idBits == tag {
			if old := int32(v&(1<<idBits-1)) - 1; x.keys[old] == s {
				return old
			}
		}
		pos = (pos + 1) & x.mask
	}
}

// mergeTable maps a pair of adjacent ids to the rank of merging them and
// the merged id. The merges are stored by rank; slots hash the pairs.
type mergeTable struct {
	merges []mergeEntry // by rank
	slots  []uint32     // rank+1 of the pair hashed here; 0 is empty
	shift  uint
}

type mergeEntry struct{ left, right, merged int32 }

// index builds the slots from merges. A pair listed twice keeps its last
// rank, as in tokenizers.
func (m *mergeTable) index() {
	bits := uint(1)
	for 1<<bits < 2*len(m.merges) {
		bits++
	}
	m.slots = make([]uint32, 1<<bits)
	m.shift = 64 - bits
	mask := uint32(len(m.slots) - 1)
	for rank := range m.merges {
		e := &m.merges[rank]
		pos := m.pos(e.left, e.right)
		for {
			v := m.slots[pos]
			if v == 0 {
				break
			}
			if o := &m.merges[v-1]; o.left == e.left && o.right == e.right {
				break
			}
			pos = (pos + 1) & mask
		}
		m.slots[pos] = uint32(rank + 1)
	}
}

func (m *mergeTable) pos(left, right int32) uint32 {
	k := uint64(uint32(left))<<32 | uint64(uint32(right))
	return uint32((k * 0x9E3779B97F4A7C15) >> m.shift)
}

// lookup returns the rank of merging left and right and the merged id, or
// noRank when the pair does not merge.
func (m *mergeTable) lookup(left, right int32) (rank, merged int32) {
	if len(m.slots) == 0 {
		return noRank, -1
	}
	mask := uint32(len(m.slots) - 1)
	pos := m.pos(left, right)
	for {
		v := m.slots[pos]
		if v == 0 {
			return noRank, -1
		}
		if e := &m.merges[v-1]; e.left == left && e.right == right {
			return int32(v - 1), e.merged
		}
		pos = (pos + 1) & mask
	}
}
