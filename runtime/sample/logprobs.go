package sample

import "math"

// TokenLogprob is a token and its log-probability.
type TokenLogprob struct {
	ID      int32
	Logprob float32
}

// MaxTopLogprobs is the most alternatives Logprobs reports (OpenAI's
// limit for top_logprobs).
const MaxTopLogprobs = 20

// Logprobs returns the log-probability of id, and of the top most likely
// tokens (best first, ties to the lower id; at most MaxTopLogprobs), in
// the distribution the latest Sample drew from: softmax of the logits
// after the logit bias and the penalties, before temperature and
// truncation, as OpenAI reports them. Call it right after Sample: it
// reads the logits Sample was given. dst is reused for the result.
func (s *Sampler) Logprobs(id int32, top int, dst []TokenLogprob) (float32, []TokenLogprob) {
	x := s.last
	if len(x) == 0 {
		panic("BUG: sample.Logprobs called before Sample")
	}
	m := x[argmax(x)]
	var z float64
	for _, v := range x {
		if v == v {
			z += float64(expNeg(v - m))
		}
	}
	lse := float64(m) + math.Log(z)
	lp := func(v float32) float32 {
		if v != v {
			return float32(math.Inf(-1))
		}
		return float32(float64(v) - lse)
	}
	top = min(top, MaxTopLogprobs, len(x))
	dst = dst[:0]
	if top > 0 {
		s.grow(len(x))
		selectTop(x, s.idx[:len(x)], top)
		for _, t := range s.idx[:top] {
			dst = append(dst, TokenLogprob{ID: t, Logprob: lp(x[t])})
		}
	}
	return lp(x[id]), dst
}
