package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Batcher serves many sequences at once on one backend: continuous
// batching. It owns one Session per sequence of the backend's KV cache
// (BatchBackend.Sequences; one for a backend that is not batched). A
// caller takes a session with Acquire, runs turns on it as usual
// (Generate, chat.Turn) and gives it back with Release. While sessions
// generate, their Prefill and Decode calls do not run the backend
// themselves: they hand their tokens to the batcher, whose one loop runs
// every waiting session's tokens in one Step, at most Batch tokens:
// each decoding session's next token first, then chunks of prompts
// (chunked prefill), so a long prompt never stalls the others' decode
// for more than one step.
//
// Sessions keep their KV cache between turns; Acquire gives a caller the
// free session whose cache holds the longest prefix of its prompt that
// can be resumed exactly (Session.Reusable), so a conversation returning
// finds its prefix again.
type Batcher struct {
	b      BatchBackend
	gather time.Duration
	maxQ   int
	kick   chan struct{}

	mu sync.Mutex
	// idle is signalled after every step, for a withdrawing session.
	idle     *sync.Cond
	sessions []*Session
	free     []*Session // in the order they were released
	waiters  []*waiter
	pending  []*work
	members  int // sessions acquired
	// late counts the acquired sessions that missed a step's gathering
	// and have not handed in tokens since: steps do not wait for them.
	late   int
	closed bool
	// looping is set while the loop's goroutine runs: from the first
	// call handed in until nothing is pending, so an idle batcher holds
	// no goroutine.
	looping bool
	toks    []Token
	parts   []part
	stats   BatcherStats
}

// BatcherStats are a batcher's running totals.
type BatcherStats struct {
	// Steps is the number of backend steps run; Tokens the tokens they
	// ran. Tokens / Steps is how well the sequences share steps.
	Steps, Tokens int64
	// Stepping is the time spent in the backend's Step; the rest of a
	// busy batcher's time is the sessions' own work between steps
	// (sampling, callbacks) and gathering their tokens.
	Stepping time.Duration
}

// Stats returns the running totals.
func (bt *Batcher) Stats() BatcherStats {
	bt.mu.Lock()
	defer bt.mu.Unlock()
	return bt.stats
}

// BatcherOptions tune a Batcher; the zero value is usable.
type BatcherOptions struct {
	// MaxQueue is how many Acquire calls may wait for a free session;
	// more fail with ErrQueueFull. 0 means DefaultMaxQueue.
	MaxQueue int
	// Gather is how long a step waits for acquired sessions that have not
	// handed in their next tokens yet (they are sampling, or writing to
	// their client) before it runs without them. 0 means DefaultGather.
	Gather time.Duration
}

// Defaults of BatcherOptions.
const (
	DefaultMaxQueue = 64
	DefaultGather   = 2 * time.Millisecond
)

// ErrQueueFull is returned by Acquire when MaxQueue callers already wait.
var ErrQueueFull = errors.New("queue full")

// ErrClosed is returned by a batcher that was closed.
var ErrClosed = errors.New("batcher closed")

type waiter struct {
	prompt []int32
	got    chan *Session
}

// work is one forward call of a session, run by one or more steps.
type work struct {
	s      *Session
	tokens []int32
	pos    int
	done   int // tokens run so far
	all    bool
	out    []float32
	err    error
	// running is set while a step holds some of its tokens; over once
	// the call is answered.
	running, over bool
	finished      chan struct{}
}

// part is the tokens of one work item in the current step.
type part struct {
	w        *work
	from, n  int
	stepFrom int
}

// NewBatcher makes a batcher over b. Close ends it; the backend stays
// open. An idle batcher holds no goroutine.
func NewBatcher(b Backend, opts BatcherOptions) *Batcher {
	bb, ok := b.(BatchBackend)
	if !ok {
		bb = single{b}
	}
	bt := &Batcher{
		b: bb, gather: opts.Gather, maxQ: opts.MaxQueue,
		kick: make(chan struct{}, 1),
	}
	if bt.gather <= 0 {
		bt.gather = DefaultGather
	}
	if bt.maxQ <= 0 {
		bt.maxQ = DefaultMaxQueue
	}
	bt.idle = sync.NewCond(&bt.mu)
	for i := range bb.Sequences() {
		s := NewSession(b)
		s.bt, s.seq = bt, i
		bt.sessions = append(bt.sessions, s)
		bt.free = append(bt.free, s)
	}
	return bt
}

// Sequences is the number of sessions: how many generate at once.
func (bt *Batcher) Sequences() int { return len(bt.sessions) }

// Backend returns the batcher's backend.
func (bt *Batcher) Backend() Backend { return bt.b }

// Waiting is the number of Acquire calls waiting for a session.
func (bt *Batcher) Waiting() int {
	bt.mu.Lock()
	defer bt.mu.Unlock()
	return len(bt.waiters)
}

// Acquire waits for a free session and returns the one whose cache can
// resume the longest prefix of prompt (the least recently used among
// equals). Callers are served in arrival order; when MaxQueue already
// wait, it fails at once with ErrQueueFull. The caller must Release the
// session.
func (bt *Batcher) Acquire(ctx context.Context, prompt []int32) (*Session, error) {
	bt.mu.Lock()
	if bt.closed {
		bt.mu.Unlock()
		return nil, ErrClosed
	}
	if len(bt.free) > 0 && len(bt.waiters) == 0 {
		s := bt.take(prompt)
		bt.mu.Unlock()
		return s, nil
	}
	if len(bt.waiters) >= bt.maxQ {
		bt.mu.Unlock()
		return nil, ErrQueueFull
	}
	w := &waiter{prompt: prompt, got: make(chan *Session, 1)}
	bt.waiters = append(bt.waiters, w)
	bt.mu.Unlock()
	select {
	case s := <-w.got:
		if s == nil {
			return nil, ErrClosed
		}
		return s, nil
	case <-ctx.Done():
	}
	bt.mu.Lock()
	for i, o := range bt.waiters {
		if o == w {
			bt.waiters = append(bt.waiters[:i], bt.waiters[i+1:]...)
			bt.mu.Unlock()
			return nil, ctx.Err()
		}
	}
	bt.mu.Unlock()
	// A session was handed over as the context ended: pass it on.
	if s := <-w.got; s != nil {
		bt.Release(s)
	}
	return nil, ctx.Err()
}

// take removes the best free session for prompt; bt.mu is held.
func (bt *Batcher) take(prompt []int32) *Session {
	best, n := 0, -1
	for i, s := range bt.free {
		if r := s.Reusable(prompt); r > n {
			best, n = i, r
		}
	}
	s := bt.free[best]
	bt.free = append(bt.free[:best], bt.free[best+1:]...)
	bt.members++
	s.acquired = true
	return s
}

// Release gives a session back: the next waiting caller, if any, gets a
// session at once. The session's cache is kept for later prompts.
func (bt *Batcher) Release(s *Session) {
	bt.mu.Lock()
	defer bt.mu.Unlock()
	bt.members--
	s.acquired = false
	if s.late {
		s.late = false
		bt.late--
	}
	bt.free = append(bt.free, s)
	for len(bt.waiters) > 0 && len(bt.free) > 0 && !bt.closed {
		w := bt.waiters[0]
		bt.waiters = bt.waiters[1:]
		w.got <- bt.take(w.prompt)
	}
	bt.signal() // one fewer session to wait for
}

func (bt *Batcher) signal() {
	select {
	case bt.kick <- struct{}{}:
	default:
	}
}

// Close ends the batcher: calls waiting for a step, and callers waiting
// for a session, fail with ErrClosed. A step in flight finishes first.
func (bt *Batcher) Close() {
	bt.mu.Lock()
	defer bt.mu.Unlock()
	if bt.closed {
		return
	}
	bt.closed = true
	for _, w := range bt.waiters {
		w.got <- nil
	}
	bt.waiters = nil
	bt.failPending()
	bt.signal()
}

// failPending answers every pending call not in a step with ErrClosed;
// bt.mu is held.
func (bt *Batcher) failPending() {
	kept := bt.pending[:0]
	for _, w := range bt.pending {
		if w.running {
			kept = append(kept, w)
			continue
		}
		w.over, w.err = true, ErrClosed
		close(w.finished)
	}
	bt.pending = kept
}

// run hands a session's forward call to the loop and waits for its
// logits: every token's when all is set, else the last one's.
func (bt *Batcher) run(s *Session, tokens []int32, all bool) ([]float32, error) {
	V := bt.b.Vocab()
	w := &work{s: s, tokens: tokens, pos: s.pos, all: all, finished: make(chan struct{})}
	if all {
		w.out = make([]float32, len(tokens)*V)
	} else {
		if len(s.stepOut) != V {
			s.stepOut = make([]float32, V)
		}
		w.out = s.stepOut
	}
	bt.mu.Lock()
	if bt.closed {
		bt.mu.Unlock()
		return nil, ErrClosed
	}
	bt.pending = append(bt.pending, w)
	if s.late {
		s.late = false
		bt.late--
	}
	if !bt.looping {
		bt.looping = true
		go bt.loop()
	}
	bt.mu.Unlock()
	bt.signal()
	ctx := s.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	select {
	case <-w.finished:
	case <-ctx.Done():
		bt.mu.Lock()
		for w.running {
			bt.idle.Wait()
		}
		if !w.over {
			// Not run, or run in part: leave the queue now. The cache
			// may hold some of the tokens; the session counts them as
			// written (forward's error path).
			bt.drop(w)
			w.over, w.err = true, ctx.Err()
		}
		bt.mu.Unlock()
	}
	return w.out, w.err
}

// drop removes w from pending; bt.mu is held.
func (bt *Batcher) drop(w *work) {
	for i, o := range bt.pending {
		if o == w {
			bt.pending = append(bt.pending[:i], bt.pending[i+1:]...)
			return
		}
	}
}

// markLate marks every acquired session with no tokens pending as late;
// bt.mu is held.
func (bt *Batcher) markLate() {
	for _, s := range bt.sessions {
		if s.acquired && !s.late && !bt.isPending(s) {
			s.late = true
			bt.late++
		}
	}
}

func (bt *Batcher) isPending(s *Session) bool {
	for _, w := range bt.pending {
		if w.s == s {
			return true
		}
	}
	return false
}

// loop runs steps while there is work, then ends.
func (bt *Batcher) loop() {
	for {
		bt.mu.Lock()
		// Briefly wait for every acquired session to hand in its
		// tokens, so that they share the step; a session that missed
		// the last wait (a slow client, a caller between turns) is not
		// waited for again until it hands in tokens.
		deadline := time.Now().Add(bt.gather)
		for !bt.closed && len(bt.pending) > 0 && len(bt.pending) < bt.members-bt.late {
			d := time.Until(deadline)
			if d <= 0 {
				bt.markLate()
				break
			}
			bt.mu.Unlock()
			select {
			case <-bt.kick:
			case <-time.After(d):
			}
			bt.mu.Lock()
		}
		if bt.closed {
			bt.failPending()
		}
		if len(bt.pending) == 0 {
			bt.looping = false
			bt.mu.Unlock()
			return
		}
		toks := bt.plan()
		bt.stats.Steps++
		bt.stats.Tokens += int64(len(toks))
		bt.mu.Unlock()
		t := time.Now()
		out, err := bt.b.Step(toks)
		took := time.Since(t)
		bt.mu.Lock()
		bt.stats.Stepping += took
		bt.deliver(out, err)
		bt.idle.Broadcast()
		bt.mu.Unlock()
	}
}

// plan picks the step's tokens: every decoding call's token first, then
// chunks of longer calls in arrival order, at most Batch in all. bt.mu
// is held.
func (bt *Batcher) plan() []Token {
	budget := bt.b.Batch()
	bt.toks, bt.parts = bt.toks[:0], bt.parts[:0]
	add := func(w *work, n int) {
		bt.parts = append(bt.parts, part{w: w, from: w.done, n: n, stepFrom: len(bt.toks)})
		for i := range n {
			bt.toks = append(bt.toks, Token{ID: w.tokens[w.done+i], Seq: w.s.seq, Pos: w.pos + w.done + i})
		}
		w.running = true
	}
	for _, w := range bt.pending {
		if len(w.tokens)-w.done == 1 && len(bt.toks) < budget {
			add(w, 1)
		}
	}
	for _, w := range bt.pending {
		if rest := len(w.tokens) - w.done; rest > 1 && len(bt.toks) < budget {
			add(w, min(rest, budget-len(bt.toks)))
		}
	}
	return bt.toks
}

// deliver hands the step's logits to its calls and answers those that
// are complete. bt.mu is held.
func (bt *Batcher) deliver(out []float32, err error) {
	V := bt.b.Vocab()
	for _, p := range bt.parts {
		w := p.w
		w.running = false
		if err != nil {
			w.err = err
		} else {
			w.done += p.n
			if w.all {
				copy(w.out[p.from*V:], out[p.stepFrom*V:(p.stepFrom+p.n)*V])
			} else if w.done == len(w.tokens) {
				copy(w.out, out[(p.stepFrom+p.n-1)*V:(p.stepFrom+p.n)*V])
			}
		}
		if err != nil || w.done == len(w.tokens) {
			bt.drop(w)
			if !w.over {
				w.over = true
				close(w.finished)
			}
		}
	}
}

// single runs a backend that holds one sequence as a BatchBackend.
type single struct{ Backend }

func (single) Sequences() int { return 1 }

func (b single) Step(tokens []Token) ([]float32, error) {
	ids := make([]int32, len(tokens))
	for i, t := range tokens {
		if t.Seq != 0 || t.Pos != tokens[0].Pos+i {
			return nil, fmt.Errorf("BUG: a one-sequence backend got token %d in sequence %d at position %d", i, t.Seq, t.Pos)
		}
		ids[i] = t.ID
	}
	return b.Forward(ids, tokens[0].Pos)
}
