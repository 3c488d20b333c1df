package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// The expected texts are the fortune model's greedy continuations in
// testdata/gpt-oss/fortune/reference.json.

func TestRunStopString(t *testing.T) {
	code, stdout, stderr := runCLI(t, "", "run", "--prompt", "A computer", "--stop", " when", "--stop", "zzz")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if stdout != " salesman knows\n" {
		t.Errorf("stdout %q, want %q", stdout, " salesman knows\n")
	}
}

func TestRunPromptFromStdin(t *testing.T) {
	code, stdout, stderr := runCLI(t, "A computer", "run", "--max-tokens", "7")
	if code != 0 || stdout != " salesman knows when he's lying.\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// TestRunSeed: sampling with a seed repeats; another seed differs.
func TestRunSeed(t *testing.T) {
	args := []string{"run", "--prompt", "The meaning of life is", "--temperature", "1.5", "--max-tokens", "24", "--top-k", "50", "--repeat-penalty", "1.1"}
	outputs := map[string]string{}
	for _, seed := range []string{"1", "1", "2"} {
		code, stdout, stderr := runCLI(t, "", append(args, "--seed", seed)...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if prev, ok := outputs[seed]; ok && prev != stdout {
			t.Errorf("seed %s gave %q, then %q", seed, prev, stdout)
		}
		outputs[seed] = stdout
		if !strings.Contains(stderr, "seed "+seed) {
			t.Errorf("the summary does not name the seed: %q", stderr)
		}
	}
	if outputs["1"] == outputs["2"] {
		t.Errorf("seeds 1 and 2 gave the same text %q", outputs["1"])
	}
}

// TestRunChat: --chat reads one message per line, keeps the
// conversation, and reuses the KV cache on the second turn.
func TestRunChat(t *testing.T) {
	code, stdout, stderr := runCLI(t, "A computer\n\nThe meaning of life is\n", "run", "--chat", "--max-tokens", "7")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != 2 || lines[0] != " salesman knows when he's lying." {
		t.Errorf("stdout %q: want two replies, the first %q", stdout, " salesman knows when he's lying.")
	}
	summaries := strings.Count(stderr, "tok/s")
	if summaries != 2*2 { // prefill and decode rates per turn
		t.Errorf("%d rates in stderr, want 4: %q", summaries, stderr)
	}
	// The second prompt starts with the first turn, which is cached.
	if !strings.Contains(stderr, "more cached") {
		t.Errorf("the second turn reused no cache: %q", stderr)
	}
}

// TestRunHarmonyFormat runs the fortune model in harmony's format (its
// tokenizer has the tokens): the run completes and the summary shows,
// whatever the untrained model writes.
func TestRunHarmonyFormat(t *testing.T) {
	code, _, stderr := runCLI(t, "", "run", "--prompt", "Hi", "--chat-format", "harmony", "--max-tokens", "5", "--reasoning-effort", "low", "--system", "Be brief.")
	if code != 0 || !strings.Contains(stderr, "tok/s") {
		t.Errorf("exit %d: %s", code, stderr)
	}
}

func TestReasoningWriter(t *testing.T) {
	var b bytes.Buffer
	w := newReasoningWriter(&b, false)
	w.write("Think")
	w.write("ing.")
	w.close()
	w.close()
	if b.String() != "[reasoning]\nThinking.\n[/reasoning]\n" {
		t.Errorf("got %q", b.String())
	}
	b.Reset()
	w = newReasoningWriter(&b, true)
	w.write("hidden")
	w.close()
	if b.Len() != 0 {
		t.Errorf("--hide-reasoning printed %q", b.String())
	}
}

func TestRunFlagErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"run", "--prompt", "x", "--top-p", "2"}, "top-p must be between 0 and 1"},
		{[]string{"run", "--prompt", "x", "--temperature=-3"}, "temperature must be 0"},
		{[]string{"run", "--prompt", "x", "--chat-format", "chatml"}, "--chat-format"},
		{[]string{"run", "--prompt", "x", "--chat-format", "llama3"}, "needs the token <|begin_of_text|>"},
		{[]string{"run", "--prompt", "x", "--reasoning-effort", "max"}, "--reasoning-effort"},
	}
	for _, c := range cases {
		code, _, stderr := runCLI(t, "", c.args...)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want a failure mentioning %q", c.args, code, stderr, c.want)
		}
	}
}

// TestServeCommand starts `minerva serve` on a free port, asks it for a
// completion, and stops it.
func TestServeCommand(t *testing.T) {
	_, addr, stderr, stop := launchServe(t, "serve", "--addr", "127.0.0.1:0", "--api-key", "k", "--ctx", "256")
	req, _ := http.NewRequest("POST", "http://"+addr+"/v1/completions", strings.NewReader(`{"prompt":"A computer","max_tokens":7}`))
	req.Header.Set("Authorization", "Bearer k")
	client := &http.Client{Transport: &http.Transport{}}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Choices []struct{ Text string }
	}
	json.NewDecoder(res.Body).Decode(&body)
	res.Body.Close()
	client.CloseIdleConnections()
	// Greedy is the default for a base model.
	if res.StatusCode != 200 || len(body.Choices) != 1 || body.Choices[0].Text != " salesman knows when he's lying." {
		t.Errorf("status %d, body %+v", res.StatusCode, body)
	}
	if err := stop(); err != nil {
		t.Errorf("serve returned %v", err)
	}
	if !strings.Contains(stderr.String(), "serving fortune (plain") || !strings.Contains(stderr.String(), "POST /v1/completions 200") {
		t.Errorf("stderr %q", stderr.String())
	}
}

// TestRunChatResetAfterLongConversation is issue 11's repro for `run
// --chat`: a conversation longer than the sliding-window rings hold
// (window 64 + batch 8 - 1 = 71 positions), then /reset and the first
// message again. The reply must be the first reply, and the rings no
// longer hold position 0, so nothing may be reused.
func TestRunChatResetAfterLongConversation(t *testing.T) {
	in := "A computer\nThe meaning of life is\nTell me a story about a dog\nWhat is the weather\n/reset\nA computer\n"
	code, stdout, stderr := runCLI(t, in, "run", "--chat", "--batch", "8", "--max-tokens", "100")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	want := " salesman knows when he's lying."
	if lines[0] != want || lines[len(lines)-1] != want {
		t.Errorf("first reply %q, reply after /reset %q; want %q for both", lines[0], lines[len(lines)-1], want)
	}
	summaries := strings.Split(strings.TrimSpace(stderr), "\n")
	if last := summaries[len(summaries)-1]; !strings.Contains(last, "prefill: 2 tokens") || strings.Contains(last, "cached") {
		t.Errorf("after /reset: %q; want both prompt tokens run, none cached", last)
	}
}
