package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

// fake records the calls the engine makes; its logits put the most weight
// on token (position+1) mod vocab.
type fake struct {
	batch, ctx, vocab int
	rings             []Ring
	calls             [][2]int // (tokens, position)
	out               []float32
}

func (f *fake) Forward(tokens []int32, pos int) ([]float32, error) {
	f.calls = append(f.calls, [2]int{len(tokens), pos})
	f.out = make([]float32, len(tokens)*f.vocab)
	for i := range tokens {
		f.out[i*f.vocab+(pos+i+1)%f.vocab] = 1
	}
	return f.out, nil
}
func (f *fake) Batch() int    { return f.batch }
func (f *fake) Ctx() int      { return f.ctx }
func (f *fake) Vocab() int    { return f.vocab }
func (f *fake) Close()        {}
func (f *fake) Rings() []Ring { return f.rings }

func TestPrefillSplitsIntoBatches(t *testing.T) {
	f := &fake{batch: 4, ctx: 100, vocab: 10}
	s := NewSession(f)
	logits, err := s.Prefill(make([]int32, 10))
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]int{{4, 0}, {4, 4}, {2, 8}}
	if len(f.calls) != 3 || f.calls[0] != want[0] || f.calls[1] != want[1] || f.calls[2] != want[2] {
		t.Fatalf("calls %v, want %v", f.calls, want)
	}
	if s.Pos() != 10 || logits[(9+1)%10] != 1 {
		t.Fatalf("position %d, last logits %v", s.Pos(), logits)
	}
}

func TestAllLogitsRunsPrefillThenDecode(t *testing.T) {
	f := &fake{batch: 8, ctx: 100, vocab: 5}
	out, err := NewSession(f).AllLogits([]int32{1, 2, 3, 4, 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 25 || len(f.calls) != 4 || f.calls[0] != [2]int{2, 0} || f.calls[3] != [2]int{1, 4} {
		t.Fatalf("calls %v, %d logits", f.calls, len(out))
	}
}

func TestGenerateStopsAtStopTokenAndContext(t *testing.T) {
	f := &fake{batch: 8, ctx: 100, vocab: 10}
	var got []int32
	st, err := Generate(context.Background(), NewSession(f), []int32{0, 0, 0}, GenOptions{MaxTokens: 20, Stop: map[int32]bool{6: true}}, func(id int32, stop bool) error {
		got = append(got, id)
		return nil
	})
	// Greedy follows the fake's (position+1): after the prompt's last
	// position (2) comes 3, then 4, 5, and 6 stops.
	if err != nil || st.StoppedBy != "stop" || len(got) != 4 || got[0] != 3 || got[3] != 6 || st.GeneratedTokens != 3 {
		t.Fatalf("got %v, %+v, %v", got, st, err)
	}
	f = &fake{batch: 8, ctx: 6, vocab: 10}
	st, err = Generate(context.Background(), NewSession(f), []int32{0, 0, 0}, GenOptions{MaxTokens: 20}, func(int32, bool) error { return nil })
	if err != nil || st.StoppedBy != "context" || st.GeneratedTokens != 4 {
		t.Fatalf("at the end of the context: %+v, %v", st, err)
	}
	_, err = Generate(context.Background(), NewSession(f), make([]int32, 7), GenOptions{MaxTokens: 1}, func(int32, bool) error { return nil })
	if !errors.Is(err, ErrContextFull) || !strings.Contains(err.Error(), "the prompt has 7 tokens") {
		t.Fatalf("a prompt longer than the context: %v", err)
	}
}

func TestGenerateCancelled(t *testing.T) {
	f := &fake{batch: 8, ctx: 100, vocab: 10}
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	st, err := Generate(ctx, NewSession(f), []int32{0}, GenOptions{MaxTokens: 50}, func(int32, bool) error {
		n++
		if n == 3 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || st.StoppedBy != "cancelled" || n != 3 {
		t.Fatalf("%+v %v after %d tokens", st, err, n)
	}
}

// TestGenerateCallbackCancelled: a token callback that fails because the
// caller went away (its error wraps context.Canceled, as the server's does
// when a write to a disconnected client fails before the request's context
// ends) stops the generation as "cancelled"; any other callback error
// leaves StoppedBy empty. The server's TestCancelMidStream failed in CI
// when the write error came first.
func TestGenerateCallbackCancelled(t *testing.T) {
	f := &fake{batch: 8, ctx: 100, vocab: 10}
	gone := fmt.Errorf("%w: writing to the client failed: %w", context.Canceled, errors.New("connection reset by peer"))
	n := 0
	st, err := Generate(context.Background(), NewSession(f), []int32{0}, GenOptions{MaxTokens: 50}, func(int32, bool) error {
		if n++; n == 3 {
			return gone
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || st.StoppedBy != "cancelled" || st.GeneratedTokens != 3 {
		t.Fatalf("a callback that lost its client: %+v %v", st, err)
	}
	broken := errors.New("disk full")
	st, err = Generate(context.Background(), NewSession(f), []int32{0}, GenOptions{MaxTokens: 50}, func(int32, bool) error { return broken })
	if !errors.Is(err, broken) || st.StoppedBy != "" {
		t.Fatalf("a callback that failed: %+v %v", st, err)
	}
}

// nanAfter is fake, except that the logits of every position from nan on
// are NaN (or +Inf when inf is set).
type nanAfter struct {
	fake
	nan int
	inf bool
}

func (f *nanAfter) Forward(tokens []int32, pos int) ([]float32, error) {
	out, _ := f.fake.Forward(tokens, pos)
	bad := float32(math.NaN())
	if f.inf {
		bad = float32(math.Inf(1))
	}
	for i := range tokens {
		if pos+i >= f.nan {
			out[i*f.vocab+3] = bad
		}
	}
	return out, nil
}

// TestGenerateStopsOnNonFiniteLogits: a generation whose logits become NaN
// or infinite ends with ErrNotFinite, naming the position, and no token is
// sampled from them. It used to exit 0 after printing whatever the sampler
// made of NaN.
func TestGenerateStopsOnNonFiniteLogits(t *testing.T) {
	for _, inf := range []bool{false, true} {
		for _, nan := range []int{2, 5} { // in the prompt, then while decoding
			f := &nanAfter{fake: fake{batch: 8, ctx: 100, vocab: 10}, nan: nan, inf: inf}
			var got []int32
			st, err := Generate(context.Background(), NewSession(f), []int32{0, 0, 0}, GenOptions{MaxTokens: 20}, func(id int32, stop bool) error {
				got = append(got, id)
				return nil
			})
			want := fmt.Sprintf("after position %d is", nan)
			if nan < 3 {
				want = "after position 2 is" // the prompt's last logits
			}
			if !errors.Is(err, ErrNotFinite) || !strings.Contains(err.Error(), "logit 3 "+want) {
				t.Errorf("inf=%v nan=%d: %v, want ErrNotFinite %q", inf, nan, err, want)
			}
			// Tokens sampled before the bad step are the fake's (pos+1).
			if len(got) != max(nan-2, 0) || st.GeneratedTokens != len(got) {
				t.Errorf("inf=%v nan=%d: %d tokens %v (stats %+v) before the error", inf, nan, len(got), got, st)
			}
		}
	}
}

// TestAllLogitsStopsOnNonFiniteLogits: `minerva logits` fails the same way
// whether the bad position runs in the prefill or one at a time.
func TestAllLogitsStopsOnNonFiniteLogits(t *testing.T) {
	for _, prefill := range []int{0, 3, 6} {
		f := &nanAfter{fake: fake{batch: 2, ctx: 100, vocab: 10}, nan: 4}
		_, err := NewSession(f).AllLogits([]int32{1, 2, 3, 4, 5, 6}, prefill)
		if !errors.Is(err, ErrNotFinite) || !strings.Contains(err.Error(), "logit 3 after position 4 is NaN") {
			t.Errorf("prefill %d: %v", prefill, err)
		}
	}
}

// TestCheckStep: the errors a batched step is refused with.
func TestCheckStep(t *testing.T) {
	ok := []Token{{ID: 1, Seq: 0, Pos: 5}, {ID: 2, Seq: 1, Pos: 0}, {ID: 3, Seq: 0, Pos: 6}, {ID: 4, Seq: 1, Pos: 1}}
	if err := CheckStep(ok, 4, 8, 10, 2); err != nil {
		t.Fatalf("a valid step: %v", err)
	}
	for _, c := range []struct {
		toks []Token
		want string
	}{
		{nil, "no tokens"},
		{append(ok, Token{ID: 1, Seq: 0, Pos: 7}), "at most 4"},
		{[]Token{{ID: 1, Seq: 2, Pos: 0}}, "sequence 2; the KV cache holds 2"},
		{[]Token{{ID: 1, Seq: 0, Pos: 8}}, "exceeds the context of 8"},
		{[]Token{{ID: 10, Seq: 0, Pos: 0}}, "outside the vocabulary"},
		{[]Token{{ID: 1, Seq: 1, Pos: 3}, {ID: 1, Seq: 0, Pos: 0}, {ID: 1, Seq: 1, Pos: 5}}, "position 5 after 3"},
	} {
		err := CheckStep(c.toks, 4, 8, 10, 2)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error with %q", c.toks, err, c.want)
		}
	}
}
