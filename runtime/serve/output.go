package serve

import (
	"encoding/json"
	"net/http"
	"strings"
)

// The response objects, with OpenAI's field names.

type chatMessageJSON struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	// ReasoningContent is harmony's analysis channel (an extension).
	ReasoningContent string  `json:"reasoning_content,omitempty"`
	Refusal          *string `json:"refusal"`
}

type chatDeltaJSON struct {
	Role             string  `json:"role,omitempty"`
	Content          *string `json:"content,omitempty"`
	ReasoningContent *string `json:"reasoning_content,omitempty"`
}

type chatChoiceJSON struct {
	Index        int              `json:"index"`
	Message      *chatMessageJSON `json:"message,omitempty"`
	Delta        *chatDeltaJSON   `json:"delta,omitempty"`
	Logprobs     *struct{}        `json:"logprobs"`
	FinishReason *string          `json:"finish_reason"`
}

type chatCompletionJSON struct {
	ID      string           `json:"id"`
	Object  string           `json:"object"`
	Created int64            `json:"created"`
	Model   string           `json:"model"`
	Choices []chatChoiceJSON `json:"choices"`
	Usage   *usage           `json:"usage,omitempty"`
}

type completionChoiceJSON struct {
	Index        int       `json:"index"`
	Text         string    `json:"text"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
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

// chatWhole collects a chat completion and writes it at the end.
type chatWhole struct {
	w            http.ResponseWriter
	id, model    string
	created      int64
	text, reason strings.Builder
}

func (c *chatWhole) begin() error             { return nil }
func (c *chatWhole) content(t string) error   { c.text.WriteString(t); return nil }
func (c *chatWhole) reasoning(t string) error { c.reason.WriteString(t); return nil }
func (c *chatWhole) fail(e *apiError)         { writeError(c.w, e) }
func (c *chatWhole) end(finish string, u usage) error {
	return writeJSON(c.w, chatCompletionJSON{
		ID: c.id, Object: "chat.completion", Created: c.created, Model: c.model,
		Choices: []chatChoiceJSON{{
			Message:      &chatMessageJSON{Role: "assistant", Content: c.text.String(), ReasoningContent: c.reason.String()},
			FinishReason: &finish,
		}},
		Usage: &u,
	})
}

// chatStream sends chat.completion.chunk events.
type chatStream struct {
	*sse
	id, model    string
	created      int64
	includeUsage bool
}

func (c *chatStream) chunk(d *chatDeltaJSON, finish *string) error {
	return c.data(chatCompletionJSON{
		ID: c.id, Object: "chat.completion.chunk", Created: c.created, Model: c.model,
		Choices: []chatChoiceJSON{{Delta: d, FinishReason: finish}},
	})
}

func (c *chatStream) begin() error {
	if err := c.sse.begin(); err != nil {
		return err
	}
	empty := ""
	return c.chunk(&chatDeltaJSON{Role: "assistant", Content: &empty}, nil)
}

func (c *chatStream) content(t string) error { return c.chunk(&chatDeltaJSON{Content: &t}, nil) }
func (c *chatStream) reasoning(t string) error {
	return c.chunk(&chatDeltaJSON{ReasoningContent: &t}, nil)
}

func (c *chatStream) end(finish string, u usage) error {
	if err := c.chunk(&chatDeltaJSON{}, &finish); err != nil {
		return err
	}
	if c.includeUsage {
		err := c.data(chatCompletionJSON{ID: c.id, Object: "chat.completion.chunk", Created: c.created, Model: c.model, Choices: []chatChoiceJSON{}, Usage: &u})
		if err != nil {
			return err
		}
	}
	return c.done()
}

// completionWhole collects a text completion.
type completionWhole struct {
	w         http.ResponseWriter
	id, model string
	created   int64
	text      strings.Builder
}

func (c *completionWhole) begin() error             { return nil }
func (c *completionWhole) content(t string) error   { c.text.WriteString(t); return nil }
func (c *completionWhole) reasoning(t string) error { c.text.WriteString(t); return nil }
func (c *completionWhole) fail(e *apiError)         { writeError(c.w, e) }
func (c *completionWhole) end(finish string, u usage) error {
	return writeJSON(c.w, completionJSON{
		ID: c.id, Object: "text_completion", Created: c.created, Model: c.model,
		Choices: []completionChoiceJSON{{Text: c.text.String(), FinishReason: &finish}},
		Usage:   &u,
	})
}

// completionStream sends text_completion events.
type completionStream struct {
	*sse
	id, model    string
	created      int64
	includeUsage bool
}

func (c *completionStream) chunk(text string, finish *string, u *usage) error {
	choices := []completionChoiceJSON{{Text: text, FinishReason: finish}}
	if u != nil {
		choices = []completionChoiceJSON{}
	}
	return c.data(completionJSON{ID: c.id, Object: "text_completion", Created: c.created, Model: c.model, Choices: choices, Usage: u})
}

func (c *completionStream) content(t string) error   { return c.chunk(t, nil, nil) }
func (c *completionStream) reasoning(t string) error { return c.chunk(t, nil, nil) }

func (c *completionStream) end(finish string, u usage) error {
	if err := c.chunk("", &finish, nil); err != nil {
		return err
	}
	if c.includeUsage {
		if err := c.chunk("", nil, &u); err != nil {
			return err
		}
	}
	return c.done()
}
