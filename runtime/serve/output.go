package serve

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// The response objects, with OpenAI's field names.

type chatMessageJSON struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	// ReasoningContent is harmony's analysis channel (an extension).
	ReasoningContent string         `json:"reasoning_content,omitempty"`
	Refusal          *string        `json:"refusal"`
	ToolCalls        []toolCallJSON `json:"tool_calls,omitempty"`
}

type chatDeltaJSON struct {
	Role             string         `json:"role,omitempty"`
	Content          *string        `json:"content,omitempty"`
	ReasoningContent *string        `json:"reasoning_content,omitempty"`
	ToolCalls        []toolCallJSON `json:"tool_calls,omitempty"`
}

// chatLogprobsJSON is a chat choice's logprobs: one entry per token of
// the content.
type chatLogprobsJSON struct {
	Content []tokenLogprobJSON `json:"content"`
	Refusal []tokenLogprobJSON `json:"refusal"`
}

type tokenLogprobJSON struct {
	Token   string  `json:"token"`
	Logprob float32 `json:"logprob"`
	// Bytes is the token's UTF-8 bytes (a token may hold part of a
	// character); a JSON array of numbers, never base64.
	Bytes       byteList         `json:"bytes"`
	TopLogprobs []topLogprobJSON `json:"top_logprobs,omitempty"`
}

type topLogprobJSON struct {
	Token   string   `json:"token"`
	Logprob float32  `json:"logprob"`
	Bytes   byteList `json:"bytes"`
}

// byteList marshals as an array of numbers ([]byte would be base64).
type byteList []byte

func (b byteList) MarshalJSON() ([]byte, error) {
	var sb strings.Builder
	sb.WriteByte('[')
	for i, c := range b {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.Itoa(int(c)))
	}
	sb.WriteByte(']')
	return []byte(sb.String()), nil
}

type chatChoiceJSON struct {
	Index        int               `json:"index"`
	Message      *chatMessageJSON  `json:"message,omitempty"`
	Delta        *chatDeltaJSON    `json:"delta,omitempty"`
	Logprobs     *chatLogprobsJSON `json:"logprobs"`
	FinishReason *string           `json:"finish_reason"`
}

type chatCompletionJSON struct {
	ID      string           `json:"id"`
	Object  string           `json:"object"`
	Created int64            `json:"created"`
	Model   string           `json:"model"`
	Choices []chatChoiceJSON `json:"choices"`
	Usage   *usage           `json:"usage,omitempty"`
}

// completionLogprobsJSON is the legacy completions format: parallel
// lists, one entry per token.
type completionLogprobsJSON struct {
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []float32            `json:"token_logprobs"`
	TopLogprobs   []map[string]float32 `json:"top_logprobs"`
	TextOffset    []int                `json:"text_offset"`
}

type completionChoiceJSON struct {
	Index        int                     `json:"index"`
	Text         string                  `json:"text"`
	Logprobs     *completionLogprobsJSON `json:"logprobs"`
	FinishReason *string                 `json:"finish_reason"`
}

type completionJSON struct {
	ID      string                 `json:"id"`
	Object  string                 `json:"object"`
	Created int64                  `json:"created"`
	Model   string                 `json:"model"`
	Choices []completionChoiceJSON `json:"choices"`
	Usage   *usage                 `json:"usage,omitempty"`
}

// sse writes server-sent events, flushing each.
type sse struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func newSSE(w http.ResponseWriter) *sse { return &sse{w: w, rc: http.NewResponseController(w)} }

func (s *sse) begin() error {
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // no proxy buffering (nginx)
	s.w.WriteHeader(http.StatusOK)
	return s.rc.Flush()
}

func (s *sse) data(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		panic("BUG: an event does not marshal: " + err.Error())
	}
	return s.raw(b)
}

func (s *sse) raw(b []byte) error {
	var sb strings.Builder
	sb.Grow(len(b) + 8)
	sb.WriteString("data: ")
	sb.Write(b)
	sb.WriteString("\n\n")
	if _, err := s.w.Write([]byte(sb.String())); err != nil {
		return err
	}
	return s.rc.Flush()
}

func (s *sse) done() error { return s.raw([]byte("[DONE]")) }

// fail sends an error event: the status is already sent.
func (s *sse) fail(e *apiError) {
	if s.data(map[string]*apiError{"error": e}) == nil {
		s.done()
	}
}

// chatWhole collects a chat completion's choices and writes them at the
// end.
type chatWhole struct {
	w         http.ResponseWriter
	id, model string
	created   int64
	logprobs  bool
	choices   []chatChoiceJSON
	text      []strings.Builder
	reason    []strings.Builder
	calls     [][]toolCallJSON
}

func (c *chatWhole) begin() error { return nil }
func (c *chatWhole) start(i int) error {
	c.choices = append(c.choices, chatChoiceJSON{Index: i})
	if c.logprobs {
		c.choices[i].Logprobs = &chatLogprobsJSON{Content: []tokenLogprobJSON{}}
	}
	c.text = append(c.text, strings.Builder{})
	c.reason = append(c.reason, strings.Builder{})
	c.calls = append(c.calls, nil)
	return nil
}
func (c *chatWhole) toolCall(i int, id, name, args string) error {
	if id != "" {
		call := toolCallJSON{ID: id, Type: "function"}
		call.Function.Name = name
		c.calls[i] = append(c.calls[i], call)
	}
	if n := len(c.calls[i]); n > 0 {
		c.calls[i][n-1].Function.Arguments += args
	}
	return nil
}
func (c *chatWhole) content(i int, t string, lps []tokenLogprobJSON) error {
	c.text[i].WriteString(t)
	if c.logprobs {
		c.choices[i].Logprobs.Content = append(c.choices[i].Logprobs.Content, lps...)
	}
	return nil
}
func (c *chatWhole) reasoning(i int, t string) error { c.reason[i].WriteString(t); return nil }
func (c *chatWhole) finish(i int, reason string) error {
	c.choices[i].Message = &chatMessageJSON{Role: "assistant", Content: c.text[i].String(), ReasoningContent: c.reason[i].String(), ToolCalls: c.calls[i]}
	c.choices[i].FinishReason = &reason
	return nil
}
func (c *chatWhole) fail(e *apiError) { writeError(c.w, e) }
func (c *chatWhole) end(u usage) error {
	return writeJSON(c.w, chatCompletionJSON{
		ID: c.id, Object: "chat.completion", Created: c.created, Model: c.model,
		Choices: c.choices, Usage: &u,
	})
}

// chatStream sends chat.completion.chunk events.
type chatStream struct {
	*sse
	id, model    string
	created      int64
	includeUsage bool
	logprobs     bool
	ncalls       int // the current choice's tool calls
}

func (c *chatStream) chunk(i int, d *chatDeltaJSON, lp *chatLogprobsJSON, finish *string) error {
	return c.data(chatCompletionJSON{
		ID: c.id, Object: "chat.completion.chunk", Created: c.created, Model: c.model,
		Choices: []chatChoiceJSON{{Index: i, Delta: d, Logprobs: lp, FinishReason: finish}},
	})
}

func (c *chatStream) start(i int) error {
	c.ncalls = 0
	empty := ""
	return c.chunk(i, &chatDeltaJSON{Role: "assistant", Content: &empty}, nil, nil)
}

func (c *chatStream) content(i int, t string, lps []tokenLogprobJSON) error {
	var lp *chatLogprobsJSON
	if c.logprobs {
		lp = &chatLogprobsJSON{Content: lps}
		if lps == nil {
			lp.Content = []tokenLogprobJSON{}
		}
	}
	return c.chunk(i, &chatDeltaJSON{Content: &t}, lp, nil)
}

func (c *chatStream) toolCall(i int, id, name, args string) error {
	if id != "" {
		c.ncalls++
	}
	index := c.ncalls - 1
	call := toolCallJSON{Index: &index, ID: id}
	if id != "" {
		call.Type = "function"
		call.Function.Name = name
	}
	call.Function.Arguments = args
	return c.chunk(i, &chatDeltaJSON{ToolCalls: []toolCallJSON{call}}, nil, nil)
}

func (c *chatStream) reasoning(i int, t string) error {
	return c.chunk(i, &chatDeltaJSON{ReasoningContent: &t}, nil, nil)
}

func (c *chatStream) finish(i int, reason string) error {
	return c.chunk(i, &chatDeltaJSON{}, nil, &reason)
}

func (c *chatStream) end(u usage) error {
	if c.includeUsage {
		err := c.data(chatCompletionJSON{ID: c.id, Object: "chat.completion.chunk", Created: c.created, Model: c.model, Choices: []chatChoiceJSON{}, Usage: &u})
		if err != nil {
			return err
		}
	}
	return c.done()
}

// completionLogprobs turns chat-style entries into the legacy format;
// offset is the length of the choice's text before them.
func completionLogprobs(lps []tokenLogprobJSON, offset int) *completionLogprobsJSON {
	out := &completionLogprobsJSON{Tokens: []string{}, TokenLogprobs: []float32{}, TopLogprobs: []map[string]float32{}, TextOffset: []int{}}
	for _, lp := range lps {
		out.Tokens = append(out.Tokens, lp.Token)
		out.TokenLogprobs = append(out.TokenLogprobs, lp.Logprob)
		top := map[string]float32{}
		for _, t := range lp.TopLogprobs {
			if _, ok := top[t.Token]; !ok {
				top[t.Token] = t.Logprob
			}
		}
		out.TopLogprobs = append(out.TopLogprobs, top)
		out.TextOffset = append(out.TextOffset, offset)
		offset += len(lp.Token)
	}
	return out
}

// completionWhole collects a text completion's choices.
type completionWhole struct {
	w         http.ResponseWriter
	id, model string
	created   int64
	logprobs  bool
	choices   []completionChoiceJSON
	text      []strings.Builder
	lps       [][]tokenLogprobJSON
}

func (c *completionWhole) begin() error { return nil }
func (c *completionWhole) start(i int) error {
	c.choices = append(c.choices, completionChoiceJSON{Index: i})
	c.text = append(c.text, strings.Builder{})
	c.lps = append(c.lps, nil)
	return nil
}
func (c *completionWhole) content(i int, t string, lps []tokenLogprobJSON) error {
	c.text[i].WriteString(t)
	c.lps[i] = append(c.lps[i], lps...)
	return nil
}
func (c *completionWhole) reasoning(i int, t string) error { c.text[i].WriteString(t); return nil }

// toolCall: raw completions parse no tool calls.
func (c *completionWhole) toolCall(int, string, string, string) error { return nil }
func (c *completionWhole) finish(i int, reason string) error {
	c.choices[i].Text = c.text[i].String()
	c.choices[i].FinishReason = &reason
	if c.logprobs {
		c.choices[i].Logprobs = completionLogprobs(c.lps[i], 0)
	}
	return nil
}
func (c *completionWhole) fail(e *apiError) { writeError(c.w, e) }
func (c *completionWhole) end(u usage) error {
	return writeJSON(c.w, completionJSON{
		ID: c.id, Object: "text_completion", Created: c.created, Model: c.model,
		Choices: c.choices, Usage: &u,
	})
}

// completionStream sends text_completion events.
type completionStream struct {
	*sse
	id, model    string
	created      int64
	includeUsage bool
	logprobs     bool
	offset       int // of the current choice's text
}

func (c *completionStream) chunk(ch []completionChoiceJSON, u *usage) error {
	return c.data(completionJSON{ID: c.id, Object: "text_completion", Created: c.created, Model: c.model, Choices: ch, Usage: u})
}

func (c *completionStream) start(i int) error { c.offset = 0; return nil }

func (c *completionStream) content(i int, t string, lps []tokenLogprobJSON) error {
	ch := completionChoiceJSON{Index: i, Text: t}
	if c.logprobs {
		ch.Logprobs = completionLogprobs(lps, c.offset)
	}
	c.offset += len(t)
	return c.chunk([]completionChoiceJSON{ch}, nil)
}

func (c *completionStream) reasoning(i int, t string) error { return c.content(i, t, nil) }

func (c *completionStream) toolCall(int, string, string, string) error { return nil }

func (c *completionStream) finish(i int, reason string) error {
	return c.chunk([]completionChoiceJSON{{Index: i, FinishReason: &reason}}, nil)
}

func (c *completionStream) end(u usage) error {
	if c.includeUsage {
		if err := c.chunk([]completionChoiceJSON{}, &u); err != nil {
			return err
		}
	}
	return c.done()
}
