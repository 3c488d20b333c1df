package serve

import (
	"context"
	"errors"
	"sync"
)

var errQueueFull = errors.New("queue full")

// fifo lets one holder at a time use the model; others wait in arrival
// order, at most max of them. A waiter whose context ends leaves the
// queue.
type fifo struct {
	mu      sync.Mutex
	max     int
	busy    bool
	waiters []chan struct{}
}

func newFIFO(max int) *fifo { return &fifo{max: max} }

// acquire returns nil once the caller holds the model; then it must call
// release.
//
// A request that gets here has been read and decoded: it gives back its
// intake slots first, so that requests waiting for the model hold none
// of the slots meant for reading (limits.go).
func (q *fifo) acquire(ctx context.Context) error {
	leaveIntake(ctx)
	q.mu.Lock()
	if !q.busy {
		q.busy = true
		q.mu.Unlock()
		return nil
	}
	if len(q.waiters) >= q.max {
		q.mu.Unlock()
		return errQueueFull
	}
	turn := make(chan struct{})
	q.waiters = append(q.waiters, turn)
	q.mu.Unlock()
	select {
	case <-turn:
		return nil
	case <-ctx.Done():
	}
	q.mu.Lock()
	for i, w := range q.waiters {
		if w == turn {
			q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
			q.mu.Unlock()
			return ctx.Err()
		}
	}
	q.mu.Unlock()
	// release handed us the model as the context ended: pass it on.
	q.release()
	return ctx.Err()
}

// release hands the model to the first waiter, if any.
func (q *fifo) release() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.busy {
		panic("BUG: fifo released while not held")
	}
	if len(q.waiters) == 0 {
		q.busy = false
		return
	}
	next := q.waiters[0]
	q.waiters = q.waiters[1:]
	close(next) // busy stays true: next holds it now
}

func (q *fifo) waiting() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waiters)
}
