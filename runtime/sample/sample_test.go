package sample

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/runtime/engine"
)

// logitsOf returns logits whose softmax is p (natural log).
func logitsOf(p ...float64) []float32 {
	out := make([]float32, len(p))
	for i, v := range p {
		out[i] = float32(math.Log(v))
	}
	return out
}

func mustNew(t testing.TB, o Options) *Sampler {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// counts draws n tokens from the same logits.
func counts(s *Sampler, logits []float32, n int) []int {
	c := make([]int, len(logits))
	for range n {
		c[s.Sample(logits)]++
	}
	return c
}

// checkFrequencies compares counts with the expected probabilities: each
// count must lie within 5 standard deviations of its binomial mean, and a
// token of probability 0 must never be drawn.
func checkFrequencies(t *testing.T, got []int, want []float64) {
	t.Helper()
	n := 0
	for _, c := range got {
		n += c
	}
	for i, p := range want {
		mean := float64(n) * p
		if p == 0 {
			if got[i] != 0 {
				t.Errorf("token %d has probability 0 but was drawn %d times", i, got[i])
			}
			continue
		}
		sd := math.Sqrt(float64(n) * p * (1 - p))
		if math.Abs(float64(got[i])-mean) > 5*sd+1 {
			t.Errorf("token %d drawn %d times in %d; want about %.0f (p=%.4f, sd %.1f)", i, got[i], n, mean, p, sd)
		}
	}
}

func TestTemperatureZeroIsGreedy(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	s := mustNew(t, Options{TopK: 3, TopP: 0.5, MinP: 0.2, Seed: 9})
	for trial := range 200 {
		x := make([]float32, 1+r.IntN(300))
		for i := range x {
			x[i] = float32(r.NormFloat64() * 3)
		}
		if trial%7 == 0 { // a tie: the lower id wins
			x[len(x)-1] = x[engine.Greedy{}.Sample(x)]
		}
		if got, want := s.Sample(x), (engine.Greedy{}).Sample(x); got != want {
			t.Fatalf("trial %d: got %d, want greedy %d", trial, got, want)
		}
	}
}

func TestTemperatureOneMatchesSoftmax(t *testing.T) {
	p := []float64{0.4, 0.3, 0.2, 0.07, 0.03}
	s := mustNew(t, Options{Temperature: 1, Seed: 1})
	checkFrequencies(t, counts(s, logitsOf(p...), 40000), p)
}

func TestTemperatureSharpensAndFlattens(t *testing.T) {
	p := []float64{0.6, 0.3, 0.1}
	for _, temp := range []float64{0.5, 2} {
		// softmax(log p / T) is p^(1/T), renormalised.
		want := make([]float64, len(p))
		sum := 0.0
		for i, v := range p {
			want[i] = math.Pow(v, 1/temp)
			sum += want[i]
		}
		for i := range want {
			want[i] /= sum
		}
		s := mustNew(t, Options{Temperature: temp, Seed: 2})
		checkFrequencies(t, counts(s, logitsOf(p...), 40000), want)
	}
}

func TestTopKNeverLeavesTheKBest(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	x := make([]float32, 1000)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	// The k best, found by sorting a copy the slow way.
	const k = 5
	best := map[int32]bool{}
	for range k {
		b := int32(-1)
		for i, v := range x {
			if !best[int32(i)] && (b < 0 || v > x[b]) {
				b = int32(i)
			}
		}
		best[b] = true
	}
	s := mustNew(t, Options{Temperature: 3, TopK: k, Seed: 5}) // flat: the tail would often win
	seen := map[int32]int{}
	for range 8000 {
		id := s.Sample(x)
		if !best[id] {
			t.Fatalf("top-k %d drew token %d (logit %v), outside the k best", k, id, x[id])
		}
		seen[id]++
	}
	if len(seen) != k {
		t.Errorf("drew %d distinct tokens, want all %d of the k best", len(seen), k)
	}
}

func TestTopKRenormalises(t *testing.T) {
	p := []float64{0.1, 0.4, 0.05, 0.3, 0.15}
	s := mustNew(t, Options{Temperature: 1, TopK: 2, Seed: 6})
	checkFrequencies(t, counts(s, logitsOf(p...), 40000), []float64{0, 0.4 / 0.7, 0, 0.3 / 0.7, 0})
}

func TestTopPKeepsTheNucleus(t *testing.T) {
	p := []float64{0.05, 0.5, 0.15, 0.3}
	cases := []struct {
		topP float64
		want []float64
	}{
		// 0.5 < 0.75, 0.5+0.3 >= 0.75: the nucleus is {1, 3}.
		{0.75, []float64{0, 0.5 / 0.8, 0, 0.3 / 0.8}},
		// 0.8 < 0.9 <= 0.95: {1, 3, 2}.
		{0.9, []float64{0, 0.5 / 0.95, 0.15 / 0.95, 0.3 / 0.95}},
		// The best token alone reaches 0.4.
		{0.4, []float64{0, 1, 0, 0}},
		{1, p},
	}
	for _, c := range cases {
		s := mustNew(t, Options{Temperature: 1, TopP: c.topP, Seed: 7})
		checkFrequencies(t, counts(s, logitsOf(p...), 40000), c.want)
	}
}

// TestTopPLargeVocabulary covers the growing ranked prefix: a nucleus of
// 300 tokens out of 5000, more than the first round ranks.
func TestTopPLargeVocabulary(t *testing.T) {
	x := make([]float32, 5000)
	for i := range x {
		x[i] = -30 // negligible mass
	}
	for i := 0; i < 300; i++ {
		x[i*16] = 0 // 300 equally likely tokens
	}
	s := mustNew(t, Options{Temperature: 1, TopP: 0.99, Seed: 8})
	seen := map[int32]bool{}
	for range 5000 {
		id := s.Sample(x)
		if id%16 != 0 || id >= 300*16 {
			t.Fatalf("drew token %d outside the nucleus", id)
		}
		seen[id] = true
	}
	// 0.99 of the mass needs 297 of the 300.
	if len(seen) < 290 {
		t.Errorf("drew only %d distinct nucleus tokens", len(seen))
	}
}

func TestMinPThreshold(t *testing.T) {
	p := []float64{0.5, 0.3, 0.15, 0.05}
	// Threshold 0.25 * 0.5 = 0.125: tokens 0, 1 and 2 stay.
	s := mustNew(t, Options{Temperature: 1, MinP: 0.25, Seed: 10})
	checkFrequencies(t, counts(s, logitsOf(p...), 40000), []float64{0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0})
	// Combined with top-k the threshold is the same (relative to the best).
	s = mustNew(t, Options{Temperature: 1, MinP: 0.7, TopK: 3, Seed: 11})
	checkFrequencies(t, counts(s, logitsOf(p...), 20000), []float64{1, 0, 0, 0})
}

func TestRepeatPenalty(t *testing.T) {
	// 2/1.5 = 1.33 falls below 1.9: greedy switches to token 1.
	s := mustNew(t, Options{RepeatPenalty: 1.5})
	s.SetContext([]int32{0})
	if got := s.Sample([]float32{2, 1.9, 0}); got != 1 {
		t.Errorf("penalised token 0 still chosen: got %d, want 1", got)
	}
	// A negative logit is multiplied: -1 * 1.5 = -1.5 < -1.2.
	s = mustNew(t, Options{RepeatPenalty: 1.5})
	s.SetContext([]int32{0})
	if got := s.Sample([]float32{-1, -1.2, -5}); got != 1 {
		t.Errorf("negative logit: got %d, want 1", got)
	}
	// A token repeated in the window is penalised once: 2/1.5 = 1.33 >
	// 1.2 (twice would give 0.89).
	s = mustNew(t, Options{RepeatPenalty: 1.5})
	s.SetContext([]int32{0, 0, 0})
	if got := s.Sample([]float32{2, 1.2}); got != 0 {
		t.Errorf("repeated token penalised more than once: got %d, want 0", got)
	}
	// Only the last RepeatLastN tokens count: 0 has left a window of 2.
	s = mustNew(t, Options{RepeatPenalty: 1.5, RepeatLastN: 2})
	s.SetContext([]int32{0, 2, 2})
	if got := s.Sample([]float32{2, 1.9, 0}); got != 0 {
		t.Errorf("token outside the window penalised: got %d, want 0", got)
	}
	// Sampled tokens join the history: the same logits alternate.
	s = mustNew(t, Options{RepeatPenalty: 1.5, RepeatLastN: 1})
	seq := []int32{s.Sample([]float32{2, 1.9}), s.Sample([]float32{2, 1.9}), s.Sample([]float32{2, 1.9})}
	if seq[0] != 0 || seq[1] != 1 || seq[2] != 0 {
		t.Errorf("sequence %v, want [0 1 0]", seq)
	}
}

func TestRepeatPenaltyLeavesLogitsAlone(t *testing.T) {
	s := mustNew(t, Options{RepeatPenalty: 2, Temperature: 1, TopK: 2})
	s.SetContext([]int32{0, 1})
	x := []float32{2, -1, 0.5}
	s.Sample(x)
	if x[0] != 2 || x[1] != -1 || x[2] != 0.5 {
		t.Errorf("Sample modified its input: %v", x)
	}
}

func TestSameSeedSameTokens(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 13))
	x := make([]float32, 2000)
	for i := range x {
		x[i] = float32(r.NormFloat64() * 2)
	}
	opts := Options{Temperature: 0.9, TopK: 100, TopP: 0.95, MinP: 0.01, RepeatPenalty: 1.1, Seed: 42}
	run := func(o Options) []int32 {
		s := mustNew(t, o)
		s.SetContext([]int32{1, 2, 3})
		out := make([]int32, 500)
		for i := range out {
			out[i] = s.Sample(x)
		}
		return out
	}
	a, b := run(opts), run(opts)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed differs at draw %d: %d vs %d", i, a[i], b[i])
		}
	}
	opts.Seed = 43
	c := run(opts)
	same := 0
	for i := range a {
		if a[i] == c[i] {
			same++
		}
	}
	if same == len(a) {
		t.Errorf("seeds 42 and 43 gave identical sequences")
	}
}

func TestDegenerateLogits(t *testing.T) {
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	s := mustNew(t, Options{Temperature: 1, TopP: 0.9, Seed: 1})
	if got := s.Sample([]float32{0, inf, 1}); got != 1 {
		t.Errorf("+Inf logit: got %d, want 1", got)
	}
	if got := s.Sample([]float32{nan, 3, nan}); got != 1 {
		t.Errorf("NaN logits: got %d, want 1", got)
	}
	neg := float32(math.Inf(-1))
	if got := s.Sample([]float32{neg, neg, 0, neg}); got != 2 {
		t.Errorf("one finite logit: got %d, want 2", got)
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		o    Options
		want string
	}{
		{Options{Temperature: -1}, "temperature must be 0"},
		{Options{Temperature: math.NaN()}, "temperature"},
		{Options{TopK: -2}, "top-k must be 0"},
		{Options{TopP: 1.5}, "top-p must be between 0 and 1"},
		{Options{MinP: -0.1}, "min-p must be between 0 and 1"},
		{Options{RepeatPenalty: -1}, "repeat penalty must be positive"},
		{Options{RepeatLastN: -1}, "repeat window"},
	}
	for _, c := range cases {
		_, err := New(c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one mentioning %q", c.o, err, c.want)
		}
	}
}

func TestNoAllocationPerToken(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 15))
	x := make([]float32, 50000)
	for i := range x {
		x[i] = float32(r.NormFloat64() * 2)
	}
	for _, o := range []Options{
		{},
		{Temperature: 0.8},
		{Temperature: 0.8, TopK: 40},
		{Temperature: 0.8, TopP: 0.9},
		{Temperature: 0.8, MinP: 0.05},
		{Temperature: 0.8, TopK: 40, TopP: 0.9, MinP: 0.05, RepeatPenalty: 1.1, Seed: 3},
	} {
		s := mustNew(t, o)
		s.SetContext([]int32{5, 6, 7})
		if a := testing.AllocsPerRun(20, func() { s.Sample(x) }); a != 0 {
			t.Errorf("%+v: %v allocations per token, want 0", o, a)
		}
	}
}

// BenchmarkSample samples from gpt-oss-sized logits (201,088).
func BenchmarkSample(b *testing.B) {
	r := rand.New(rand.NewPCG(16, 17))
	x := make([]float32, 201088)
	for i := range x {
		x[i] = float32(r.NormFloat64() * 3)
	}
	for _, c := range []struct {
		name string
		o    Options
	}{
		{"greedy", Options{}},
		{"temperature", Options{Temperature: 0.8}},
		{"top-k=40", Options{Temperature: 0.8, TopK: 40}},
		{"top-p=0.9", Options{Temperature: 0.8, TopP: 0.9}},
		{"min-p=0.05", Options{Temperature: 0.8, MinP: 0.05}},
		{"all", Options{Temperature: 0.8, TopK: 40, TopP: 0.9, MinP: 0.05, RepeatPenalty: 1.1}},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := mustNew(b, c.o)
			s.Sample(x) // size the buffers
			b.ReportAllocs()
			for b.Loop() {
				s.Sample(x)
			}
		})
	}
}

func TestExpNeg(t *testing.T) {
	worst := 0.0
	for x := float32(-87); x <= 0; x += 0.00731 {
		want := math.Exp(float64(x))
		got := float64(expNeg(x))
		if e := math.Abs(got-want) / want; e > worst {
			worst = e
		}
	}
	if worst > 1e-6 {
		t.Errorf("expNeg's worst relative error is %.2e, want below 1e-6", worst)
	}
	if expNeg(-100) != 0 || expNeg(0) != 1 {
		t.Errorf("expNeg(-100) = %v, expNeg(0) = %v; want 0 and 1", expNeg(-100), expNeg(0))
	}
}
