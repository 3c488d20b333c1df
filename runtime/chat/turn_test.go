package chat

import (
	"context"
	"testing"

	"github.com/minerva-ml/minerva/runtime/engine"
)

// scripted plays a fixed reply after a prompt of promptLen tokens: the
// logits at position q make script[q+1-promptLen] the most likely token.
type scripted struct {
	vocab, promptLen int
	script           []int32
}

func (b *scripted) Forward(tokens []int32, pos int) ([]float32, error) {
	out := make([]float32, len(tokens)*b.vocab)
	for i := range tokens {
		if k := pos + i + 1 - b.promptLen; k >= 0 && k < len(b.script) {
			out[i*b.vocab+int(b.script[k])] = 10
		}
	}
	return out, nil
}
func (b *scripted) Batch() int           { return 8 }
func (b *scripted) Ctx() int             { return 256 }
func (b *scripted) Vocab() int           { return b.vocab }
func (b *scripted) Rings() []engine.Ring { return nil }
func (b *scripted) Close()               {}

// sink records what a turn writes.
type sink struct{ content, reasoning string }

func (s *sink) Content(text string) error   { s.content += text; return nil }
func (s *sink) Reasoning(text string) error { s.reasoning += text; return nil }

func TestTurnRoutesChannelsAndStops(t *testing.T) {
	tok := fortuneTokenizer(t)
	harmony, err := New("harmony", tok)
	if err != nil {
		t.Fatal(err)
	}
	prompt, err := harmony.Render([]Message{{Role: RoleUser, Content: "Hi"}}, Options{CurrentDate: "2025-08-05"})
	if err != nil {
		t.Fatal(err)
	}
	stopTokens := map[int32]bool{}
	for _, id := range harmony.StopTokens() {
		stopTokens[id] = true
	}
	for _, c := range []struct {
		name, reply string
		stops       []string
		max         int
		content     string
		reasoning   string
		finish      string
	}{
		{name: "channels", reply: "<|channel|>analysis<|message|>Think.<|end|><|start|>assistant<|channel|>final<|message|>Hello there.<|return|>",
			max: 100, content: "Hello there.", reasoning: "Think.", finish: "stop"},
		{name: "a tool call is not shown", reply: "<|channel|>commentary to=functions.f <|constrain|>json<|message|>{}<|call|>",
			max: 100, finish: "stop"},
		{name: "stop string", reply: "<|channel|>final<|message|>Hello there.<|return|>", stops: []string{"there"},
			max: 100, content: "Hello ", finish: "stop"},
		{name: "length", reply: "<|channel|>final<|message|>Hello there.<|return|>",
			max: len(tok.Encode("<|channel|>final<|message|>Hello")), content: "Hello", finish: "length"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := &scripted{vocab: tok.VocabSize(), promptLen: len(prompt), script: toInt32(nil, tok.Encode(c.reply))}
			var out sink
			turn := Turn{Prompt: prompt, MaxTokens: c.max, StopTokens: stopTokens, StopStrings: c.stops, Parser: harmony.NewParser()}
			res, err := turn.Run(context.Background(), engine.NewSession(b), &out)
			if err != nil {
				t.Fatal(err)
			}
			if out.content != c.content || out.reasoning != c.reasoning || res.FinishReason() != c.finish || res.Reused != 0 {
				t.Errorf("content %q, reasoning %q, finish %s, reused %d; want %q, %q, %s, 0", out.content, out.reasoning, res.FinishReason(), res.Reused, c.content, c.reasoning, c.finish)
			}
		})
	}
}

// TestTurnReusesTheSession: a second turn on the same session runs only
// what the first did not.
func TestTurnReusesTheSession(t *testing.T) {
	tok := fortuneTokenizer(t)
	prompt := toInt32(nil, tok.Encode("A computer"))
	b := &scripted{vocab: tok.VocabSize(), promptLen: len(prompt), script: toInt32(nil, tok.Encode(" salesman knows"))}
	s := engine.NewSession(b)
	for i, want := range []int{0, len(prompt) - 1} {
		var out sink
		res, err := Turn{Prompt: prompt, MaxTokens: 2, Parser: NewTextParser(tok)}.Run(context.Background(), s, &out)
		if err != nil {
			t.Fatal(err)
		}
		if res.Reused != want || res.PromptTokens != len(prompt)-want || out.content != " salesman knows" {
			t.Errorf("turn %d: reused %d, ran %d prompt tokens, wrote %q", i, res.Reused, res.PromptTokens, out.content)
		}
	}
}
