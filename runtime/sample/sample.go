// Package sample picks the next token from a model's logits: greedy,
// temperature, top-k, top-p (nucleus), min-p and a repetition penalty over
// the recent context, with a seeded random source so that the same seed,
// logits and options always give the same tokens.
//
// The steps run in the order of Hugging Face transformers' logits
// processors: repetition penalty, temperature, top-k, top-p, min-p, then
// a draw from what is left. A Sampler keeps its buffers between calls, so
// sampling a token allocates nothing.
package sample

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Options configure a Sampler. The zero value is greedy decoding with no
// penalty; each field's zero value turns its step off.
type Options struct {
	// Temperature divides the logits; 0 is greedy (the most likely token,
	// ties to the lower id), which ignores TopK, TopP, MinP and Seed.
	Temperature float64
	// TopK keeps the K most likely tokens; 0 keeps all.
	TopK int
	// TopP keeps the smallest set of most likely tokens whose probability
	// adds up to at least TopP; 0 and 1 keep all.
	TopP float64
	// MinP drops tokens less likely than MinP times the most likely one;
	// 0 keeps all.
	MinP float64
	// RepeatPenalty divides the positive logits (and multiplies the
	// negative ones) of tokens seen in the last RepeatLastN tokens of the
	// context, as llama.cpp and transformers do; 0 and 1 are off.
	RepeatPenalty float64
	// RepeatLastN is the penalty's window; 0 means DefaultRepeatLastN.
	RepeatLastN int
	// Seed starts the random source.
	Seed uint64

	// LogitBias adds a value to a token's logit before every other step
	// (OpenAI's logit_bias: -100 bans a token, 100 all but forces it).
	LogitBias map[int32]float32
	// PresencePenalty and FrequencyPenalty are OpenAI's: a token's logit
	// loses PresencePenalty once it has been generated and
	// FrequencyPenalty times the number of times it has. They count the
	// tokens this sampler returned since SetContext (the reply, not the
	// prompt), as OpenAI and vLLM do; 0 is off.
	PresencePenalty, FrequencyPenalty float64
}

// DefaultRepeatLastN is llama.cpp's default penalty window.
const DefaultRepeatLastN = 64

// Validate reports the first option out of range, naming the fix.
func (o Options) Validate() error {
	switch {
	case math.IsNaN(o.Temperature) || o.Temperature < 0:
		return fmt.Errorf("temperature must be 0 (greedy) or more, not %v", o.Temperature)
	case o.TopK < 0:
		return fmt.Errorf("top-k must be 0 (off) or more, not %d", o.TopK)
	case math.IsNaN(o.TopP) || o.TopP < 0 || o.TopP > 1:
		return fmt.Errorf("top-p must be between 0 and 1, not %v", o.TopP)
	case math.IsNaN(o.MinP) || o.MinP < 0 || o.MinP > 1:
		return fmt.Errorf("min-p must be between 0 and 1, not %v", o.MinP)
	case math.IsNaN(o.RepeatPenalty) || o.RepeatPenalty < 0:
		return fmt.Errorf("repeat penalty must be positive (1 is off), not %v", o.RepeatPenalty)
	case math.IsNaN(o.PresencePenalty) || math.IsInf(o.PresencePenalty, 0):
		return fmt.Errorf("presence penalty must be a number, not %v", o.PresencePenalty)
	case math.IsNaN(o.FrequencyPenalty) || math.IsInf(o.FrequencyPenalty, 0):
		return fmt.Errorf("frequency penalty must be a number, not %v", o.FrequencyPenalty)
	case o.RepeatLastN < 0:
		return fmt.Errorf("repeat window must be 0 (default %d) or more tokens, not %d", DefaultRepeatLastN, o.RepeatLastN)
	}
	for id, b := range o.LogitBias {
		if id < 0 {
			return fmt.Errorf("logit bias names token %d, which is not a token id", id)
		}
		if b != b || math.IsInf(float64(b), 0) {
			return fmt.Errorf("logit bias of token %d must be a number, not %v", id, b)
		}
	}
	return nil
}

// Sampler draws tokens; it implements engine.Sampler. It remembers the
// tokens it returned (and those passed to SetContext) for the repetition
// penalty. A Sampler is not safe for concurrent use.
type Sampler struct {
	opts Options
	rng  *rand.Rand

	// history is a ring of the last RepeatLastN tokens; next is where
	// the next one goes and full says whether the ring has wrapped.
	history []int32
	next    int
	full    bool

	// Buffers sized to the vocabulary on first use.
	logits  []float32 // penalised logits
	weights []float32 // exp((logit - max) / T) by id
	idx     []int32   // candidate ids, best first once ranked
	cand    []float32 // weights of the ranked candidates
	// seen stamps ids already penalised in this call with stamp.
	seen  []uint32
	stamp uint32

	// counts holds how often each token was returned since SetContext,
	// for the presence and frequency penalties; nil when both are off.
	counts map[int32]int
	// last is the logits the latest draw saw, after bias and penalties,
	// for Logprobs; it may alias the caller's slice.
	last []float32
}

// New returns a sampler; it fails on options out of range.
func New(opts Options) (*Sampler, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.RepeatLastN == 0 {
		opts.RepeatLastN = DefaultRepeatLastN
	}
	s := &Sampler{opts: opts, rng: rand.New(rand.NewPCG(opts.Seed, 0x6d696e65727661))}
	if s.penalised() {
		s.history = make([]int32, opts.RepeatLastN)
	}
	if opts.PresencePenalty != 0 || opts.FrequencyPenalty != 0 {
		s.counts = map[int32]int{}
	}
	return s, nil
}

// Options returns the options in use, with defaults filled in.
func (s *Sampler) Options() Options { return s.opts }

func (s *Sampler) penalised() bool {
	return s.opts.RepeatPenalty != 0 && s.opts.RepeatPenalty != 1
}

// SetContext replaces the penalty's history with the last tokens of ids:
// pass the prompt before generating.
func (s *Sampler) SetContext(ids []int32) {
	s.next, s.full = 0, false
	if s.counts != nil {
		clear(s.counts)
	}
	for _, id := range ids {
		s.remember(id)
	}
}

func (s *Sampler) remember(id int32) {
	if len(s.history) == 0 {
		return
	}
	s.history[s.next] = id
	s.next++
	if s.next == len(s.history) {
		s.next, s.full = 0, true
	}
}

// Sample returns the next token and adds it to the history. The logits
// are not modified.
func (s *Sampler) Sample(logits []float32) int32 {
	if len(logits) == 0 {
		panic("BUG: sample.Sample called with no logits")
	}
	id := s.pick(logits)
	s.remember(id)
	if s.counts != nil {
		s.counts[id]++
	}
	return id
}

func (s *Sampler) pick(in []float32) int32 {
	x := in
	if s.penalised() || len(s.opts.LogitBias) > 0 || len(s.counts) > 0 {
		s.grow(len(in))
		x = s.logits[:len(in)]
		copy(x, in)
		for id, b := range s.opts.LogitBias {
			if int(id) < len(x) {
				x[id] += b
			}
		}
		if s.penalised() {
			s.applyPenalty(x)
		}
		pres, freq := float32(s.opts.PresencePenalty), float32(s.opts.FrequencyPenalty)
		for id, n := range s.counts {
			if int(id) < len(x) {
				x[id] -= pres + freq*float32(n)
			}
		}
	}
	s.last = x
	if s.opts.Temperature == 0 {
		return argmax(x)
	}
	s.grow(len(x))
	return s.draw(x)
}

func (s *Sampler) grow(v int) {
	if len(s.idx) >= v {
		return
	}
	s.logits = make([]float32, v)
	s.weights = make([]float32, v)
	s.idx = make([]int32, v)
	s.cand = make([]float32, v)
	s.seen = make([]uint32, v)
}

// applyPenalty penalises each distinct token of the window once, like
// transformers' RepetitionPenaltyLogitsProcessor (a gather over the ids,
// then a scatter) and llama.cpp's penalty_repeat.
func (s *Sampler) applyPenalty(x []float32) {
	s.stamp++
	if s.stamp == 0 { // wrapped: clear old stamps
		clear(s.seen)
		s.stamp = 1
	}
	n := s.next
	if s.full {
		n = len(s.history)
	}
	p := float32(s.opts.RepeatPenalty)
	for _, id := range s.history[:n] {
		if id < 0 || int(id) >= len(x) || s.seen[id] == s.stamp {
			continue
		}
		s.seen[id] = s.stamp
		if x[id] > 0 {
			x[id] /= p
		} else {
			x[id] *= p
		}
	}
}

// argmax returns the first index of the largest value; NaN never wins
// unless every value is NaN.
func argmax(x []float32) int32 {
	best, bv := 0, x[0]
	for i, v := range x {
		if v > bv || bv != bv {
			best, bv = i, v
		}
	}
	return int32(best)
}

// nucleusBins is the resolution of the top-p histogram: bin b holds the
// tokens whose logit lies between b and b+1 bin widths (in nats, after
// temperature) below the best one; the last bin holds the rest.
const (
	nucleusBins    = 512
	nucleusBinNats = 0.05
)

// draw samples from softmax(x / T) restricted by top-k, top-p and min-p.
func (s *Sampler) draw(x []float32) int32 {
	m := x[argmax(x)]
	if math.IsInf(float64(m), 0) || m != m {
		// No finite best logit: every token is -Inf or NaN, or one is
		// +Inf. Greedy is the only meaningful answer.
		return argmax(x)
	}
	invT := float32(1 / s.opts.Temperature)
	topP := s.opts.TopP
	if topP == 0 {
		topP = 1
	}
	// min-p compares with the best token, whose weight is exactly 1.
	minW := float32(s.opts.MinP)
	if k := s.opts.TopK; k > 0 && k < len(x) {
		return s.drawTopK(x, k, m, invT, topP, minW)
	}

	// Weights exp((x - m) / T) of the whole vocabulary, and their sum.
	w := s.weights[:len(x)]
	var z float64
	for i, v := range x {
		e := expNeg((v - m) * invT)
		if e != e {
			e = 0
		}
		w[i] = e
		z += float64(e)
	}
	if topP >= 1 {
		if minW > 0 {
			for i, e := range w {
				if e < minW {
					w[i] = 0
				}
			}
		}
		return int32(s.choose(w))
	}

	// Top-p: a histogram of the mass by distance below the best token
	// finds the bin where the nucleus ends; only the tokens up to that
	// bin are sorted.
	var mass [nucleusBins]float64
	binOf := func(v float32) int {
		d := (m - v) * invT / nucleusBinNats
		if d >= nucleusBins-1 || d != d {
			return nucleusBins - 1
		}
		return int(d)
	}
	for i, v := range x {
		mass[binOf(v)] += float64(w[i])
	}
	cut, cum := 0, 0.0
	for ; cut < nucleusBins-1; cut++ {
		cum += mass[cut]
		if cum >= topP*z {
			break
		}
	}
	ids := s.idx[:0]
	for i, v := range x {
		if w[i] > 0 && binOf(v) <= cut {
			ids = append(ids, int32(i))
		}
	}
	sortByWeight(ids, w)
	// Keep the shortest prefix that reaches topP (the token that crosses
	// the line stays, as in transformers), then drop min-p's tail.
	keep := len(ids)
	cum = 0
	for j, id := range ids {
		cum += float64(w[id])
		if cum >= topP*z {
			keep = j + 1
			break
		}
	}
	cand := s.cand[:0]
	for _, id := range ids[:keep] {
		if w[id] < minW {
			break
		}
		cand = append(cand, w[id])
	}
	return ids[s.choose(cand)]
}

// drawTopK samples among the k best tokens, renormalised, with top-p
// and min-p applied within them.
func (s *Sampler) drawTopK(x []float32, k int, m, invT float32, topP float64, minW float32) int32 {
	ids := s.idx[:k]
	selectTop(x, s.idx[:len(x)], k)
	cand := s.cand[:k]
	var z float64
	for j, id := range ids {
		e := expNeg((x[id] - m) * invT)
		if e != e {
			e = 0
		}
		cand[j] = e
		z += float64(e)
	}
	keep, cum := 0, 0.0
	for _, e := range cand {
		if e < minW || e == 0 {
			break
		}
		keep++
		cum += float64(e)
		if topP < 1 && cum >= topP*z {
			break
		}
	}
	if keep == 0 {
		panic("BUG: top-k kept no candidate; the best token has weight 1")
	}
	return ids[s.choose(cand[:keep])]
}

// choose draws an index of w with probability w[i]/sum(w).
func (s *Sampler) choose(w []float32) int {
	var total float64
	for _, v := range w {
		total += float64(v)
	}
	u := s.rng.Float64() * total
	last := 0
	for i, v := range w {
		if v == 0 {
			continue
		}
		last = i
		u -= float64(v)
		if u < 0 {
			return i
		}
	}
	return last // rounding left u a hair above zero
}

// expNeg is e^x for x <= 0 in float32 (relative error below 1e-6; 0
// below -87, where float32 underflows), several times faster than
// math.Exp: the sampler takes one per vocabulary entry.
func expNeg(x float32) float32 {
	if x < -87 {
		return 0
	}
	if x != x {
		return x
	}
	const log2e = 1.4426950408889634
	const ln2hi, ln2lo = 0.693145751953125, 1.428606765330187e-06
	k := float32(math.Floor(float64(x*log2e + 0.5)))
	r := x - k*ln2hi - k*ln2lo
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720+r*(1.0/5040)))))))
	return math.Float32frombits(uint32(int32(k)+127)<<23) * p
}

// sortByWeight sorts ids by descending weight, ties to the lower id
// (heapsort: in place, no allocation).
func sortByWeight(ids []int32, w []float32) {
	less := func(a, b int32) bool { // a ranks below b
		if w[a] != w[b] {
			return w[a] < w[b]
		}
		return a > b
	}
	for i := len(ids)/2 - 1; i >= 0; i-- {
		siftDown(ids, i, less)
	}
	for end := len(ids) - 1; end > 0; end-- {
		ids[0], ids[end] = ids[end], ids[0]
		siftDown(ids[:end], 0, less)
	}
}

// selectTop puts the n largest values' ids (ties to the lower id) in
// idx[:n], best first, using a min-heap of size n: O(V log n), no
// allocation.
func selectTop(x []float32, idx []int32, n int) {
	less := func(a, b int32) bool { // a ranks below b
		if x[a] != x[b] {
			return x[a] < x[b] || x[a] != x[a]
		}
		return a > b
	}
	h := idx[:0]
	for i := range x {
		id := int32(i)
		if len(h) < n {
			h = append(h, id)
			siftUp(h, len(h)-1, less)
			continue
		}
		if less(h[0], id) {
			h[0] = id
			siftDown(h, 0, less)
		}
	}
	// Pop the heap from the back: the smallest goes last.
	for end := len(h) - 1; end > 0; end-- {
		h[0], h[end] = h[end], h[0]
		siftDown(h[:end], 0, less)
	}
}

func siftUp(h []int32, i int, less func(a, b int32) bool) {
	for i > 0 {
		p := (i - 1) / 2
		if !less(h[i], h[p]) {
			return
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func siftDown(h []int32, i int, less func(a, b int32) bool) {
	for {
		c := 2*i + 1
		if c >= len(h) {
			return
		}
		if c+1 < len(h) && less(h[c+1], h[c]) {
			c++
		}
		if !less(h[c], h[i]) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}
