package tokenizer

import "math"

// GPT-2's byte-level alphabet. Byte-level BPE vocabularies spell every byte
// as a printable character so that vocab files stay readable: the printable
// Latin-1 bytes stand for themselves and the other 68 bytes are shifted to
// U+0100..U+0143 in byte order (so ' ' is written 'Ġ' and '\n' is 'Ċ').
// Encoding works on raw bytes throughout; these tables only translate the
// vocabulary's spelling.
var (
	byteToRune [256]rune
	runeToByte [0x144]int16 // -1 for runes that stand for no byte
)

func init() {
	for i := range runeToByte {
		runeToByte[i] = -1
	}
	shifted := rune(0x100)
	for b := 0; b < 256; b++ {
		if ('!' <= b && b <= '~') || (0xA1 <= b && b <= 0xAC) || (0xAE <= b && b <= 0xFF) {
			byteToRune[b] = rune(b)
		} else {
			byteToRune[b] = shifted
			shifted++
		}
		runeToByte[byteToRune[b]] = int16(b)
	}
}

// appendSpellingBytes appends the bytes a vocabulary spelling stands for.
// ok is false when the spelling has a character outside the byte-level
// alphabet; such a token can never come out of byte-level pre-tokenization,
// and the ByteLevel decoder then emits its UTF-8 text unchanged.
func appendSpellingBytes(dst []byte, spelling string) (out []byte, ok bool) {
	for _, r := range spelling {
		if r < 0 || int(r) >= len(runeToByte) || runeToByte[r] < 0 {
			return dst, false
		}
		dst = append(dst, byte(runeToByte[r]))
	}
	return dst, true
}

// spellingOf is the inverse of appendSpellingBytes.
func spellingOf(b string) string {
	out := make([]rune, len(b))
	for i := 0; i < len(b); i++ {
		out[i] = byteToRune[b[i]]
	}
	return string(out)
}

// bpeModel is a byte-level BPE model: merges apply by rank, lowest first,
// leftmost first among equal ranks, exactly as Hugging Face tokenizers'
// BPE::merge_word does.
type bpeModel struct {
	// vocab finds a token's id by its raw bytes.
	vocab vocabIndex
	// merges gives the rank and the merged id of a pair of adjacent ids.
	merges mergeTable
	// byteID is the id of each single-byte token, or -1 when the vocabulary
	// lacks that byte; such bytes go through byteMissing.
	byteID [256]int32
	// byteMissing says what replaces a byte that has no token: byte-fallback
	// ids, the unknown token, or nothing (the byte is dropped, as Hugging Face
	// does when there is neither).
	byteMissing [256][]int32
	unkID       int32 // -1 when there is no unknown token
	fuseUnk     bool
	// ignoreMerges: a pre-token that is itself in the vocabulary becomes that
	// one token without running the merges.
	ignoreMerges bool
}

const noRank = math.MaxInt32

// rank returns the rank of merging left and right and the merged id, or
// noRank when the pair does not merge.
func (m *bpeModel) rank(left, right int32) (rank, merged int32) {
	return m.merges.lookup(left, right)
}

// linearMax is the longest piece (in symbols) merged by the quadratic scan;
// longer ones use the heap. Short pieces are the vast majority, and for them
// a scan over a small array beats maintaining a heap.
const linearMax = 48

// encodePiece appends the ids of one pre-token (raw bytes) to dst.
func (m *bpeModel) encodePiece(dst []int, piece string) []int {
	if len(piece) == 1 && m.byteID[piece[0]] >= 0 {
		return append(dst, int(m.byteID[piece[0]]))
	}
	if m.ignoreMerges {
		if id := m.vocab.find(piece); id >= 0 {
			return append(dst, int(id))
		}
	}
	var stack [linearMax]int32
	syms := m.initialSymbols(stack[:0], piece)
	if len(syms) <= linearMax {
		syms = m.mergeLinear(syms)
	} else {
		syms = m.mergeHeap(syms)
	}
	for _, id := range syms {
		dst = append(dst, int(id))
	}
	return dst
}

// initialSymbols turns the bytes of piece into single-byte tokens.
func (m *bpeModel) initialSymbols(dst []int32, piece string) []int32 {
	pendingUnk := false
	for i := 0; i < len(piece); i++ {
		id := m.byteID[piece[i]]
		if id >= 0 {
			if pendingUnk {
				dst = append(dst, m.unkID)
				pendingUnk = false
			}
			dst = append(dst, id)
			continue
		}
		repl := m.byteMissing[piece[i]]
		if len(repl) == 1 && repl[0] == m.unkID && m.fuseUnk {
			pendingUnk = true
			continue
		}
		if pendingUnk {
			dst = append(dst, m.unkID)
			pendingUnk = false
		}
		dst = append(dst, repl...)
	}
	if pendingUnk {
		dst = append(dst, m.unkID)
	}
	return dst
}

// mergeLinear merges syms in place by repeatedly scanning for the
// lowest-ranked adjacent pair: O(n²) but with cheap steps, which is fastest
// for short pieces. ranks[i] caches the rank of the pair (i, i+1).
func (m *bpeModel) mergeLinear(syms []int32) []int32 {
	var ranksBuf, mergedBuf [linearMax]int32
	n := len(syms)
	ranks, merged := ranksBuf[:n], mergedBuf[:n]
	for i := 0; i+1 < n; i++ {
		ranks[i], merged[i] = m.rank(syms[i], syms[i+1])
	}
	for n > 1 {
		best := -1
		bestRank := int32(noRank)
		for i := 0; i+1 < n; i++ {
			if ranks[i] < bestRank {
				best, bestRank = i, ranks[i]
			}
		}
		if best < 0 {
			break
		}
		syms[best] = merged[best]
		copy(syms[best+1:n], syms[best+2:n])
		copy(ranks[best+1:n], ranks[best+2:n])
		copy(merged[best+1:n], merged[best+2:n])
		n--
		if best > 0 {
			ranks[best-1], merged[best-1] = m.rank(syms[best-1], syms[best])
		}
		if best+1 < n {
			ranks[best], merged[best] = m.rank(syms[best], syms[best+1])
		} else {
			ranks[best] = noRank
		}
	}
	return syms[:n]
}

// mergeHeap merges long pieces in O(n log n): a doubly linked list of
// symbols and a min-heap of candidate merges keyed by (rank, position).
// Entries go stale when a neighbour merges; a popped entry is used only if
// its pair is still the pair at that position.
func (m *bpeModel) mergeHeap(syms []int32) []int32 {
	n := len(syms)
	prev := make([]int32, n)
	next := make([]int32, n)
	for i := range syms {
		prev[i] = int32(i - 1)
		next[i] = int32(i + 1)
	}
	next[n-1] = -1
	h := make(mergeHeap, 0, n)
	push := func(pos int32) {
		r, _ := m.rank(syms[pos], syms[next[pos]])
		if r != noRank {
			h.push(uint64(r)<<32 | uint64(pos))
		}
	}
	for i := 0; i+1 < n; i++ {
		push(int32(i))
	}
	for len(h) > 0 {
		top := h.pop()
		rank, pos := int32(top>>32), int32(uint32(top))
		if syms[pos] < 0 || next[pos] < 0 {
			continue // merged away, or no right neighbour any more
		}
		right := next[pos]
		r, mergedID := m.rank(syms[pos], syms[right])
		if r != rank {
			continue // the pair at pos changed since this entry was pushed
		}
		syms[pos] = mergedID
		syms[right] = -1
		next[pos] = next[right]
		if next[pos] >= 0 {
			prev[next[pos]] = pos
			push(pos)
		}
		if prev[pos] >= 0 {
			push(prev[pos])
		}
	}
	out := syms[:0]
	for i := int32(0); i >= 0; i = next[i] {
		out = append(out, syms[i])
	}
	return out
}

// mergeHeap is a binary min-heap of rank<<32|position.
type mergeHeap []uint64

func (h *mergeHeap) push(v uint64) {
	*h = append(*h, v)
	a := *h
	i := len(a) - 1
	for i > 0 {
		p := (i - 1) / 2
		if a[p] <= a[i] {
			break
		}
		a[p], a[i] = a[i], a[p]
		i = p
	}
}

func (h *mergeHeap) pop() uint64 {
	a := *h
	top := a[0]
	last := len(a) - 1
	a[0] = a[last]
	a = a[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= len(a) {
			break
		}
		c := l
		if r := l + 1; r < len(a) && a[r] < a[l] {
			c = r
		}
		if a[i] <= a[c] {
			break
		}
		a[i], a[c] = a[c], a[i]
		i = c
	}
	*h = a
	return top
}
