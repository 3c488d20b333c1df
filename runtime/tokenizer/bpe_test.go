package tokenizer

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// The heap merge (for long pieces) must agree with the linear scan that
// the vectors check, on pieces of every length up to linearMax where both
// can run.
func TestMergeHeapMatchesLinear(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var words []string
	for _, v := range vectors(t) {
		words = append(words, strings.Fields(v.Text)...)
	}
	for _, tok := range []*Tokenizer{gptOSS(t), fortune(t)} {
		for range 3000 {
			// Glue random words, or random bytes, into one piece.
			var sb strings.Builder
			n := 2 + rng.IntN(linearMax-2)
			if rng.IntN(4) == 0 {
				for sb.Len() < n {
					sb.WriteByte(byte(rng.IntN(256)))
				}
			} else {
				for sb.Len() < n {
					sb.WriteString(words[rng.IntN(len(words))])
				}
			}
			piece := sb.String()
			if len(piece) > linearMax {
				piece = piece[:linearMax]
			}
			lin := tok.model.mergeLinear(tok.model.initialSymbols(nil, piece))
			heap := tok.model.mergeHeap(tok.model.initialSymbols(nil, piece))
			if !reflect.DeepEqual(lin, heap) {
				t.Fatalf("piece %q: linear %v, heap %v", piece, lin, heap)
			}
		}
	}
}

// A toy BPE model whose results can be worked out by hand. Its vocabulary
// has all 256 bytes (byte b is id b), these merges, ranked in this order,
//
//	0: a a -> aa (256)    1: b c -> bc (257)    2: aa a -> aaa (258)
//	3: a bc -> abc (259)  4: aaa bc -> aaabc (260)
//
// and xyz (261), which no merge produces.
func toyModel(t *testing.T, ignoreMerges bool) *Tokenizer {
	t.Helper()
	extra := map[string]int{"aa": 256, "bc": 257, "aaa": 258, "abc": 259, "aaabc": 260, "xyz": 261}
	merges := []string{"a a", "b c", "aa a", "a bc", "aaa bc"}
	tok, err := Parse(toyJSON(extra, merges, ignoreMerges, `{"type":"ByteLevel","add_prefix_space":false,"use_regex":false}`, ""))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestToyBPE(t *testing.T) {
	tok := toyModel(t, false)
	cases := []struct {
		piece string
		want  []int
		why   string
	}{
		{"aaaa", []int{256, 256}, "a a (rank 0) twice, leftmost first; aa aa does not merge"},
		{"aaaaa", []int{256, 258}, "aa a a a, then the leftmost remaining a a: aa aa a, then aa a (rank 2)"},
		{"aaabc", []int{260}, "aa a b c, then b c (1): aa a bc, then aa a (2) before a bc (3): aaa bc, then rank 4"},
		{"abcabc", []int{259, 259}, "b c twice, then a bc twice"},
		{"xyz", []int{'x', 'y', 'z'}, "no merges apply"},
	}
	for _, c := range cases {
		syms := tok.model.initialSymbols(nil, c.piece)
		lin := tok.model.mergeLinear(append([]int32(nil), syms...))
		heap := tok.model.mergeHeap(append([]int32(nil), syms...))
		var got []int
		for _, id := range lin {
			got = append(got, int(id))
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("BPE(%q) = %v, want %v (%s)", c.piece, got, c.want, c.why)
		}
		if !reflect.DeepEqual(lin, heap) {
			t.Errorf("BPE(%q): heap gives %v", c.piece, heap)
		}
	}
	// xyz is in the vocabulary but no merge reaches it; only ignore_merges
	// emits it whole.
	if got := tok.Encode("xyz"); !reflect.DeepEqual(got, []int{'x', 'y', 'z'}) {
		t.Errorf("Encode(xyz) = %v without ignore_merges", got)
	}
	if got := toyModel(t, true).Encode("xyz"); !reflect.DeepEqual(got, []int{261}) {
		t.Errorf("Encode(xyz) = %v with ignore_merges, want [261]", got)
	}
}
