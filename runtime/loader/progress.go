package loader

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// progress draws a one-line progress bar on a terminal, and on anything
// else prints only the final line, so logs stay clean.
type progress struct {
	w       io.Writer
	tty     bool
	label   string
	total   int
	current int
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) stage(label string, total int) {
	p.label, p.total, p.current = label, total, 0
	p.draw()
}

func (p *progress) advance(n int) {
	p.current += n
	p.draw()
}

func (p *progress) draw() {
	if p.w == nil || !p.tty || p.total == 0 {
		return
	}
	const width = 30
	filled := width * p.current / p.total
	fmt.Fprintf(p.w, "\r%-12s [%s%s] %3d%%", p.label, strings.Repeat("=", filled), strings.Repeat(" ", width-filled), 100*p.current/p.total)
}

func (p *progress) done(msg string) {
	if p.w == nil {
		return
	}
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintln(p.w, msg)
}
