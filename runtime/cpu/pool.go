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
// Bodies read weights from a memory-mapped checkpoint. If the file is cut
// short underneath, a read faults (SIGBUS); the workers run with
// debug.SetPanicOnFault, so the fault is a panic, which run re-raises on
// its caller once every worker has stopped, for Model.Forward to turn into
// an error. Without this the process would die.
type pool struct {
	workers int
	start   []chan struct{}
	done    sync.WaitGroup
	mu      sync.Mutex // one loop at a time

	// The loop being run.
	body   func(lo, hi, worker int)
	total  int
	grain  int          // the smallest chunk
	next   atomic.Int64 // where the next chunk starts
	closed bool

	// waited is how long callers of run have waited, in all, for the
	// other workers to finish a loop's last chunks once none was left to
	// take: the cost of uneven ends of loops, which the decode benchmark
	// reports. Written under mu.
	waited time.Duration

	faultMu sync.Mutex
	fault   any // the first fault of the loop being run
}

func newPool(workers int) *pool {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	p := &pool{workers: workers}
	for w := 1; w < workers; w++ {
		c := make(chan struct{}, 1)
		p.start = append(p.start, c)
		go p.worker(c, w)
	}
	return p
}

func (p *pool) worker(start chan struct{}, id int) {
	// This goroutine reads mapped weights for its whole life.
	debug.SetPanicOnFault(true)
	for range start {
		p.claimCatchingFault(id)
		p.done.Done()
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
	helpers := min(p.workers-1, (total+grain-1)/grain-1)
	p.done.Add(helpers)
	for i := 0; i < helpers; i++ {
		p.start[i] <- struct{}{}
	}
	p.claimCatchingFault(0)
	t := time.Now()
	p.done.Wait()
	p.waited += time.Since(t)
	p.body = nil
	if f := p.fault; f != nil {
		p.fault = nil
		panic(f)
	}
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
	if p.closed {
		return
	}
	p.closed = true
	for _, c := range p.start {
		close(c)
	}
}
