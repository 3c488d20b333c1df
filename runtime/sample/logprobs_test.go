package sample

import (
	"math"
	"testing"
)

// The oracle: log-softmax in float64 by its definition.
func logSoftmax(x []float32) []float64 {
	var z float64
	for _, v := range x {
		z += math.Exp(float64(v))
	}
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v) - math.Log(z)
	}
	return out
}

func TestLogprobs(t *testing.T) {
	x := []float32{0.5, 3, -1, 3, 2.25, -40}
	want := logSoftmax(x)
	s, err := New(Options{Temperature: 0.7, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	id := s.Sample(x)
	lp, top := s.Logprobs(id, 4, nil)
	if math.Abs(float64(lp)-want[id]) > 1e-5 {
		t.Errorf("logprob of %d = %v, want %v", id, lp, want[id])
	}
	wantIDs := []int32{1, 3, 4, 0} // ties to the lower id
	if len(top) != 4 {
		t.Fatalf("top has %d entries, want 4", len(top))
	}
	for i, tl := range top {
		if tl.ID != wantIDs[i] || math.Abs(float64(tl.Logprob)-want[tl.ID]) > 1e-5 {
			t.Errorf("top[%d] = %+v, want id %d logprob %v", i, tl, wantIDs[i], want[wantIDs[i]])
		}
	}
	// More than the vocabulary, or than OpenAI's 20, is capped.
	if _, top := s.Logprobs(id, 50, nil); len(top) != len(x) {
		t.Errorf("top 50 of %d tokens gave %d", len(x), len(top))
	}
}

func TestLogitBias(t *testing.T) {
	x := []float32{5, 1, 0}
	s, _ := New(Options{LogitBias: map[int32]float32{0: -100, 2: 1.5}})
	if id := s.Sample(x); id != 2 {
		t.Errorf("greedy with bias picked %d, want 2 (0 banned, 2 raised past 1)", id)
	}
	// Logprobs see the biased distribution.
	lp, _ := s.Logprobs(2, 0, nil)
	want := logSoftmax([]float32{-95, 1, 1.5})[2]
	if math.Abs(float64(lp)-want) > 1e-5 {
		t.Errorf("logprob %v, want %v", lp, want)
	}
	// The caller's logits are untouched.
	if x[0] != 5 || x[2] != 0 {
		t.Errorf("Sample modified the logits: %v", x)
	}
	if _, err := New(Options{LogitBias: map[int32]float32{-1: 1}}); err == nil {
		t.Error("a negative token id in the bias was accepted")
	}
}

// OpenAI's formula: logit -= count*frequency + (count > 0)*presence,
// over the tokens generated so far.
func TestPresenceFrequencyPenalty(t *testing.T) {
	x := []float32{2, 1.5, 0}
	// Presence 1: token 0 once generated drops to 1, below token 1.
	s, _ := New(Options{PresencePenalty: 1})
	s.SetContext([]int32{1, 1, 1}) // the prompt is not counted
	got := []int32{s.Sample(x), s.Sample(x), s.Sample(x)}
	if got[0] != 0 || got[1] != 1 || got[2] != 0 {
		// after 0 and 1: 0 -> 1, 1 -> 0.5; 0 wins again
		t.Errorf("presence penalty: %v, want [0 1 0]", got)
	}
	// Frequency 0.3: 0 at 2-0.3n; 1 at 1.5-0.3m.
	s, _ = New(Options{FrequencyPenalty: 0.3})
	var seq []int32
	for range 5 {
		seq = append(seq, s.Sample(x))
	}
	want := []int32{0, 0, 1, 0, 1} // 2>1.5; 1.7>1.5; 1.4<1.5; 1.4>1.2 ; 1.1<1.2
	for i := range want {
		if seq[i] != want[i] {
			t.Fatalf("frequency penalty: %v, want %v", seq, want)
		}
	}
	// SetContext starts the count over.
	s.SetContext(nil)
	if id := s.Sample(x); id != 0 {
		t.Errorf("after SetContext the first pick is %d, want 0", id)
	}
}
