package engine

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
)

// ringBackend keeps a KV cache the way the real backends do: a
// full-attention cache of every position, and rings of Slots positions
// where position p lives in slot p mod Slots. A token's logits are a hash
// of everything it reads, positions included, so reading a slot a later
// token overwrote changes the output, as it does in a real model.
type ringBackend struct {
	batch, ctx, vocab int
	rings             []Ring
	full              []int32
	slots             [][]slot
	// ran counts the tokens run.
	ran int
}

type slot struct {
	pos int
	tok int32
}

func newRingBackend(batch, ctx, vocab int, rings ...Ring) *ringBackend {
	b := &ringBackend{batch: batch, ctx: ctx, vocab: vocab, rings: rings, full: make([]int32, ctx)}
	for _, r := range rings {
		b.slots = append(b.slots, make([]slot, r.Slots))
	}
	return b
}

func (b *ringBackend) Forward(tokens []int32, pos int) ([]float32, error) {
	b.ran += len(tokens)
	// Write every token's keys and values first, as cache_kv does.
	for i, t := range tokens {
		b.full[pos+i] = t
		for k, r := range b.rings {
			b.slots[k][(pos+i)%r.Slots] = slot{pos + i, t}
		}
	}
	out := make([]float32, len(tokens)*b.vocab)
	for i := range tokens {
		q := pos + i
		h := uint64(14695981039346656037)
		mix := func(v int) { h = (h ^ uint64(v)) * 1099511628211 }
		for p := 0; p <= q; p++ {
			mix(int(b.full[p]))
		}
		for k, r := range b.rings {
			for p := max(0, q-r.Window+1); p <= q; p++ {
				s := b.slots[k][p%r.Slots]
				mix(s.pos)
				mix(int(s.tok))
			}
		}
		out[i*b.vocab+int(h%uint64(b.vocab))] = 1
	}
	return out, nil
}
func (b *ringBackend) Batch() int    { return b.batch }
func (b *ringBackend) Ctx() int      { return b.ctx }
func (b *ringBackend) Vocab() int    { return b.vocab }
func (b *ringBackend) Rings() []Ring { return b.rings }
func (b *ringBackend) Close()        {}

// TestCanResume: a ring of 6 slots with a window of 4, after 10 tokens,
// holds positions 4..9. Position p reads p-3 .. p, so the sequence can
// resume at p when p-3 >= 4, or at 0.
func TestCanResume(t *testing.T) {
	b := newRingBackend(3, 100, 7, Ring{Window: 4, Slots: 6})
	s := NewSession(b)
	if _, err := s.Prefill(make([]int32, 10)); err != nil {
		t.Fatal(err)
	}
	for p := -1; p <= 11; p++ {
		want := p == 0 || (p >= 7 && p <= 10)
		if got := s.CanResume(p); got != want {
			t.Errorf("CanResume(%d) = %v, want %v", p, got, want)
		}
	}
	if n := s.Rewind(8); n != 8 || s.Pos() != 8 {
		t.Errorf("Rewind(8) kept %d", n)
	}
	// Positions 4..7 are still held; 5 cannot resume (it reads 2..4).
	if n := s.Rewind(5); n != 0 || s.Pos() != 0 {
		t.Errorf("Rewind(5) kept %d, want 0", n)
	}
	// After the rewind to 0, a new short sequence holds all it wrote.
	if _, err := s.Prefill(make([]int32, 5)); err != nil {
		t.Fatal(err)
	}
	for p := 0; p <= 5; p++ {
		if !s.CanResume(p) {
			t.Errorf("after a fresh prefill of 5: CanResume(%d) = false", p)
		}
	}
}

// TestReuseWithoutRings: a cache that holds the whole context can resume
// from any prefix; the last prompt token always runs.
func TestReuseWithoutRings(t *testing.T) {
	b := newRingBackend(4, 100, 7)
	s := NewSession(b)
	if _, err := s.Prefill([]int32{1, 2, 3, 4, 5, 6}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		prompt []int32
		want   int
	}{
		{[]int32{1, 2, 3, 4, 5, 6, 7}, 6},
		{[]int32{1, 2, 3, 4, 5, 6}, 5},
		{[]int32{1, 2, 9}, 2},
		{[]int32{9}, 0},
	} {
		if s.Pos() < 6 {
			if _, err := s.Prefill([]int32{1, 2, 3, 4, 5, 6}[s.Pos():]); err != nil {
				t.Fatal(err)
			}
		}
		if got := s.Reuse(c.prompt); got != c.want || s.Pos() != got || !slices.Equal(s.Tokens(), c.prompt[:got]) {
			t.Errorf("Reuse(%v) = %d (tokens %v), want %d", c.prompt, got, s.Tokens(), c.want)
		}
	}
}

// TestReuseIsExact runs random requests one after another on one session:
// prompts that share prefixes, continuations of the previous request,
// and generations that run far past the rings. Each must generate what a
// fresh session on a fresh backend generates, and Reuse must report the
// prompt tokens that did not run.
func TestReuseIsExact(t *testing.T) {
	rings := []Ring{{Window: 8, Slots: 8 + 4 - 1}, {Window: 5, Slots: 5 + 4 - 1}}
	const batch, ctx, vocab = 4, 400, 11
	b := newRingBackend(batch, ctx, vocab, rings...)
	s := NewSession(b)
	rng := rand.New(rand.NewPCG(1, 2))
	var prev []int32 // the previous request's prompt and reply
	reusedSome := false
	for i := range 400 {
		var prompt []int32
		switch rng.IntN(3) {
		case 0: // a fresh prompt from a few shared starts
			prompt = []int32{int32(rng.IntN(3)), 1}
			for range rng.IntN(12) {
				prompt = append(prompt, int32(rng.IntN(vocab)))
			}
		case 1: // the previous request, cut somewhere
			prompt = slices.Clone(prev[:rng.IntN(len(prev)+1)])
		default: // the previous request continued, like a chat turn
			prompt = slices.Clone(prev)
		}
		prompt = append(prompt, int32(rng.IntN(vocab)))
		if len(prompt) > ctx/2 {
			prompt = prompt[:1]
		}
		maxTokens := []int{1, 3, 10, 40}[rng.IntN(4)]
		before := b.ran
		reused := s.Reuse(prompt)
		got := generate(t, s, prompt[reused:], maxTokens)
		if ran := b.ran - before; ran != len(prompt)-reused+len(got)-1 {
			t.Fatalf("request %d: %d tokens ran, but Reuse reported %d of %d prompt tokens reused and %d were generated", i, ran, reused, len(prompt), len(got))
		}
		want := generate(t, NewSession(newRingBackend(batch, ctx, vocab, rings...)), prompt, maxTokens)
		if !slices.Equal(got, want) {
			t.Fatalf("request %d (prompt of %d, %d reused, after %d tokens): generated %v, a fresh session %v", i, len(prompt), reused, len(prev), got, want)
		}
		reusedSome = reusedSome || reused > 8
		prev = append(prompt, got...)
	}
	if !reusedSome {
		t.Error("no request reused more than a window")
	}
}

func generate(t *testing.T, s *Session, prompt []int32, maxTokens int) []int32 {
	t.Helper()
	var out []int32
	_, err := Generate(context.Background(), s, prompt, GenOptions{MaxTokens: maxTokens}, func(id int32, _ bool) error {
		out = append(out, id)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
