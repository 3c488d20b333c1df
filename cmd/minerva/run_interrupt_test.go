package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRunChatInterruptAtPrompt: Ctrl-C while the chat waits for a
// message ends it with 130. The input stays open: only the interrupt can
// end the chat.
func TestRunChatInterruptAtPrompt(t *testing.T) {
	in, feed := io.Pipe()
	defer feed.Close()
	sig := make(chan os.Signal) // unbuffered: the send waits for the chat to take it
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"run", "--chat"}, &Env{Stdin: in, Stdout: &out, Stderr: &errb, Interrupts: sig})
	}()
	select {
	case sig <- os.Interrupt:
	case code := <-done:
		t.Fatalf("the chat ended (exit %d) before Ctrl-C: %s", code, errb.String())
	}
	select {
	case code := <-done:
		if code != 130 || out.Len() != 0 {
			t.Errorf("exit %d, stdout %q; want 130 and no reply", code, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Ctrl-C at the prompt did not end the chat")
	}
}

// interruptOnce is stdout that sends Ctrl-C at the first text written
// to it, then gives the run time to take it before generation goes on.
type interruptOnce struct {
	sig  chan<- os.Signal
	once sync.Once
	mu   sync.Mutex
	buf  bytes.Buffer
}

func (w *interruptOnce) Write(p []byte) (int, error) {
	w.once.Do(func() {
		w.sig <- os.Interrupt
		time.Sleep(50 * time.Millisecond)
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// TestRunChatInterruptReply: Ctrl-C during a reply stops that reply, and
// the chat goes on to the next message.
func TestRunChatInterruptReply(t *testing.T) {
	sig := make(chan os.Signal)
	out := &interruptOnce{sig: sig}
	var errb bytes.Buffer
	code := run([]string{"run", "--chat", "-n", "7"}, &Env{Stdin: strings.NewReader("A computer\nThe meaning of life is\n"), Stdout: out, Stderr: &errb, Interrupts: sig})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var summaries []string
	for _, l := range strings.Split(errb.String(), "\n") {
		if strings.HasPrefix(l, "prefill: ") {
			summaries = append(summaries, l)
		}
	}
	if len(summaries) != 2 || !strings.HasSuffix(summaries[0], "stopped by Ctrl-C") || strings.Contains(summaries[1], "Ctrl-C") {
		t.Errorf("summaries %q: want the first reply stopped by Ctrl-C, then a second reply", summaries)
	}
	if first := strings.SplitN(out.buf.String(), "\n", 2)[0]; !strings.HasPrefix(fortuneAnswer, first) || first+"\n" == fortuneAnswer {
		t.Errorf("first reply %q: want a cut-short %q", first, fortuneAnswer)
	}
}

// TestRunInterruptPrefill: Ctrl-C in a prefill of several calls stops it
// after the call that runs, and the summary says Ctrl-C stopped it (it
// said "stopped by " and nothing: no token had been generated) after the
// 8 tokens that ran (it counted all 37 of the prompt).
func TestRunInterruptPrefill(t *testing.T) {
	sig := make(chan os.Signal, 1)
	sig <- os.Interrupt
	var out, errb bytes.Buffer
	prompt := strings.Repeat("A computer salesman knows when he's lying. ", 4)
	code := run([]string{"run", "--batch", "8", "-p", prompt}, &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Interrupts: sig})
	if code != 130 || out.String() != "\n" || !strings.Contains(errb.String(), "prefill: 8 tokens") || !strings.Contains(errb.String(), "decode: 0 tokens") || !strings.Contains(errb.String(), "stopped by Ctrl-C") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

// TestRunPositionalTraps: an existing file that is no architecture or
// checkpoint is refused, not sent as the prompt; a last argument shaped
// like a Hugging Face id that is not cached is the prompt, with a note.
func TestRunPositionalTraps(t *testing.T) {
	t.Setenv("HF_HUB_CACHE", t.TempDir()) // an empty cache
	gguf := filepath.Join(t.TempDir(), "model.gguf")
	if err := os.WriteFile(gguf, []byte("GGUF"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "", "run", gguf, "-n", "7")
	if code != 2 && code != 1 || stdout != "" || !strings.Contains(stderr, "is a file, but not an .arch file or a .safetensors checkpoint") || !strings.Contains(stderr, "-p ") {
		t.Errorf("a .gguf file: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, stderr = runCLI(t, "", "run", "openai/gpt-oss-20b", "-n", "2")
	if code != 0 || stdout == "" || !strings.Contains(stderr, `note: "openai/gpt-oss-20b" is taken as the prompt: model openai/gpt-oss-20b is not a directory and is not in the Hugging Face cache`) {
		t.Errorf("an uncached id: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// Text with a slash that is no id's shape gets no note.
	if _, _, stderr = runCLI(t, "", "run", "yes/no? maybe", "-n", "2"); strings.Contains(stderr, "note:") {
		t.Errorf("a prompt with a slash got a note: %q", stderr)
	}
}

// TestRunChatWithPrompt: --chat with a prompt starts the chat with it
// (the prompt used to be dropped), then reads the next messages.
func TestRunChatWithPrompt(t *testing.T) {
	code, stdout, stderr := runCLI(t, "/bye\n", "run", "--chat", "-n", "20", "A computer")
	if code != 0 || stdout != fortuneAnswer {
		t.Errorf("exit %d, stdout %q, stderr %q; want the answer to the prompt", code, stdout, stderr)
	}
}

// TestPrefillProgressLine: on a terminal the line is rewritten in place
// and erased before the reply; elsewhere a line is written at most every
// prefillEvery; nothing shows in the first prefillShowAfter; a cancelled
// context stops the prefill.
func TestPrefillProgressLine(t *testing.T) {
	var b bytes.Buffer
	p := &prefillProgress{w: &b, ctx: context.Background(), tty: true, start: time.Now().Add(-2 * time.Second)}
	p.update(100, 400)
	p.update(200, 400)
	p.clear()
	lines := strings.Split(b.String(), "\r\033[K")
	if len(lines) != 4 || lines[0] != "" || !strings.HasPrefix(lines[1], "prefill: 100/400 tokens (25%), ") || !strings.Contains(lines[1], "tok/s, ETA ") ||
		!strings.HasPrefix(lines[2], "prefill: 200/400 tokens (50%)") || lines[3] != "" || strings.Contains(b.String(), "\n") {
		t.Errorf("terminal: %q", b.String())
	}
	// 100 tokens in 2 s (and the moments the test took): 300 to go at
	// 50 tok/s or a little less.
	if _, eta, _ := strings.Cut(lines[1], "ETA "); eta != "6s" && eta != "7s" {
		t.Errorf("ETA %q, want 6s: %q", eta, lines[1])
	}

	b.Reset()
	p = &prefillProgress{w: &b, ctx: context.Background(), start: time.Now().Add(-2 * time.Second)}
	p.update(100, 400)
	p.update(200, 400) // within prefillEvery of the first: not shown
	p.last = p.last.Add(-prefillEvery)
	p.update(300, 400)
	p.clear()
	if got := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n"); len(got) != 2 || !strings.HasPrefix(got[0], "prefill: 100/400") || !strings.HasPrefix(got[1], "prefill: 300/400") {
		t.Errorf("not a terminal: %q", b.String())
	}

	b.Reset()
	p = &prefillProgress{w: &b, ctx: context.Background(), tty: true, start: time.Now()}
	p.update(100, 400)
	if b.Len() != 0 {
		t.Errorf("shown before %v: %q", prefillShowAfter, b.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p.ctx = ctx
	if err := p.update(200, 400); err == nil {
		t.Error("a cancelled context did not stop the prefill")
	}
}
