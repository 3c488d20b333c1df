package cpu

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// pool runs parallel loops on persistent workers. A loop is split into
// chunks that workers claim with an atomic counter, so uneven chunks
// balance themselves. Nothing is allocated per loop: the loop state lives
// in the pool, and the body is a func value created once when the model is
// loaded.
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
	for range start {
		p.claim(id)
		p.done.Done()
	}
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
	p.claim(0)
	p.done.Wait()
	p.body = nil
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
