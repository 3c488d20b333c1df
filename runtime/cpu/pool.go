package cpu

import (
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// pool runs parallel loops on persistent workers. A loop is split into
// chunks that workers claim from an atomic counter, so uneven chunks
// balance themselves. Chunks shrink towards the loop's end (see claim), so
// the workers finish within a small chunk of each other. Nothing is
// allocated per loop: the loop state lives in the pool, and the body is a
// func value created once when the model is loaded.
//
// Hand-off. A step of a small model is dozens of loops of a few
// microseconds each, a few microseconds apart. Waking a parked goroutine
// for each one cost more than the loop: Go puts the woken worker in the
// caller's own run queue, so it often ran only once the caller blocked,
// after the caller had taken most chunks, and the second thread of a
// fortune step did 28% of the work, not 50% (docs/benchmarks.md). So a
// worker that finishes a loop watches for the next one for a while (spin) before
// it parks, and the caller watches for its helpers' last chunks the same
// way before it parks: within a step nobody parks, between steps (and on
// an idle model) everybody does. The spin yields to the Go scheduler
// every few polls, so other goroutines on the same P still run.
//
// Bodies read weights from a memory-mapped checkpoint. If the file is cut
// short underneath, a read faults (SIGBUS); the workers run with
// debug.SetPanicOnFault, so the fault is a panic, which run re-raises on
// its caller once every worker has stopped, for Model.Forward to turn into
// an error. Without this the process would die.
type pool struct {
	workers int
	// grainsPerHelper is how many chunks of grain items a loop needs for
	// each helper it wakes: workers/4, at least 1. Each helper costs the
	// loop its hand-off and a share of the claims on one counter, and
	// that cost grows with the workers. On 16 cores (an Intel Xeon, the
	// device host of docs/benchmarks.md) fortune's step of one token took
	// 0.66 ms with a helper per chunk, 0.61 with one per 2, 0.53 per 4
	// and 0.57 per 8; its step of 8 tokens 1.61, 1.47, 1.31 and 1.44 ms.
	// Two cores keep one per chunk.
	grainsPerHelper int
	spin            time.Duration // how long an idle worker or caller polls
	helpers         []*poolWorker
	mu              sync.Mutex // one loop at a time

	// loop announces a loop: its number in the high bits and how many
	// helpers it wants in the low 8. A worker reads the loop's fields
	// only when the announcement names it as a helper, and run writes
	// them only while no helper is busy, so they need no lock.
	loop atomic.Uint64
	// busy counts the helpers of the current loop that have not finished.
	busy atomic.Int32
	// callerParked and callerWake let the last helper wake a caller that
	// stopped spinning. callerParked holds the announcement of the loop
	// the caller sleeps in (0: none), so that a helper that finishes a
	// loop late, after the caller has moved on to the next one, cannot
	// wake it for that next loop: it would return with the next loop's
	// helpers still to come, and write the next loop's fields while
	// they read them.
	callerParked atomic.Uint64
	callerWake   chan struct{}

	// The loop being run.
	body   func(lo, hi, worker int)
	total  int
	grain  int          // the smallest chunk
	next   atomic.Int64 // where the next chunk starts
	closed atomic.Bool

	// waited is how long callers of run have waited, in all, for the
	// other workers to finish a loop's last chunks once none was left to
	// take: the cost of uneven ends of loops, which the decode benchmark
	// reports. Written under mu.
	waited time.Duration

	faultMu sync.Mutex
	fault   any // the first fault of the loop being run
}

// poolWorker is a helper's parking place.
type poolWorker struct {
	parked atomic.Bool
	wake   chan struct{}
}

// defaultSpin is how long a worker or a caller polls before it parks. A
// fortune step's loops are a few microseconds apart and a step's own
// serial work (sampling, the engine's bookkeeping) a few tens; 50 µs
// keeps the workers awake through a step and costs an idle model 50 µs of
// one core per step.
const defaultSpin = 50 * time.Microsecond

const loopHelperBits = 8

// newPool starts workers-1 helpers (workers 0: GOMAXPROCS). spin is how
// long an idle worker polls for the next loop: 0 means defaultSpin, < 0
// none. Workers beyond GOMAXPROCS never spin, since a spinning goroutine
// would hold a P that a working one needs.
func newPool(workers int, spin time.Duration) *pool {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	// The announcement has 8 bits for the helper count.
	workers = min(workers, 1<<loopHelperBits)
	switch {
	case spin == 0:
		spin = defaultSpin
	case spin < 0 || workers > runtime.GOMAXPROCS(0):
		spin = 0
	}
	p := &pool{workers: workers, grainsPerHelper: max(1, workers/4), spin: spin, callerWake: make(chan struct{}, 1)}
	for w := 1; w < workers; w++ {
		pw := &poolWorker{wake: make(chan struct{}, 1)}
		p.helpers = append(p.helpers, pw)
		go p.worker(pw, w)
	}
	return p
}

func (p *pool) worker(pw *poolWorker, id int) {
	// This goroutine reads mapped weights for its whole life.
	debug.SetPanicOnFault(true)
	var seen uint64
	for {
		a := p.awaitLoop(pw, seen)
		if p.closed.Load() {
			return
		}
		seen = a
		if int(a&(1<<loopHelperBits-1)) < id {
			continue // not wanted for this loop
		}
		p.claimCatchingFault(id)
		if p.busy.Add(-1) == 0 && p.callerParked.CompareAndSwap(a, 0) {
			p.callerWake <- struct{}{}
		}
	}
}

// awaitLoop returns the first announcement other than seen, spinning for
// for p.spin and then parking until run wakes it.
func (p *pool) awaitLoop(pw *poolWorker, seen uint64) uint64 {
	for {
		if a, ok := spinUntil(p.spin, func() (uint64, bool) {
			a := p.loop.Load()
			return a, a != seen || p.closed.Load()
		}); ok {
			return a
		}
		pw.parked.Store(true)
		if a := p.loop.Load(); a != seen || p.closed.Load() {
			if !pw.parked.CompareAndSwap(true, false) {
				<-pw.wake // run saw us parked and sent a wake-up: take it
			}
			return a
		}
		<-pw.wake
	}
}

// spinUntil polls cond for d, yielding to the scheduler between polls,
// and returns its value once it holds.
func spinUntil[T any](d time.Duration, cond func() (T, bool)) (T, bool) {
	var deadline time.Time
	for i := 0; ; i++ {
		if v, ok := cond(); ok {
			return v, true
		}
		if d <= 0 {
			var zero T
			return zero, false
		}
		if i&15 != 15 {
			continue
		}
		now := time.Now()
		if deadline.IsZero() {
			deadline = now.Add(d)
		} else if now.After(deadline) {
			var zero T
			return zero, false
		}
		runtime.Gosched()
	}
}

// claimCatchingFault runs claim and keeps a memory fault for run to
// re-raise; any other panic is a bug and goes on.
func (p *pool) claimCatchingFault(worker int) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if re, ok := r.(runtime.Error); !ok || !isFault(re) {
			panic(r)
		}
		p.faultMu.Lock()
		if p.fault == nil {
			p.fault = r
		}
		p.faultMu.Unlock()
		// Let the other workers stop early: the loop's result is lost.
		p.next.Store(int64(p.total))
	}()
	p.claim(worker)
}

// isFault tells a memory fault (which carries its address) from other
// runtime errors.
func isFault(e runtime.Error) bool {
	_, ok := e.(interface{ Addr() uintptr })
	return ok
}

// claim runs chunks until none is left. Each chunk is 1/(2*workers) of
// what is left of the loop, and at least grain items (guided scheduling):
// big chunks first, while there is much left to balance, and chunks near
// grain at the end, so a worker that finds the loop done waits at most
// about one small chunk for the others. Fixed chunks of total/(4*workers)
// made the first worker to finish wait 10-14 ms of a 140-167 ms decode
// step (docs/benchmarks.md). A chunk's size depends only on where it
// starts, so the chunks are the same whichever worker takes them.
func (p *pool) claim(worker int) {
	for {
		lo := p.next.Load()
		left := int64(p.total) - lo
		if left <= 0 {
			return
		}
		n := max(int64(p.grain), (left+int64(2*p.workers)-1)/int64(2*p.workers))
		// Even sizes keep row pairs (rowPair, dots2) within a chunk.
		n = min(n+n&1, left)
		if !p.next.CompareAndSwap(lo, lo+n) {
			continue
		}
		p.body(int(lo), int(lo+n), worker)
	}
}

// run calls body over [0, total) in chunks of at least grain items, on all
// workers, and returns when every chunk is done. worker (0..workers-1)
// indexes per-worker scratch space.
func (p *pool) run(total, grain int, body func(lo, hi, worker int)) {
	if total <= 0 {
		return
	}
	if p.workers == 1 || total <= grain {
		body(0, total, 0)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	grain = max(grain, 1)
	p.body, p.total, p.grain = body, total, grain
	p.next.Store(0)
	helpers := max(0, min(p.workers-1, (total+grain-1)/grain/p.grainsPerHelper-1))
	p.busy.Store(int32(helpers))
	p.loop.Store((p.loop.Load()>>loopHelperBits+1)<<loopHelperBits | uint64(helpers))
	for _, pw := range p.helpers[:helpers] {
		if pw.parked.CompareAndSwap(true, false) {
			pw.wake <- struct{}{}
		}
	}
	p.claimCatchingFault(0)
	t := time.Now()
	p.awaitHelpers(p.loop.Load())
	p.waited += time.Since(t)
	p.body = nil
	if f := p.fault; f != nil {
		p.fault = nil
		panic(f)
	}
}

// awaitHelpers returns once every helper of the loop announced as loop
// has finished,
// spinning for p.spin and then parking until the last one wakes it.
func (p *pool) awaitHelpers(loop uint64) {
	done := func() (struct{}, bool) { return struct{}{}, p.busy.Load() == 0 }
	if _, ok := spinUntil(p.spin, done); ok {
		return
	}
	p.callerParked.Store(loop)
	if p.busy.Load() == 0 {
		if !p.callerParked.CompareAndSwap(loop, 0) {
			<-p.callerWake // the last helper saw us parked and sent a wake-up: take it
		}
		return
	}
	<-p.callerWake
}

// waitedSoFar returns waited; it must not be called during a loop.
func (p *pool) waitedSoFar() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waited
}

func (p *pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Swap(true) {
		return
	}
	for _, pw := range p.helpers {
		if pw.parked.CompareAndSwap(true, false) {
			pw.wake <- struct{}{}
		}
	}
}
