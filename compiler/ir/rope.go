package ir

import "math"

// RopeFrequencies returns the inverse frequency of each rotated pair and the
// factor cos and sin are scaled by, for a rope op's attributes. It follows
// transformers' modeling_rope_utils (default, linear, yarn, llama3),
// including its float32 arithmetic: the reference computes inv_freq in
// float32 and so do we, so positions rotate by the same angles.
func RopeFrequencies(a Attrs) (invFreq []float32, scale float32) {
	dim := a.Int("rotary_dim")
	if dim == 0 {
		dim = a.Int("head_dim")
	}
	base := float32(a.Float("theta"))
	half := int(dim / 2)
	inv := make([]float32, half)
	for i := range inv {
		exp := float32(2*i) / float32(dim)
		inv[i] = 1 / float32(math.Pow(float64(base), float64(exp)))
	}
	scale = 1
	factor := float32(a.Float("factor"))
	switch a.String("type") {
	case RopeLinear:
		for i := range inv {
			inv[i] /= factor
		}
	case RopeYaRN:
		scale = yarn(a, inv, base, dim, factor)
	case RopeLlama3:
		llama3(a, inv, factor)
	}
	if af := a.Float("attention_factor"); af != 0 {
		scale = float32(af)
	}
	return inv, scale
}

// yarn blends interpolated and extrapolated frequencies with a linear ramp
// between the correction dimensions (YaRN, arXiv:2309.00071).
func yarn(a Attrs, inv []float32, base float32, dim int64, factor float32) float32 {
	origMax := float64(a.Int("original_max"))
	correction := func(rotations float64) float64 {
		return float64(dim) * math.Log(origMax/(rotations*2*math.Pi)) / (2 * math.Log(float64(base)))
	}
	low := correction(a.Float("beta_fast"))
	high := correction(a.Float("beta_slow"))
	if a.Bool("truncate") {
		low, high = math.Floor(low), math.Ceil(high)
	}
	low = math.Max(low, 0)
	high = math.Min(high, float64(dim-1))
	lo, hi := float32(low), float32(high)
	if lo == hi {
		hi += 0.001
	}
	for i := range inv {
		ramp := (float32(i) - lo) / (hi - lo)
		ramp = min(max(ramp, 0), 1)
		extrapolation := 1 - ramp
		interpolated := inv[i] / factor
		inv[i] = interpolated*(1-extrapolation) + inv[i]*extrapolation
	}
	if factor <= 1 {
		return 1
	}
	return float32(0.1*math.Log(float64(factor)) + 1)
}

// llama3 divides low frequencies by the factor and smooths the band between
// (Llama 3.1's scaling).
func llama3(a Attrs, inv []float32, factor float32) {
	low := float32(a.Float("low_freq_factor"))
	high := float32(a.Float("high_freq_factor"))
	old := float32(a.Int("original_max"))
	lowWavelen := old / low
	highWavelen := old / high
	for i, f := range inv {
		wavelen := 2 * math.Pi / f
		scaled := f
		if wavelen > lowWavelen {
			scaled = f / factor
		}
		if !(wavelen < highWavelen) && !(wavelen > lowWavelen) {
			smooth := (old/wavelen - low) / (high - low)
			scaled = (1-smooth)*scaled/factor + smooth*scaled
		}
		inv[i] = scaled
	}
}
