package chat

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/runtime/tokenizer"
)

// TestEOSIDsChecked: eos_token_id must be token ids of the tokenizer.
// config.json's is an error naming the key and the value; a bad one in
// generation_config.json is a warning, dropped so the defaults apply.
func TestEOSIDsChecked(t *testing.T) {
	tok := fortuneTokenizer(t) // 4096 tokens
	for _, c := range []struct {
		eos  any
		want string
	}{
		{"x", `config.json: "eos_token_id" is "x"; expected a token id (an integer from 0 to 4095) or a list of them`},
		{float64(-1), `"eos_token_id" is -1; expected a token id`},
		{float64(1e9), `"eos_token_id" is 1000000000; expected a token id (an integer from 0 to 4095)`},
		{float64(1.5), `"eos_token_id" is 1.5; expected a token id`},
		{[]any{float64(1), true}, `"eos_token_id" element 1 is true; expected a token id`},
	} {
		_, err := ReadModelFiles("", tok, map[string]any{"eos_token_id": c.eos}, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("config.json eos_token_id %v: %v; want an error saying %q", c.eos, err, c.want)
		}
		gen := map[string]any{"eos_token_id": c.eos, "temperature": 0.5}
		f, err := ReadModelFiles("", tok, map[string]any{"eos_token_id": float64(1)}, gen)
		if err != nil {
			t.Fatal(err)
		}
		want := "generation_config.json: " + strings.TrimPrefix(c.want, "config.json: ")
		if len(f.Warnings) != 1 || !strings.Contains(f.Warnings[0], want) || !strings.HasSuffix(f.Warnings[0], "; it is ignored") {
			t.Errorf("generation_config.json eos_token_id %v: warnings %q; want one saying %q", c.eos, f.Warnings, want)
		}
		if !slices.Equal(f.EOS, []int32{1}) {
			t.Errorf("generation_config.json eos_token_id %v: EOS %v, want config.json's [1]", c.eos, f.EOS)
		}
		if _, ok := gen["eos_token_id"]; ok || gen["temperature"] != 0.5 {
			t.Errorf("generation_config.json eos_token_id %v: the settings left are %v", c.eos, gen)
		}
	}
	gen := map[string]any{"temperature": float64(-2)}
	f, err := ReadModelFiles("", tok, nil, gen)
	if err != nil || len(f.Warnings) != 1 || !strings.Contains(f.Warnings[0], `generation_config.json: "temperature" is -2; expected a number >= 0`) {
		t.Errorf("temperature -2: %v %q", err, f.Warnings)
	}
	if _, ok := gen["temperature"]; ok {
		t.Error("the invalid temperature was kept")
	}
}

// TestRenderMaxTokens: with Options.MaxTokens every format renders a
// prompt that fits exactly as without it, and refuses one token more
// with ErrTooLong, stopping on a long message instead of encoding it.
func TestRenderMaxTokens(t *testing.T) {
	toks := map[string]*tokenizer.Tokenizer{"harmony": gptOSSTokenizer(t), "llama3": llama3Tokenizer(t), "plain": fortuneTokenizer(t)}
	msgs := []Message{{Role: RoleSystem, Content: "Be brief."}, {Role: RoleUser, Content: "What is the capital of France?"}}
	opts := Options{CurrentDate: "2025-01-01"}
	for name, tok := range toks {
		f, err := New(name, tok)
		if err != nil {
			t.Fatal(err)
		}
		want, err := f.Render(msgs, opts)
		if err != nil {
			t.Fatal(err)
		}
		o := opts
		o.MaxTokens = len(want)
		if got, err := f.Render(msgs, o); err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: MaxTokens %d: %v, %v; want %v", name, len(want), got, err, want)
		}
		o.MaxTokens = len(want) - 1
		if _, err := f.Render(msgs, o); !errors.Is(err, ErrTooLong) || !strings.Contains(err.Error(), fmt.Sprintf("more than %d tokens", len(want)-1)) {
			t.Errorf("%s: MaxTokens %d of %d: %v", name, len(want)-1, len(want), err)
		}
		long := []Message{{Role: RoleUser, Content: strings.Repeat("word ", 10<<20)}}
		o.MaxTokens = 4096
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err = f.Render(long, o)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrTooLong) {
			t.Errorf("%s: 50 MB message: %v", name, err)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
			t.Errorf("%s: refusing a 50 MB message allocated %d MB", name, alloc>>20)
		}
	}
}
