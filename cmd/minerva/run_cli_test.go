package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

// The expected texts are the fortune model's greedy continuations in
// testdata/gpt-oss/fortune/reference.json: "A computer" continues
// " salesman knows when he's lying." and then <|endoftext|>.
const fortuneAnswer = " salesman knows when he's lying.\n"

// TestRunPositionals: `minerva run [MODEL] [PROMPT]` as ollama reads it,
// with the short flags.
func TestRunPositionals(t *testing.T) {
	for _, args := range [][]string{
		{"run", "A computer", "-n", "7"},
		{"run", "../../models/fortune", "A computer", "-n", "7"},
		{"run", "-m", "../../models/fortune", "A computer", "-n", "7"},
		{"run", "../../models/fortune", "-p", "A computer", "-n", "7"},
		{"run", "../../models/gpt-oss.arch", "../../models/fortune", "A computer", "-n", "7"},
	} {
		code, stdout, stderr := runCLI(t, "", args...)
		if code != 0 || stdout != fortuneAnswer {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "Why", "is the sky blue?"}, `"Why" is no .arch file`},
		{[]string{"run", "-p", "A computer", "another prompt"}, "two prompts"},
		{[]string{"run", "-m", "../../models/fortune", "../../models/fortune", "x"}, "second model"},
	} {
		code, _, stderr := runCLI(t, "", c.args...)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want an error with %q", c.args, code, stderr, c.want)
		}
	}
}

// TestRunStdinNewline: `echo PROMPT | minerva run` prompts with PROMPT,
// not PROMPT and a newline.
func TestRunStdinNewline(t *testing.T) {
	for _, in := range []string{"A computer\n", "A computer\r\n"} {
		code, stdout, stderr := runCLI(t, in, "run", "-n", "7")
		if code != 0 || stdout != fortuneAnswer {
			t.Errorf("stdin %q: exit %d, stdout %q, stderr %q", in, code, stdout, stderr)
		}
	}
}

// TestRunStopNotSplit: --stop is one string per flag, commas included.
func TestRunStopNotSplit(t *testing.T) {
	// Split on the comma, " when" would stop the reply.
	code, stdout, stderr := runCLI(t, "", "run", "-p", "A computer", "--stop", " when,zzz", "-n", "20")
	if code != 0 || stdout != fortuneAnswer {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "stopped by eos") {
		t.Errorf("the reply ended at <|endoftext|>; summary %q", stderr)
	}
	code, stdout, stderr = runCLI(t, "", "run", "-p", "A computer", "--stop", " when", "-n", "20")
	if code != 0 || stdout != " salesman knows\n" || !strings.Contains(stderr, "stopped by stop string") {
		t.Errorf("exit %d, stdout %q, summary %q; want stopped by stop string", code, stdout, stderr)
	}
	code, _, stderr = runCLI(t, "", "run", "-p", "A computer", "-n", "3")
	if code != 0 || !strings.Contains(stderr, "stopped by max tokens") {
		t.Errorf("exit %d, summary %q", code, stderr)
	}
}

// TestRunChatCommands: /help and /bye are commands, not prompts.
func TestRunChatCommands(t *testing.T) {
	code, stdout, stderr := runCLI(t, "/help\nA computer\n/bye\nA computer\n", "run", "--chat", "-n", "7", "--chat-format", "plain")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "/reset") || !strings.Contains(stderr, "/bye") {
		t.Errorf("/help did not list the commands: %q", stderr)
	}
	if stdout != fortuneAnswer {
		t.Errorf("stdout %q: want one answer (/help is no prompt; /bye exits before the last line)", stdout)
	}
	code, stdout, stderr = runCLI(t, "/frobnicate\n", "run", "--chat")
	if code != 0 || stdout != "" || !strings.Contains(stderr, "unknown command /frobnicate") {
		t.Errorf("unknown command: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// TestRunInterruptExit130: SIGINT during a one-shot run stops it, and
// the exit status is 130 as a shell reports a process ended by SIGINT.
// The interrupt is waiting when generation starts: Env.Interrupts stands
// in for the process's SIGINT (run_signal_test.go sends a real one).
func TestRunInterruptExit130(t *testing.T) {
	var out, errb bytes.Buffer
	sig := make(chan os.Signal, 1)
	sig <- os.Interrupt
	code := run([]string{"run", "-p", "A computer"}, &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Interrupts: sig})
	if code != 130 || !strings.Contains(errb.String(), "interrupted") || !strings.Contains(errb.String(), "stopped by Ctrl-C") {
		t.Errorf("exit %d, stderr %q; want 130", code, errb.String())
	}
	if out.String() != "\n" {
		t.Errorf("stdout %q: the reply was not stopped", out.String())
	}
}

// TestRunPrefillProgress: a prefill of several calls shows tokens done,
// tokens/s and the time left on stderr (here from the first call).
func TestRunPrefillProgress(t *testing.T) {
	defer func(a, e time.Duration) { prefillShowAfter, prefillEvery = a, e }(prefillShowAfter, prefillEvery)
	prefillShowAfter, prefillEvery = 0, 0
	prompt := strings.Repeat("A computer salesman knows when he's lying. ", 12) // 96+ tokens
	code, _, stderr := runCLI(t, "", "run", "--batch", "32", "-p", prompt, "-n", "2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "prefill: 32/") || !strings.Contains(stderr, "tok/s, ETA") {
		t.Errorf("no progress lines: %q", stderr)
	}
	// A prompt of one call shows none.
	_, _, stderr = runCLI(t, "", "run", "--batch", "32", "-p", "A computer", "-n", "2")
	if strings.Contains(stderr, "ETA") {
		t.Errorf("a short prefill showed progress: %q", stderr)
	}
}
