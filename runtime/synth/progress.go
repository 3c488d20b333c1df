package synth

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// progress reports tensors and bytes written and the rate. On a terminal
// it redraws one line four times a second; elsewhere it prints a line
// every ten seconds, so logs stay short.
type progress struct {
	w            io.Writer
	tty          bool
	totalTensors int
	totalBytes   int64
	start        time.Time

	tensors, bytes atomic.Int64
	failed         atomic.Bool

	quit chan struct{}
	wg   sync.WaitGroup
}

func newProgress(w io.Writer, tensors int, bytes int64) *progress {
	p := &progress{w: w, totalTensors: tensors, totalBytes: bytes, start: time.Now(), quit: make(chan struct{})}
	if w == nil {
		return p
	}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	every := 10 * time.Second
	if p.tty {
		every = 250 * time.Millisecond
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.quit:
				return
			case <-t.C:
				p.draw()
			}
		}
	}()
	return p
}

func (p *progress) line() string {
	const width = 30
	done := p.bytes.Load()
	filled := 0
	if p.totalBytes > 0 {
		filled = int(int64(width) * done / p.totalBytes)
	}
	secs := time.Since(p.start).Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(done) / 1e6 / secs
	}
	return fmt.Sprintf("synth [%s%s] %d/%d tensors  %.2f/%.2f GB  %.0f MB/s",
		strings.Repeat("=", filled), strings.Repeat(" ", width-filled),
		p.tensors.Load(), p.totalTensors, float64(done)/1e9, float64(p.totalBytes)/1e9, rate)
}

func (p *progress) draw() {
	if p.tty {
		fmt.Fprintf(p.w, "\r%s", p.line())
	} else {
		fmt.Fprintln(p.w, p.line())
	}
}

// stop ends the display and prints msg, if any, on its own line.
func (p *progress) stop(msg string) {
	if p.w == nil {
		return
	}
	close(p.quit)
	p.wg.Wait()
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
	if msg != "" {
		fmt.Fprintln(p.w, msg)
	}
}
