package engine

import "fmt"

// Token is one token of a batched step: its id, the sequence it belongs
// to and its position in that sequence.
type Token struct {
	ID  int32
	Seq int
	Pos int
}

// BatchBackend is a backend whose KV cache holds several sequences, each
// in its own region (the rings are per sequence), and that runs tokens of
// several of them in one call: continuous batching. Forward is Step on
// sequence 0.
type BatchBackend interface {
	Backend
	// Sequences is how many sequences the KV cache holds.
	Sequences() int
	// Step runs tokens, at most Batch of them, and returns their logits,
	// Vocab() floats per token in the tokens' order, valid until the next
	// call. A sequence's tokens in one step are at consecutive positions,
	// in order, and its earlier positions have been run already: each
	// token attends to its own sequence's positions up to its own.
	Step(tokens []Token) ([]float32, error)
}

// CheckStep refuses a step a backend cannot run: no tokens, more than
// batch, a sequence or position out of range, an id outside the
// vocabulary, or a sequence whose tokens are not consecutive positions.
// Every BatchBackend calls it first, so all give the same errors.
func CheckStep(tokens []Token, batch, ctx, vocab, seqs int) error {
	switch {
	case len(tokens) == 0:
		return fmt.Errorf("no tokens to run")
	case len(tokens) > batch:
		return fmt.Errorf("BUG: %d tokens in one step; the program was planned for at most %d", len(tokens), batch)
	}
	for i, t := range tokens {
		switch {
		case t.Seq < 0 || t.Seq >= seqs:
			return fmt.Errorf("BUG: token %d is in sequence %d; the KV cache holds %d", i, t.Seq, seqs)
		case t.Pos < 0 || t.Pos >= ctx:
			return fmt.Errorf("position %d exceeds the context of %d tokens; compile with a larger --ctx", t.Pos, ctx)
		case t.ID < 0 || int(t.ID) >= vocab:
			return fmt.Errorf("token id %d is outside the vocabulary (0..%d)", t.ID, vocab-1)
		}
		// The sequence's previous token in the step, if any, must be at
		// the position before. (A backward scan: steps are short, and
		// this allocates nothing.)
		for j := i - 1; j >= 0; j-- {
			if u := tokens[j]; u.Seq == t.Seq {
				if u.Pos != t.Pos-1 {
					return fmt.Errorf("BUG: sequence %d has position %d after %d in one step; a sequence's tokens must be consecutive", t.Seq, t.Pos, u.Pos)
				}
				break
			}
		}
	}
	return nil
}
