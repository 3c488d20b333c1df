package serve

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/minerva-ml/minerva/runtime/chat"
	"github.com/minerva-ml/minerva/runtime/engine"
	"github.com/minerva-ml/minerva/runtime/sample"
	"github.com/minerva-ml/minerva/runtime/tokenizer"
)

// job is a request ready to run: its prompt ids and limits.
type job struct {
	endpoint string
	req      *request
	prompt   []int32
	// forced ends the prompt: the start of the reply, which its parser
	// must see (a forced tool call's header).
	forced []int32
	// jsonCalls: the reply may be a Llama 3.1 JSON tool call.
	jsonCalls bool
	// maxTokens is what the request asked for, or the default.
	maxTokens int
}

// output receives a generation: the request's choices one after the
// other, each between start and finish. Nothing is written to the client
// before begin, so errors until then are still proper HTTP errors.
type output interface {
	begin() error
	start(choice int) error
	// content adds answer text with the logprobs of the tokens that made
	// it (nil unless the request asked for them); reasoning adds
	// reasoning text.
	content(choice int, text string, lps []tokenLogprobJSON) error
	reasoning(choice int, text string) error
	// toolCall adds to the choice's tool call: id and name start a new
	// call, and are "" when text continues the arguments.
	toolCall(choice int, id, name, arguments string) error
	finish(choice int, finishReason string) error
	end(u usage) error
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
	j, e := s.chatJob(req, "chat.completions")
	if e != nil {
		return e
	}
	id := s.newID("chatcmpl")
	var out output
	if req.Stream {
		out = &chatStream{sse: newSSE(w), id: id, model: s.m.Name, created: time.Now().Unix(), includeUsage: req.IncludeUsage, logprobs: req.Logprobs}
	} else {
		out = &chatWhole{w: w, id: id, model: s.m.Name, created: time.Now().Unix(), logprobs: req.Logprobs}
	}
	return s.generate(r.Context(), j, out, true)
}

// chatJob renders a conversation into a job.
func (s *Server) chatJob(req *request, endpoint string) (*job, *apiError) {
	opts := s.cfg.Chat
	if req.ReasoningEffort != "" {
		opts.ReasoningEffort = req.ReasoningEffort
	}
	opts.MaxTokens = s.m.Backend.Ctx() // stop encoding past the context
	var forced []int32
	_, jsonCalls := s.m.Format.(toolParserFormat) // Llama 3.1
	if len(req.Tools) > 0 {
		cp, ok := s.m.Format.(callPrefixer)
		if !ok && !jsonCalls {
			return nil, invalid("tools", "unsupported_parameter", "tools need a chat format with tool calls (harmony, llama3); this model's format is %s", s.m.Format.Name())
		}
		opts.Tools = req.Tools
		// A forced call: harmony's reply starts with the call's header;
		// Llama 3.1's whole reply is the call object, which the grammar
		// forces (constrain).
		if req.ForceTool != "" && ok {
			forced = cp.CallPrefix(req.ForceTool)
		}
		// A call to one of several: the header up to the name, which the
		// sampler constrains to one of theirs.
		if req.ForceAny && ok {
			forced = cp.CallOpening()
		}
	}
	prompt, err := s.m.Format.Render(req.Messages, opts)
	if err != nil {
		if errors.Is(err, chat.ErrTooLong) {
			return nil, promptTooLong("messages", opts.MaxTokens)
		}
		if errors.Is(err, chat.ErrBadConversation) {
			return nil, invalid("messages", "invalid_value", "%v", err)
		}
		return nil, &apiError{Status: http.StatusInternalServerError, Type: "server_error", Message: err.Error()}
	}
	// A forced call: the reply starts with its header, which the prompt
	// ends with and the parser is given before the reply.
	prompt = append(prompt, forced...)
	return &job{endpoint: endpoint, req: req, prompt: prompt, forced: forced, jsonCalls: jsonCalls && len(req.Tools) > 0}, nil
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
		out = &completionStream{sse: newSSE(w), id: id, model: s.m.Name, created: time.Now().Unix(), includeUsage: req.IncludeUsage, logprobs: req.Logprobs}
	} else {
		out = &completionWhole{w: w, id: id, model: s.m.Name, created: time.Now().Unix(), logprobs: req.Logprobs}
	}
	return s.generate(r.Context(), j, out, false)
}

// sampler builds the request's sampler over the model's defaults.
func (s *Server) sampler(sp sampling) (*sample.Sampler, *apiError) {
	smp, _, e := s.samplerSeed(sp)
	return smp, e
}

// samplerSeed builds the sampler and returns the seed it drew with.
func (s *Server) samplerSeed(sp sampling) (*sample.Sampler, uint64, *apiError) {
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
	if sp.PresencePenalty != nil {
		o.PresencePenalty = *sp.PresencePenalty
	}
	if sp.FrequencyPenalty != nil {
		o.FrequencyPenalty = *sp.FrequencyPenalty
	}
	if len(sp.LogitBias) > 0 {
		V := s.m.Backend.Vocab()
		for id := range sp.LogitBias {
			if int(id) >= V {
				return nil, 0, invalid("logit_bias", "invalid_value", "logit_bias: token %d is outside the vocabulary (0..%d)", id, V-1)
			}
		}
		o.LogitBias = sp.LogitBias
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
		return nil, 0, invalid("", "invalid_value", "%v", err)
	}
	return smp, o.Seed, nil
}

// generate runs a job: it checks the context, waits its turn, reuses the
// cached prefix, and streams tokens to out. It returns an error only
// before out.begin.
func (s *Server) generate(ctx context.Context, j *job, out output, chatMode bool) *apiError {
	req := j.req
	nPrompt := len(j.prompt)
	if nPrompt == 0 {
		return invalid("messages", "invalid_value", "the messages hold no text, so there is no prompt; give a message some text")
	}
	ctxLen := s.m.Backend.Ctx()
	if nPrompt > ctxLen {
		param := "messages"
		if !chatMode {
			param = "prompt"
		}
		return invalid(param, "context_length_exceeded", "the prompt is %d tokens, but the model's context holds %d; shorten it (or serve with a larger --ctx)", nPrompt, ctxLen)
	}
	if req.MaxTokens > 0 && nPrompt+req.MaxTokens > ctxLen+1 {
		return invalid(req.MaxParam, "context_length_exceeded", "the prompt is %d tokens and %s is %d, but the model's context holds %d; ask for at most %d tokens", nPrompt, req.MaxParam, req.MaxTokens, ctxLen, ctxLen+1-nPrompt)
	}
	maxTokens := j.maxTokens
	if maxTokens == 0 {
		maxTokens = req.MaxTokens
	}
	if maxTokens == 0 {
		maxTokens = ctxLen + 1 - nPrompt // the rest of the context
	}
	// Each choice draws with its own seed: the request's (or a random
	// one) plus its index, so choices differ and each is reproducible.
	n := max(req.N, 1)
	smp, seed, e := s.samplerSeed(req.Sampling)
	if e != nil {
		return e
	}
	samplers := []*sample.Sampler{smp}
	for i := 1; i < n; i++ {
		sp := req.Sampling
		si := seed + uint64(i)
		sp.Seed = &si
		smp, e := s.sampler(sp)
		if e != nil {
			return e
		}
		samplers = append(samplers, smp)
	}
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
	u := usage{PromptTokens: nPrompt}
	// The choices run one after the other on the request's sequence;
	// each after the first reuses the prompt's prefix as far as the cache
	// still holds it exactly (Session.Reuse).
	for i, smp := range samplers {
		if err := out.start(i); err != nil {
			s.count(func(m *Metrics) { m.Cancelled++ })
			return nil
		}
		turn := chat.Turn{Prompt: j.prompt, MaxTokens: maxTokens, StopTokens: stopIDs, StopStrings: req.Stop}
		var base chat.Sampler = smp
		if req.Grammar != nil || len(req.Tools) > 0 {
			base = s.constrain(smp, req, chatMode)
		}
		rec := &recordingSampler{s: smp, inner: base, top: req.TopLogprobs, on: req.Logprobs}
		turn.Sampler = base
		if req.Logprobs {
			turn.Sampler = rec
		}
		switch {
		case j.jsonCalls:
			turn.Parser = s.m.Format.(toolParserFormat).NewToolParser()
		case chatMode:
			turn.Parser = s.m.Format.NewParser()
		default:
			// Special tokens are structure, not text, as in chat.
			turn.Parser = chat.NewTextParser(s.m.Tokenizer)
		}
		for _, id := range j.forced {
			turn.Parser.Push(id)
		}
		sink := &outputSink{out: out, choice: i, rec: rec, tok: s.m.Tokenizer, newID: func() string { return s.newID("call") }, last: -1, oneCall: req.OneCall}
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
		if i == 0 {
			u.PromptTokensDetails.CachedTokens = res.Reused
		}
		u.CompletionTokens += res.GeneratedTokens
		s.count(func(m *Metrics) {
			m.PromptTokens += int64(nPrompt)
			m.CachedTokens += int64(res.Reused)
			m.CompletionTokens += int64(res.GeneratedTokens)
		})
		finish := res.FinishReason()
		if sink.called && finish == "stop" {
			finish = "tool_calls"
		}
		if err := out.finish(i, finish); err != nil {
			s.count(func(m *Metrics) { m.Cancelled++ })
			return nil
		}
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	s.count(func(m *Metrics) { m.Completed++ })
	if err := out.end(u); err != nil {
		s.count(func(m *Metrics) { m.Cancelled++ })
	}
	return nil
}

// recordingSampler samples with inner (s, or a constrained sampler over
// it) and keeps the log-probabilities s reports for each token picked,
// for logprobs.
type recordingSampler struct {
	s     *sample.Sampler
	inner chat.Sampler
	top   int
	on    bool
	id    int32
	lp    float32
	tops  []sample.TokenLogprob
}

func (r *recordingSampler) SetContext(prompt []int32) { r.inner.SetContext(prompt) }

func (r *recordingSampler) Sample(logits []float32) int32 {
	id := r.inner.Sample(logits)
	r.id = id
	r.lp, r.tops = r.s.Logprobs(id, r.top, r.tops)
	return id
}

// outputSink writes one choice's text to a response and keeps the first
// error, which means the client can no longer be written to. With
// logprobs, it collects the answer's tokens and hands them out with the
// text they made; tokens whose text never shows (held back, then cut by
// a stop string) are dropped.
type outputSink struct {
	out     output
	choice  int
	err     error
	rec     *recordingSampler
	tok     *tokenizer.Tokenizer
	pending []tokenLogprobJSON
	// called says the choice called a function; last is the index in
	// the reply of the call being written (-1 before the first).
	called bool
	last   int
	newID  func() string
	// oneCall: parallel_tool_calls is false. The sampler already ends
	// the reply after a constrained call; a call it could not constrain
	// (harmony, to a function that is not a tool) is dropped past the
	// first, so the reply never holds two.
	oneCall bool
}

// ToolCall implements chat.ToolSink.
func (o *outputSink) ToolCall(call int, name, arguments string) error {
	if o.oneCall && call > 0 {
		return nil
	}
	id := ""
	if call != o.last {
		id = o.newID()
		o.called, o.last = true, call
	} else {
		name = ""
	}
	return o.keep(o.out.toolCall(o.choice, id, name, arguments))
}

func (o *outputSink) Content(text string) error {
	lps := o.pending
	o.pending = nil
	return o.keep(o.out.content(o.choice, text, lps))
}

func (o *outputSink) Reasoning(text string) error {
	return o.keep(o.out.reasoning(o.choice, text))
}

// Token implements chat.TokenSink.
func (o *outputSink) Token(id int32, d chat.Delta) error {
	if !o.rec.on || d.Channel != chat.Final || d.Recipient != "" {
		return nil
	}
	if id != o.rec.id {
		return fmt.Errorf("BUG: the token %d is not the one sampled (%d)", id, o.rec.id)
	}
	e := tokenLogprobJSON{Logprob: o.rec.lp, TopLogprobs: []topLogprobJSON{}}
	e.Token, e.Bytes = o.tokenText(id)
	for _, t := range o.rec.tops {
		var top topLogprobJSON
		top.Token, top.Bytes = o.tokenText(t.ID)
		top.Logprob = t.Logprob
		e.TopLogprobs = append(e.TopLogprobs, top)
	}
	o.pending = append(o.pending, e)
	return nil
}

// tokenText is a token's text and bytes. A token that is not whole
// characters is written "bytes:\xNN..." as OpenAI does; an id the
// tokenizer lacks has none.
func (o *outputSink) tokenText(id int32) (string, byteList) {
	b, ok := o.tok.TokenBytes(int(id))
	if !ok {
		return "", byteList{}
	}
	if utf8.Valid(b) {
		return string(b), byteList(b)
	}
	var sb strings.Builder
	sb.WriteString("bytes:")
	for _, c := range b {
		fmt.Fprintf(&sb, "\\x%02x", c)
	}
	return sb.String(), byteList(b)
}

// keep records the first write error. A failed write means the client's
// connection is gone, which may show before the request's context ends:
// the error wraps context.Canceled so the generation stops as cancelled
// either way.
func (o *outputSink) keep(err error) error {
	if err == nil {
		return nil
	}
	if o.err == nil {
		o.err = fmt.Errorf("%w: writing to the client failed: %w", context.Canceled, err)
	}
	return o.err
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
