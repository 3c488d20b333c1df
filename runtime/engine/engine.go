// Package engine runs a model over time: it splits prompts into prefill
// calls no larger than the program's batch, decodes one token at a time
// through the KV cache, and keeps the position. It is the same for every
// backend.
package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/minerva-ml/minerva/compiler/plan"
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
	// Rings are the KV cache's sliding-window rings: the caches that keep
	// only their last Slots positions, not the whole context. A cache
	// that holds every position up to Ctx is not one. The session uses
	// them to know which earlier positions the cache still holds, so a
	// sequence is only ever rolled back to a point it can continue from
	// exactly (Session.CanResume).
	Rings() []Ring
	Close()
}

// Ring is a sliding-window layer's KV cache: position p is kept in slot p
// mod Slots, so writing position p overwrites position p - Slots; a query
// at position p reads positions p-Window+1 .. p.
type Ring struct {
	Window int
	Slots  int
}

// RingsOf is the distinct rings of a KV plan, for a backend's Rings: every
// backend allocates the cache as planned, so the plan says what it holds.
func RingsOf(kv *plan.KV) []Ring {
	var out []Ring
	for _, l := range kv.Layers {
		r := Ring{Window: int(l.Window), Slots: int(l.Capacity)}
		if l.Ring && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// ErrContextFull is matched (errors.Is) when a prompt or a generation
// would run past the context.
var ErrContextFull = errors.New("context full")

// Session is one sequence on a backend. It knows the tokens at each
// position and, for each sliding-window ring, the earliest position the
// ring still holds, so that it can roll the sequence back for a prompt
// that shares a prefix with it (Reuse) without ever reading a position a
// later token overwrote.
type Session struct {
	b   Backend
	pos int
	// ids are the tokens at positions 0 .. pos-1.
	ids []int32
	// rings are the backend's, and held[i] is the earliest position
	// ring i holds for this sequence: positions held[i] .. pos-1 are in
	// the ring, unoverwritten.
	rings []Ring
	held  []int
	// last holds the logits of the latest token, copied out of the
	// backend's buffer so they survive the next call.
	last []float32
	// bt, when set, runs the session's tokens in its batched steps, as
	// sequence seq of the backend's KV cache.
	bt  *Batcher
	seq int
	// stepOut receives the batcher's logits for one call.
	stepOut []float32
	// acquired and late are the batcher's, under its lock: the session
	// is held by a caller; it missed a step's gathering.
	acquired, late bool
	// ctx, while Generate runs, lets a cancelled generation leave a
	// batched step it is waiting for.
	ctx context.Context

	// Progress, if set, is called after each call of a prefill that
	// takes more than one (done of total tokens), so a long prompt can
	// show progress; an error from it stops the prefill (Ctrl-C) and is
	// returned.
	Progress func(done, total int) error
}

// NewSession starts an empty sequence.
func NewSession(b Backend) *Session {
	s := &Session{b: b, last: make([]float32, b.Vocab()), rings: b.Rings()}
	s.held = make([]int, len(s.rings))
	return s
}

// Pos is the number of tokens in the sequence so far.
func (s *Session) Pos() int { return s.pos }

// Tokens are the tokens of the sequence so far, position by position;
// the slice is valid until the next call.
func (s *Session) Tokens() []int32 { return s.ids[:s.pos] }

// Backend returns the session's backend.
func (s *Session) Backend() Backend { return s.b }

// Reset empties the sequence; the cache is overwritten as it refills.
func (s *Session) Reset() { s.Rewind(0) }

// CanResume reports whether the sequence, cut back to its first p
// tokens, can continue exactly as if those tokens had just been run:
// every sliding-window ring still holds the window of positions before p
// (positions p-Window+1 .. p-1), none of them overwritten by a later
// token. A cache holding the whole context always can. This is the one
// rule for reusing the KV cache; every backend's rings obey it.
func (s *Session) CanResume(p int) bool {
	if p < 0 || p > s.pos {
		return false
	}
	if p == 0 {
		return true
	}
	for i, r := range s.rings {
		if max(0, p-r.Window+1) < s.held[i] {
			return false
		}
	}
	return true
}

// Rewind cuts the sequence back to at most n tokens, so a new turn can
// reuse the cached prefix. It keeps n tokens when the cache can resume
// from there (CanResume) and none otherwise (no shorter prefix can be
// resumed when n cannot: a ring that lost the window before n lost it
// before every earlier position too). It returns the tokens kept.
func (s *Session) Rewind(n int) int {
	n = min(max(n, 0), s.pos)
	if !s.CanResume(n) {
		n = 0
	}
	s.pos = n
	for i := range s.held {
		// Positions held[i] .. n-1 are still held; when the ring had
		// already lost position n, the next token starts it afresh.
		s.held[i] = min(s.held[i], n)
	}
	return n
}

// Reuse prepares the sequence for prompt: it keeps the longest common
// prefix of the sequence and prompt that the cache can resume from, and
// returns its length, the prompt tokens that need not run. The last
// prompt token always runs, to give the logits of the next token.
// Generate then runs prompt[Reuse(prompt):].
func (s *Session) Reuse(prompt []int32) int {
	return s.Rewind(s.Reusable(prompt))
}

// Reusable is how many tokens of prompt Reuse would keep, without
// changing the session.
func (s *Session) Reusable(prompt []int32) int {
	n := 0
	for n < min(s.pos, len(prompt)-1) && s.ids[n] == prompt[n] {
		n++
	}
	if !s.CanResume(n) {
		return 0
	}
	return n
}

// forward runs tokens at the current position and advances it; every
// call of the backend goes through here, so the session always knows
// what the cache holds. It returns the logits of every token when all is
// set, else of the last one only.
func (s *Session) forward(tokens []int32, all bool) ([]float32, error) {
	var out []float32
	var err error
	if s.bt != nil {
		out, err = s.bt.run(s, tokens, all)
	} else {
		out, err = s.b.Forward(tokens, s.pos)
		if err == nil && !all {
			out = out[(len(tokens)-1)*s.b.Vocab():]
		}
	}
	if err != nil {
		// The cache may hold some of these tokens' keys and values:
		// the session is unchanged, but the rings may have lost the
		// positions these calls overwrote.
		s.wrote(s.pos + len(tokens))
		return nil, err
	}
	s.ids = append(s.ids[:s.pos], tokens...)
	s.pos += len(tokens)
	s.wrote(s.pos)
	return out, nil
}

// wrote records that positions up to end (exclusive) were written: each
// ring kept only its last Slots of them.
func (s *Session) wrote(end int) {
	for i, r := range s.rings {
		s.held[i] = max(s.held[i], end-r.Slots)
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
	for start := 0; start < len(ids); start += s.b.Batch() {
		end := min(start+s.b.Batch(), len(ids))
		out, err := s.forward(ids[start:end], false)
		if err != nil {
			return nil, err
		}
		copy(s.last, out)
		if s.Progress != nil && len(ids) > s.b.Batch() {
			if err := s.Progress(end, len(ids)); err != nil {
				return nil, err
			}
		}
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
	out, err := s.forward(one[:], false)
	if err != nil {
		return nil, err
	}
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
		first := s.pos
		l, err := s.forward(ids[start:end], true)
		if err != nil {
			return nil, err
		}
		for r := range end - start {
			if err := checkFinite(l[r*V:(r+1)*V], first+r); err != nil {
				return nil, err
			}
		}
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
