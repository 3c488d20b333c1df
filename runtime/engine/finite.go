package engine

import (
	"errors"
	"fmt"
)

// ErrNotFinite is matched (errors.Is) when a token's logits hold NaN or
// an infinity: sampling from them would print garbage, so generation
// stops with this error instead.
var ErrNotFinite = errors.New("the logits are not finite")

// checkFinite refuses logits with a NaN or an infinity; pos is the
// position of the token they follow. It reads every logit once: for
// gpt-oss's 201088, a few microseconds beside a step's milliseconds.
func checkFinite(logits []float32, pos int) error {
	for i, v := range logits {
		if v-v != 0 { // NaN and ±Inf give NaN; every finite v gives 0
			return fmt.Errorf("%w: logit %d after position %d is %v; the weights or the computation overflowed (check the checkpoint, or try --kv f32)",
				ErrNotFinite, i, pos, float64(v))
		}
	}
	return nil
}
