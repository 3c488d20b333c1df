package cpu

import (
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// pool runs parallel loops on persistent workers. A loop is split into
// chunks that workers claim with an atomic counter, so uneven chunks
// balance themselves. Nothing is allocated per loop: the loop state lives
// in the pool, and the body is a func value created once when the model is
// loaded.
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
	chunk  int
	next   atomic.Int64
	closed bool

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

func (p *pool) claim(worker int) {
	for {
		c := int(p.next.Add(1) - 1)
		lo := c * p.chunk
		if lo >= p.total {
			return
		}
		p.body(lo, min(lo+p.chunk, p.total), worker)
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
	// Four chunks per worker balance uneven work without much contention.
	chunk := max(grain, (total+4*p.workers-1)/(4*p.workers))
	p.body, p.total, p.chunk = body, total, chunk
	p.next.Store(0)
	helpers := min(p.workers-1, (total+chunk-1)/chunk-1)
	p.done.Add(helpers)
	for i := 0; i < helpers; i++ {
		p.start[i] <- struct{}{}
	}
	p.claimCatchingFault(0)
	p.done.Wait()
	p.body = nil
	if f := p.fault; f != nil {
		p.fault = nil
		panic(f)
	}
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
