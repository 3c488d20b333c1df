package cpu

import (
	"fmt"
	"sync"
	"testing"
)

// TestPoolCoversEachItemOnce: guided chunks (see pool.claim) cover every
// item of the loop exactly once, start on even items, are no smaller than
// the grain except the loop's last, and are the same chunks on every run.
func TestPoolCoversEachItemOnce(t *testing.T) {
	for _, workers := range []int{1, 2, 3, 8, 16} {
		p := newPool(workers, 0)
		defer p.close()
		for _, c := range []struct{ total, grain int }{{1, 1}, {7, 1}, {32, 11}, {33, 2}, {1000, 1}, {5120, 11}, {201088, 11}, {2304, 1}} {
			t.Run(fmt.Sprintf("workers=%d/total=%d/grain=%d", workers, c.total, c.grain), func(t *testing.T) {
				var first map[[2]int]bool
				for run := 0; run < 3; run++ {
					var mu sync.Mutex
					seen := make([]int, c.total)
					chunks := map[[2]int]bool{}
					p.run(c.total, c.grain, func(lo, hi, w int) {
						if w < 0 || w >= workers {
							t.Errorf("worker %d of %d", w, workers)
						}
						mu.Lock()
						defer mu.Unlock()
						chunks[[2]int{lo, hi}] = true
						for i := lo; i < hi; i++ {
							seen[i]++
						}
					})
					for i, n := range seen {
						if n != 1 {
							t.Fatalf("item %d run %d times", i, n)
						}
					}
					if workers > 1 && c.total > c.grain {
						for ch := range chunks {
							if ch[0]%2 != 0 {
								t.Errorf("chunk %v starts on an odd item", ch)
							}
							if ch[1] != c.total && ch[1]-ch[0] < c.grain {
								t.Errorf("chunk %v is smaller than the grain %d", ch, c.grain)
							}
						}
					}
					if first == nil {
						first = chunks
					} else if fmt.Sprint(first) != fmt.Sprint(chunks) {
						t.Fatalf("chunks differ between runs: %v and %v", first, chunks)
					}
				}
			})
		}
	}
}

// BenchmarkPoolRun: the cost of one parallel loop whose items do almost
// nothing (waking the workers and waiting for them), against running the
// same items on the caller.
func BenchmarkPoolRun(b *testing.B) {
	sink := make([]float32, 64*1024)
	body := func(lo, hi, _ int) {
		for i := lo; i < hi; i++ {
			sink[i] += 1
		}
	}
	for _, n := range []int{32, 4096} {
		b.Run(fmt.Sprintf("items=%d/pool", n), func(b *testing.B) {
			p := newPool(0, 0)
			defer p.close()
			for b.Loop() {
				p.run(n, 1, body)
			}
		})
		b.Run(fmt.Sprintf("items=%d/inline", n), func(b *testing.B) {
			for b.Loop() {
				body(0, n, 0)
			}
		})
	}
}

// TestPoolLoopsBackToBack runs many small loops one after another, each
// checking that every chunk it is given lies in its own range and that
// its items are covered once. A helper that finished a loop late once
// woke the caller for the next loop (the caller's parking flag did not
// say which loop it slept in), so the caller went on before that loop's
// helper had started, and the two raced on the loop's fields; under
// `go test -race`, and with the machine busy, this test caught it.
func TestPoolLoopsBackToBack(t *testing.T) {
	for _, workers := range []int{2, 3} {
		p := newPool(workers, 0)
		defer p.close()
		seen := make([]int32, 16)
		for i := range 20000 {
			n := 2 + i%15
			var mu sync.Mutex
			clear(seen)
			p.run(n, 1, func(lo, hi, _ int) {
				if lo < 0 || hi > n || lo >= hi {
					t.Errorf("loop %d of %d items got the chunk [%d, %d)", i, n, lo, hi)
					return
				}
				mu.Lock()
				for k := lo; k < hi; k++ {
					seen[k]++
				}
				mu.Unlock()
			})
			for k := range n {
				if seen[k] != 1 {
					t.Fatalf("loop %d: item %d run %d times", i, k, seen[k])
				}
			}
		}
	}
}
