package serve

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/minerva-ml/minerva/runtime/chat"
	"github.com/minerva-ml/minerva/runtime/engine"
	"github.com/minerva-ml/minerva/runtime/sample"
)

// job is a request ready to run: its prompt ids and limits.
type job struct {
	endpoint string
	req      *request
	prompt   []int32
	// maxTokens is what the request asked for, or the default.
	maxTokens int
}

// output receives a generation. Nothing is written to the client before
// begin, so errors until then are still proper HTTP errors.
type output interface {
	begin() error
	// content and reasoning add text.
	content(text string) error
	reasoning(text string) error
	end(finishReason string, u usage) error
	// fail reports an error after begin.
	fail(e *apiError)
}

type usage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	TotalTokens         int `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
}

func (s *Server) runChat(w http.ResponseWriter, r *http.Request, req *request) *apiError {
	opts := s.cfg.Chat
	if req.ReasoningEffort != "" {
		opts.ReasoningEffort = req.ReasoningEffort
	}
	opts.MaxTokens = s.m.Backend.Ctx() // stop encoding past the context
	prompt, err := s.m.Format.Render(req.Messages, opts)
	if err != nil {
		if errors.Is(err, chat.ErrTooLong) {
			return promptTooLong("messages", opts.MaxTokens)
		}
		if errors.Is(err, chat.ErrBadConversation) {
			return invalid("messages", "invalid_value", "%v", err)
		}
		return &apiError{Status: http.StatusInternalServerError, Type: "server_error", Message: err.Error()}
	}
	j := &job{endpoint: "chat.completions", req: req, prompt: prompt}
	id := s.newID("chatcmpl")
	var out output
	if req.Stream {
		out = &chatStream{sse: newSSE(w), id: id, model: s.m.Name, created: time.Now().Unix(), includeUsage: req.IncludeUsage}
	} else {
		out = &chatWhole{w: w, id: id, model: s.m.Name, created: time.Now().Unix()}
	}
	return s.generate(r.Context(), j, out, true)
}

// promptTooLong: encoding stopped once the prompt passed the context.
func promptTooLong(param string, ctxLen int) *apiError {
	return invalid(param, "context_length_exceeded", "the prompt is more than %d tokens, but the model's context holds %d; shorten it (or serve with a larger --ctx)", ctxLen, ctxLen)
}

func (s *Server) runCompletion(w http.ResponseWriter, r *http.Request, req *request) *apiError {
	prompt := req.PromptIDs
	if prompt == nil {
		// A raw prompt may hold special tokens, as llama.cpp allows: it
		// is how a client drives a chat format itself.
		ids, err := s.m.Tokenizer.EncodeLimit(req.Prompt, s.m.Backend.Ctx())
		if err != nil {
			return promptTooLong("prompt", s.m.Backend.Ctx())
		}
		prompt = toInt32(ids)
	}
	V := s.m.Backend.Vocab()
	for i, id := range prompt {
		if int(id) >= V {
			return invalid("prompt", "invalid_value", "prompt[%d]: token id %d is outside the vocabulary (0..%d)", i, id, V-1)
		}
	}
	if len(prompt) == 0 {
		return invalid("prompt", "invalid_value", "the prompt encodes to no tokens")
	}
	max := req.MaxTokens
	if max == 0 {
		max = DefaultCompletionMaxTokens
	}
	j := &job{endpoint: "completions", req: req, prompt: prompt, maxTokens: max}
	id := s.newID("cmpl")
	var out output
	if req.Stream {
		out = &completionStream{sse: newSSE(w), id: id, model: s.m.Name, created: time.Now().Unix(), includeUsage: req.IncludeUsage}
	} else {
		out = &completionWhole{w: w, id: id, model: s.m.Name, created: time.Now().Unix()}
	}
	return s.generate(r.Context(), j, out, false)
}

// sampler builds the request's sampler over the model's defaults.
func (s *Server) sampler(sp sampling) (*sample.Sampler, *apiError) {
	o := s.m.Defaults
	if sp.Temperature != nil {
		o.Temperature = *sp.Temperature
	}
	if sp.TopP != nil {
		o.TopP = *sp.TopP
		if o.TopP == 0 {
			// OpenAI's top_p 0 keeps only the most likely token; the
			// sampler's 0 means off.
			o.TopK = 1
		}
	}
	if sp.TopK != nil {
		o.TopK = *sp.TopK
	}
	if sp.MinP != nil {
		o.MinP = *sp.MinP
	}
	if sp.RepeatPenalty != nil {
		o.RepeatPenalty = *sp.RepeatPenalty
	}
	if sp.Seed != nil {
		o.Seed = *sp.Seed
	} else {
		var b [8]byte
		crand.Read(b[:])
		o.Seed = binary.LittleEndian.Uint64(b[:])
	}
	smp, err := sample.New(o)
	if err != nil {
		return nil, invalid("", "invalid_value", "%v", err)
	}
	return smp, nil
}

// generate runs a job: it checks the context, waits its turn, reuses the
// cached prefix, and streams tokens to out. It returns an error only
// before out.begin.
func (s *Server) generate(ctx context.Context, j *job, out output, chatMode bool) *apiError {
	req := j.req
	n := len(j.prompt)
	if n == 0 {
		return invalid("messages", "invalid_value", "the messages hold no text, so there is no prompt; give a message some text")
	}
	ctxLen := s.m.Backend.Ctx()
	if n > ctxLen {
		param := "messages"
		if !chatMode {
			param = "prompt"
		}
		return invalid(param, "context_length_exceeded", "the prompt is %d tokens, but the model's context holds %d; shorten it (or serve with a larger --ctx)", n, ctxLen)
	}
	if req.MaxTokens > 0 && n+req.MaxTokens > ctxLen+1 {
		return invalid(req.MaxParam, "context_length_exceeded", "the prompt is %d tokens and %s is %d, but the model's context holds %d; ask for at most %d tokens", n, req.MaxParam, req.MaxTokens, ctxLen, ctxLen+1-n)
	}
	maxTokens := j.maxTokens
	if maxTokens == 0 {
		maxTokens = req.MaxTokens
	}
	if maxTokens == 0 {
		maxTokens = ctxLen + 1 - n // the rest of the context
	}
	smp, e := s.sampler(req.Sampling)
	if e != nil {
		return e
	}
	smp.SetContext(j.prompt)
	stopIDs := s.stopIDs
	if req.IgnoreEOS {
		stopIDs = nil
	}

	s.count(func(m *Metrics) { m.Requests++ })
	// The request has been read and decoded: it gives back its intake
	// slots before it waits for a sequence (limits.go).
	leaveIntake(ctx)
	session, err := s.batcher.Acquire(ctx, j.prompt)
	if err != nil {
		if errors.Is(err, engine.ErrQueueFull) {
			s.count(func(m *Metrics) { m.QueueFull++ })
			return &apiError{Status: http.StatusServiceUnavailable, Type: "server_error", Code: str("server_busy"),
				Message: fmt.Sprintf("the server is busy: %d requests are already waiting for the model; retry later", s.cfg.MaxQueue)}
		}
		s.count(func(m *Metrics) { m.Cancelled++ })
		return nil // the client is gone: nothing to write
	}
	defer s.batcher.Release(session)

	if err := out.begin(); err != nil {
		s.count(func(m *Metrics) { m.Cancelled++ })
		return nil
	}
	turn := chat.Turn{Prompt: j.prompt, MaxTokens: maxTokens, StopTokens: stopIDs, StopStrings: req.Stop, Sampler: smp}
	if chatMode {
		turn.Parser = s.m.Format.NewParser()
	} else {
		// Special tokens are structure, not text, as in chat.
		turn.Parser = chat.NewTextParser(s.m.Tokenizer)
	}
	sink := &outputSink{out: out}
	res, err := turn.Run(ctx, session, sink)
	if s.cfg.OnGeneration != nil {
		s.cfg.OnGeneration(Generation{Endpoint: j.endpoint, Stats: res.Stats, Reused: res.Reused, Err: err})
	}
	if err != nil {
		if ctx.Err() != nil || sink.err != nil {
			// The client is gone, or its connection failed.
			s.count(func(m *Metrics) { m.Cancelled++ })
			return nil
		}
		s.count(func(m *Metrics) { m.Failed++ })
		out.fail(&apiError{Status: http.StatusInternalServerError, Type: "server_error", Message: err.Error()})
		return nil
	}
	u := usage{PromptTokens: n, CompletionTokens: res.GeneratedTokens, TotalTokens: n + res.GeneratedTokens}
	u.PromptTokensDetails.CachedTokens = res.Reused
	s.count(func(m *Metrics) {
		m.Completed++
		m.PromptTokens += int64(n)
		m.CachedTokens += int64(res.Reused)
		m.CompletionTokens += int64(res.GeneratedTokens)
	})
	if err := out.end(res.FinishReason(), u); err != nil {
		s.count(func(m *Metrics) { m.Cancelled++ })
	}
	return nil
}

// outputSink writes a turn's text to a response and keeps the first
// error, which means the client can no longer be written to.
type outputSink struct {
	out output
	err error
}

func (o *outputSink) Content(text string) error   { return o.keep(o.out.content(text)) }
func (o *outputSink) Reasoning(text string) error { return o.keep(o.out.reasoning(text)) }

func (o *outputSink) keep(err error) error {
	if err != nil && o.err == nil {
		o.err = err
	}
	return err
}

func toInt32(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}

func writeJSON(w http.ResponseWriter, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		panic("BUG: a response does not marshal: " + err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(append(b, '\n'))
	return err
}
