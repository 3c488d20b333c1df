//go:build unix

package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests send a real SIGINT to `minerva run`: this test binary,
// run as minerva (TestMain, MINERVA_AS_MAIN=1).

// lockedBuffer is a process's output, read while the process writes it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type minervaProc struct {
	cmd            *exec.Cmd
	stdin          io.WriteCloser
	stdout, stderr lockedBuffer
	done           chan struct{}
}

func startMinerva(t *testing.T, args ...string) *minervaProc {
	t.Helper()
	if os.Getenv("MINERVA_AS_MAIN") == "1" {
		t.Skip("running as minerva")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &minervaProc{cmd: exec.Command(self, args...), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), "MINERVA_AS_MAIN=1")
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stdin.Close()
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// waitStderr waits until stderr contains s.
func (p *minervaProc) waitStderr(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(p.stderr.String(), s) {
		select {
		case <-p.done:
			t.Fatalf("minerva exited before writing %q: %s", s, p.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q on stderr after a minute: %s", s, p.stderr.String())
		}
	}
}

// waitStdoutSuffix waits until stdout ends with s, and reports whether
// it did within a few seconds. Stdout and stderr reach the test through
// two pipes, each copied by its own goroutine, so a line on stderr that
// minerva wrote after its reply can arrive before the reply's last bytes.
func (p *minervaProc) waitStdoutSuffix(s string) bool {
	deadline := time.Now().Add(5 * time.Second)
	for !strings.HasSuffix(p.stdout.String(), s) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// exitCode waits for the process; -1 means a signal ended it.
func (p *minervaProc) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("minerva did not exit: %s", p.stderr.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *minervaProc) interrupt(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err)
	}
}

// longPrompt is about 30000 tokens: at one token a call (--batch 1), a
// prefill that lasts well past the second after which its progress
// shows, even on a fast machine (about 1000 tokens/s here).
var longPrompt = strings.Repeat("A computer salesman knows when he is lying. ", 3000)

// TestRunSIGINTOneShot: SIGINT during a one-shot run's prefill stops it
// at once, and the process exits 130.
func TestRunSIGINTOneShot(t *testing.T) {
	p := startMinerva(t, "run", "--batch", "1", "--ctx", "32768", "-n", "1")
	io.WriteString(p.stdin, longPrompt)
	p.stdin.Close()
	p.waitStderr(t, "ETA") // the prefill's progress line
	p.interrupt(t)
	if code := p.exitCode(t); code != 130 {
		t.Errorf("exit %d, want 130: %s", code, p.stderr.String())
	}
	if s := p.stderr.String(); !strings.Contains(s, "stopped by Ctrl-C") || !strings.HasSuffix(s, "minerva: interrupted\n") {
		t.Errorf("stderr %q", s)
	}
}

// TestRunSIGINTChat: in a chat, SIGINT during a reply stops that reply
// and the chat goes on; SIGINT at the prompt ends it with 130.
func TestRunSIGINTChat(t *testing.T) {
	p := startMinerva(t, "run", "--chat", "--batch", "1", "--ctx", "32768", "-n", "20")
	p.waitStderr(t, "One message per line")
	io.WriteString(p.stdin, longPrompt+"\n")
	p.waitStderr(t, "ETA")
	p.interrupt(t)
	p.waitStderr(t, "stopped by Ctrl-C")
	io.WriteString(p.stdin, "/reset\nA computer\n")
	p.waitStderr(t, "stopped by eos")
	if !p.waitStdoutSuffix(fortuneAnswer) {
		t.Errorf("after the interrupted reply, stdout %q; want the answer to the next message", p.stdout.String())
	}
	p.interrupt(t) // at the prompt, the input still open
	if code := p.exitCode(t); code != 130 {
		t.Errorf("Ctrl-C at the prompt: exit %d, want 130: %s", code, p.stderr.String())
	}
}
