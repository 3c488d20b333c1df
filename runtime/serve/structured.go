package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"sync"

	"github.com/minerva-ml/minerva/runtime/chat"
	"github.com/minerva-ml/minerva/runtime/jsonschema"
	"github.com/minerva-ml/minerva/runtime/tokenizer"
)

// Structured output: response_format json_object or json_schema is
// enforced while sampling. Before each token of the answer, the tokens
// that cannot continue a JSON text matching the schema get a logit of
// -Inf (runtime/jsonschema), so whatever the model's weights, the answer
// parses and matches. For harmony models the reasoning is left free and
// the final channel is constrained.

type responseFormatJSON struct {
	Type       string `json:"type"`
	JSONSchema *struct {
		Name   string          `json:"name"`
		Schema json.RawMessage `json:"schema"`
		Strict *bool           `json:"strict"`
	} `json:"json_schema"`
}

// parseResponseFormat returns the grammar, or nil for text.
func parseResponseFormat(raw json.RawMessage) (*jsonschema.Node, *apiError) {
	if isNull(raw) {
		return nil, nil
	}
	var rf responseFormatJSON
	if err := json.Unmarshal(raw, &rf); err != nil {
		return nil, invalid("response_format", "invalid_type", "response_format must be an object such as {\"type\": \"json_object\"}")
	}
	switch rf.Type {
	case "", "text":
		return nil, nil
	case "json_object":
		return jsonschema.AnyObject(), nil
	case "json_schema":
		if rf.JSONSchema == nil || isNull(rf.JSONSchema.Schema) {
			return nil, invalid("response_format.json_schema.schema", "missing_required_parameter", "response_format json_schema needs json_schema.schema, the JSON Schema of the answer")
		}
		n, err := jsonschema.Compile(rf.JSONSchema.Schema)
		if err != nil {
			var se *jsonschema.Error
			if errors.As(err, &se) && se.Keyword != "" {
				return nil, invalid("response_format.json_schema.schema", "unsupported_schema", "response_format.json_schema.schema: %v", err)
			}
			return nil, invalid("response_format.json_schema.schema", "invalid_value", "response_format.json_schema.schema: %v", err)
		}
		return n, nil
	}
	return nil, invalid("response_format.type", "invalid_value", "response_format.type must be text, json_object or json_schema, not %q", rf.Type)
}

// vocabMasker is the model's masker, built on first use (a trie of the
// whole vocabulary).
type vocabMasker struct {
	once   sync.Once
	masker *jsonschema.Masker
	tokens [][]byte
}

func (v *vocabMasker) get(tok *tokenizer.Tokenizer, vocab int) (*jsonschema.Masker, [][]byte) {
	v.once.Do(func() {
		v.tokens = make([][]byte, vocab)
		for id := range v.tokens {
			if id >= tok.VocabSize() || tok.IsSpecial(id) {
				continue
			}
			if b, ok := tok.TokenBytes(id); ok {
				v.tokens[id] = b
			}
		}
		v.masker = jsonschema.NewMasker(v.tokens)
	})
	return v.masker, v.tokens
}

// constrained samples only tokens the grammar allows, once active.
type constrained struct {
	inner chat.Sampler
	// final is the answer's grammar (response_format), tools each
	// function's arguments'; grammar is the one in force, or the one to
	// start with (a forced call's, or the answer's without harmony).
	final, grammar *jsonschema.Node
	tools          map[string]*jsonschema.Node
	masker         *jsonschema.Masker
	tokens         [][]byte
	stops          map[int32]bool
	state          jsonschema.State
	active         bool
	allow          []bool
	buf            []float32

	// Llama 3.1 with tool_choice auto: a reply that opens with '{' is a
	// call to one of the tools, constrained from its first byte by
	// autoCall.
	autoCall *jsonschema.Node
	watching bool // the reply is whitespace so far
	opens    []bool

	// harmony: the grammar starts after a final channel's header, or a
	// call's.
	harmony             bool
	forced              bool // the reply starts in a call's arguments, or its name
	message, start, end int32
	header              []byte
	tok                 *tokenizer.Tokenizer
	// naming: the grammar in force is the one of the tools' names
	// (tool_choice required among several); name collects its bytes,
	// and headerEnd is written for the model once it is whole.
	naming    bool
	names     *jsonschema.Node
	name      []byte
	headerEnd []int32
	queue     []int32
	// inCall: the grammar in force is a call's arguments. With nextCall
	// (parallel_tool_calls), <|end|> may close them, and nextCall opens
	// the next call's header for the model.
	inCall   bool
	nextCall []int32
}

func (s *Server) constrain(inner chat.Sampler, req *request, chatMode bool) *constrained {
	m, tokens := s.masker.get(s.m.Tokenizer, s.m.Backend.Vocab())
	c := &constrained{inner: inner, final: req.Grammar, grammar: req.Grammar, masker: m, tokens: tokens, stops: s.stopIDs, tok: s.m.Tokenizer}
	if len(req.Tools) > 0 {
		c.tools = req.ToolGrammars
	}
	_, jsonCalls := s.m.Format.(toolParserFormat)
	jsonCalls = jsonCalls && chatMode
	cp, prefixes := s.m.Format.(callPrefixer)
	if prefixes && chatMode && len(req.Tools) > 0 {
		c.names, c.headerEnd = harmonyNames(req.Tools), cp.CallHeaderEnd()
		if !req.OneCall {
			c.nextCall = cp.NextCallOpening()
		}
	}
	switch {
	case req.ForceTool != "":
		c.grammar = req.ToolGrammars[req.ForceTool]
		c.forced, c.inCall = true, true
		if jsonCalls {
			// Llama 3.1: the whole reply is {"name": ..., "parameters": ...},
			// so the grammar is that object around the arguments'.
			c.grammar = jsonschema.Object([]string{"name", "parameters"}, []*jsonschema.Node{jsonschema.Const(req.ForceTool), c.grammar})
		}
	case req.ForceAny && jsonCalls:
		c.grammar, c.forced, c.inCall = llamaCalls(req.Tools, req.ToolGrammars), true, true
	case req.ForceAny && prefixes && chatMode:
		// harmony: the prompt ends before the name (chatJob).
		c.grammar, c.forced, c.naming = c.names, true, true
	}
	if jsonCalls && !c.forced && c.grammar == nil && len(req.Tools) > 0 {
		c.autoCall = llamaCalls(req.Tools, req.ToolGrammars)
		// opens: the token's first byte other than whitespace is '{'.
		c.opens = make([]bool, len(tokens))
		for id, b := range tokens {
			t := bytes.TrimLeft(b, " \t\n\r")
			c.opens[id] = len(t) > 0 && t[0] == '{'
		}
	}
	if chatMode && s.m.Format.Name() == "harmony" {
		msg, ok1 := s.m.Tokenizer.TokenID("<|message|>")
		start, ok2 := s.m.Tokenizer.TokenID("<|start|>")
		end, ok3 := s.m.Tokenizer.TokenID("<|end|>")
		if ok1 && ok2 && ok3 {
			c.harmony, c.message, c.start, c.end = true, int32(msg), int32(start), int32(end)
		}
	}
	return c
}

func (c *constrained) SetContext(prompt []int32) {
	c.inner.SetContext(prompt)
	c.active = c.grammar != nil && (!c.harmony || c.forced)
	if c.active {
		c.state = jsonschema.Start(c.grammar)
	}
	c.header = c.header[:0]
	c.watching = c.autoCall != nil
	c.naming = c.forced && c.grammar == c.names
	c.name, c.queue = c.name[:0], c.queue[:0]
	c.inCall = c.forced && !c.naming
}

func (c *constrained) Sample(logits []float32) int32 {
	if len(c.queue) > 0 {
		// The rest of a forced header: written for the model.
		id := c.queue[0]
		c.queue = c.queue[1:]
		c.follow(id)
		return id
	}
	if c.watching {
		return c.sampleOpening(logits)
	}
	if !c.active {
		id := c.inner.Sample(logits)
		c.follow(id)
		return id
	}
	if len(c.allow) < len(logits) {
		c.allow = make([]bool, len(logits))
		c.buf = make([]float32, len(logits))
	}
	allow := c.allow[:len(logits)]
	if c.state.Done() {
		clear(allow)
	} else {
		c.masker.Allowed(c.state, allow)
	}
	complete := c.state.Complete()
	buf := c.buf[:len(logits)]
	someAllowed := false
	closeCall := complete && c.inCall && c.harmony && c.nextCall != nil
	for i, v := range logits {
		if allow[i] || (complete && c.stops[int32(i)]) || (closeCall && int32(i) == c.end) {
			buf[i] = v
			someAllowed = true
		} else {
			buf[i] = float32(math.Inf(-1))
		}
	}
	if !someAllowed {
		// Nothing continues the JSON (the vocabulary lacks a byte the
		// grammar needs): end the reply rather than break the format.
		for id := range c.stops {
			return id
		}
	}
	id := c.inner.Sample(buf)
	if closeCall && id == c.end {
		// <|end|> rather than <|call|>: another call follows, whose
		// header is written up to the name, which is constrained.
		c.inCall, c.naming, c.name = false, true, c.name[:0]
		c.state = jsonschema.Start(c.names)
		c.queue = append(c.queue[:0], c.nextCall...)
		c.follow(id)
		return id
	}
	if !c.stops[id] && int(id) < len(c.tokens) {
		c.state, _ = c.state.Bytes(c.tokens[id])
		if c.naming {
			c.name = append(c.name, c.tokens[id]...)
			if c.state.Done() {
				// The name is whole: the header's end follows, then
				// the chosen tool's arguments (follow, at <|message|>).
				c.naming, c.active = false, false
				c.header = append(append(c.header[:0], "to="+chat.FunctionRecipient...), c.name...)
				c.queue = append(c.queue[:0], c.headerEnd...)
			}
		}
	}
	return id
}

// follow watches harmony's headers: after <|message|>, if the header
// named the final channel, the answer begins.
func (c *constrained) follow(id int32) {
	if !c.harmony {
		return
	}
	switch id {
	case c.start:
		c.header = c.header[:0]
	case c.message:
		var g *jsonschema.Node
		call := false
		if i := bytes.Index(c.header, []byte("to="+chat.FunctionRecipient)); i >= 0 {
			name := c.header[i+len("to="+chat.FunctionRecipient):]
			if end := bytes.IndexAny(name, " <"); end >= 0 {
				name = name[:end]
			}
			g, call = c.tools[string(name)], true
		} else if bytes.Contains(c.header, []byte("<|channel|>final")) {
			g = c.final
		}
		if g != nil {
			c.active, c.state, c.inCall = true, jsonschema.Start(g), call
		}
		c.header = c.header[:0]
	default:
		if b, ok := c.tok.TokenBytes(int(id)); ok {
			c.header = append(c.header, b...)
		}
	}
}

// sampleOpening samples a Llama 3.1 reply's first token that is not
// whitespace under tool_choice auto: text is free, but a token that
// opens an object must start the call's grammar exactly (no whitespace
// before '{', which the compact grammar would not allow), and once
// sampled the grammar holds the rest of the reply.
func (c *constrained) sampleOpening(logits []float32) int32 {
	if len(c.allow) < len(logits) {
		c.allow = make([]bool, len(logits))
		c.buf = make([]float32, len(logits))
	}
	allow, buf := c.allow[:len(logits)], c.buf[:len(logits)]
	start := jsonschema.Start(c.autoCall)
	c.masker.Allowed(start, allow)
	for i, v := range logits {
		buf[i] = v
		if i < len(c.opens) && c.opens[i] && !allow[i] {
			buf[i] = float32(math.Inf(-1))
		}
	}
	id := c.inner.Sample(buf)
	if c.stops[id] || int(id) >= len(c.tokens) {
		return id
	}
	b := c.tokens[id]
	switch {
	case c.opens[id]:
		c.watching, c.active = false, true
		c.state, _ = start.Bytes(b)
	case len(bytes.TrimLeft(b, " \t\n\r")) > 0:
		c.watching = false // text
	}
	return id
}
