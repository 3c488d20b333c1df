// Package engine runs a model over time: it splits prompts into prefill
// calls no larger than the program's batch, decodes one token at a time
// through the KV cache, and keeps the position. It is the same for every
// backend.
package engine

import (
	"errors"
	"fmt"
)

// Backend executes a compiled program: the CPU backend, the emitted Metal
// run on the CPU (mslemu), or Metal itself.
type Backend interface {
	// Forward runs tokens at positions pos, pos+1, ... and returns their
	// logits, Vocab() floats per token, valid until the next call.
	Forward(tokens []int32, pos int) ([]float32, error)
	// Batch is the most tokens one Forward call takes.
	Batch() int
	// Ctx is the number of positions the KV cache holds.
	Ctx() int
	// Vocab is the width of the logits.
	Vocab() int
	Close()
}

// ErrContextFull is matched (errors.Is) when a prompt or a generation
// would run past the context.
var ErrContextFull = errors.New("context full")

// Session is one sequence on a backend.
type Session struct {
	b   Backend
	pos int
	// last holds the logits of the latest token, copied out of the
	// backend's buffer so they survive the next call.
	last []float32
}

// NewSession starts an empty sequence.
func NewSession(b Backend) *Session {
	return &Session{b: b, last: make([]float32, b.Vocab())}
}

// Pos is the number of tokens in the sequence so far.
func (s *Session) Pos() int { return s.pos }

// Backend returns the session's backend.
func (s *Session) Backend() Backend { return s.b }

// Reset empties the sequence; the cache is overwritten as it refills.
func (s *Session) Reset() { s.pos = 0 }

// Truncate drops the tokens after n, so a new turn can reuse the cached
// prefix.
func (s *Session) Truncate(n int) {
	if n < s.pos {
		s.pos = max(n, 0)
	}
}

// CheckFits reports, before any work, whether n more tokens fit.
func (s *Session) CheckFits(n int) error {
	if s.pos+n > s.b.Ctx() {
		return fmt.Errorf("%w: %d tokens after %d already in the sequence need %d positions, but the context holds %d; use a larger --ctx",
			ErrContextFull, n, s.pos, s.pos+n, s.b.Ctx())
	}
	return nil
}

// Prefill runs tokens after the current position in calls of at most
// Batch tokens and returns the logits of the last one.
func (s *Session) Prefill(ids []int32) ([]float32, error) {
	if len(ids) == 0 {
		return nil, fmt.Errorf("the prompt is empty")
	}
	if err := s.CheckFits(len(ids)); err != nil {
		return nil, err
	}
	V := s.b.Vocab()
	for start := 0; start < len(ids); start += s.b.Batch() {
		end := min(start+s.b.Batch(), len(ids))
		out, err := s.b.Forward(ids[start:end], s.pos)
		if err != nil {
			return nil, err
		}
		s.pos += end - start
		copy(s.last, out[(end-start-1)*V:])
	}
	if err := checkFinite(s.last, s.pos-1); err != nil {
		return nil, err
	}
	return s.last, nil
}

// Decode runs one token and returns its logits.
func (s *Session) Decode(id int32) ([]float32, error) {
	if err := s.CheckFits(1); err != nil {
		return nil, err
	}
	var one [1]int32
	one[0] = id
	out, err := s.b.Forward(one[:], s.pos)
	if err != nil {
		return nil, err
	}
	s.pos++
	copy(s.last, out)
	if err := checkFinite(s.last, s.pos-1); err != nil {
		return nil, err
	}
	return s.last, nil
}

// AllLogits returns the logits of every token of ids: the first prefill
// tokens run as a prefill (in Batch-sized calls), the rest one at a time,
// so that both paths run. This is `minerva logits`.
func (s *Session) AllLogits(ids []int32, prefill int) ([]float32, error) {
	if err := s.CheckFits(len(ids)); err != nil {
		return nil, err
	}
	prefill = min(max(prefill, 0), len(ids))
	V := s.b.Vocab()
	out := make([]float32, 0, len(ids)*V)
	for start := 0; start < prefill; start += s.b.Batch() {
		end := min(start+s.b.Batch(), prefill)
		l, err := s.b.Forward(ids[start:end], s.pos)
		if err != nil {
			return nil, err
		}
		s.pos += end - start
		out = append(out, l...)
	}
	for _, id := range ids[prefill:] {
		l, err := s.Decode(id)
		if err != nil {
			return nil, err
		}
		out = append(out, l...)
	}
	return out, nil
}
