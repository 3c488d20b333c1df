package tokenizer

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
)

// Compact lookup tables for the vocabulary and the merges. gpt-oss has
// 201k tokens and 446k merges; as Go maps they took about 25 MB of fresh
// memory, and on a VM where first touching a page costs ~10 µs, filling
// them was most of loading the tokenizer. These tables are flat, hold no
// pointers, and are sized once.

// vocabIndex finds a token's id by its bytes: open addressing with linear
// probing. Each slot holds the key's length and first 8 bytes, so that a
// lookup of a short token (most of them) reads one slot and nothing else:
// on this VM a cache and TLB miss costs ~100 ns, and the merges make
// about a million lookups at load.
//
// The hash is this package's own, seeded at random when the index is
// built (so that a crafted vocabulary cannot make the keys collide),
// rather than hash/maphash, whose seeds cannot be stored: the tokenizer
// cache (cache.go) keeps the slots, and with them the seed.
type vocabIndex struct {
	seed  uint64
	slots []vocabSlot
	mask  uint32
	keys  []string // by id; ids not indexed may hold anything
}

type vocabSlot struct {
	head uint64 // the key's first 8 bytes, little-endian, zero-padded
	id   int32  // id+1; 0 is empty
	n    uint32 // the key's length
}

// newVocabIndex makes an index for n keys; keys are added by insert.
func newVocabIndex(n int) vocabIndex {
	size := 2
	for size <= n+n/4 { // at most 80% full, and never full
		size <<= 1
	}
	return vocabIndex{seed: newSeed(), slots: make([]vocabSlot, size), mask: uint32(size - 1)}
}

// newSeed seeds a new vocabulary index; a test fixes it to compare the
// tables of two builds.
var newSeed = rand.Uint64

// hashKey hashes s, whose first 8 bytes are head: a multiply-and-fold per
// 8 bytes, as in wyhash. Most tokens are 8 bytes or shorter, one multiply.
func hashKey(seed uint64, s string, head uint64) uint64 {
	h := seed ^ uint64(len(s))*0x9E3779B97F4A7C15
	if len(s) > 8 {
		for len(s) > 8 {
			h = fold(h^binary.LittleEndian.Uint64([]byte(s[:8])), 0xe7037ed1a0b428db)
			s = s[8:]
		}
		head = head8(s)
	}
	return fold(h^head, 0xa0761d6478bd642f)
}

func fold(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

func head8(s string) uint64 {
	var b [8]byte
	copy(b[:], s)
	return binary.LittleEndian.Uint64(b[:])
}

// slot returns the slot holding s, or the empty slot where it would go.
func (x *vocabIndex) slot(s string) *vocabSlot {
	head := head8(s)
	pos := uint32(hashKey(x.seed, s, head)) & x.mask
	for {
		sl := &x.slots[pos]
		if sl.id == 0 || sl.head == head && sl.n == uint32(len(s)) && (len(s) <= 8 || x.keys[sl.id-1][8:] == s[8:]) {
			return sl
		}
		pos = (pos + 1) & x.mask
	}
}

// find returns the id whose bytes are s, or -1.
func (x *vocabIndex) find(s string) int32 {
	if len(x.slots) == 0 {
		return -1
	}
	return x.slot(s).id - 1
}

// insert indexes id under keys[id]. If another id has the same bytes it
// is returned and nothing changes; otherwise the result is -1.
func (x *vocabIndex) insert(id int32) int32 {
	s := x.keys[id]
	sl := x.slot(s)
	if sl.id != 0 {
		return sl.id - 1
	}
	*sl = vocabSlot{head: head8(s), id: id + 1, n: uint32(len(s))}
	return -1
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
