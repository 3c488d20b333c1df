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

	// Llama 3.1 with one tool and tool_choice auto: a reply that opens
	// with '{' is the call, constrained from its first byte by autoCall.
	autoCall *jsonschema.Node
	watching bool // the reply is whitespace so far
	opens    []bool

	// harmony: the grammar starts after a final channel's header.
	harmony        bool
	forced         bool // the reply starts in a call's arguments
	message, start int32
	header         []byte
	tok            *tokenizer.Tokenizer
}

func (s *Server) constrain(inner chat.Sampler, req *request, chatMode bool) *constrained {
	m, tokens := s.masker.get(s.m.Tokenizer, s.m.Backend.Vocab())
	c := &constrained{inner: inner, final: req.Grammar, grammar: req.Grammar, masker: m, tokens: tokens, stops: s.stopIDs, tok: s.m.Tokenizer}
	if len(req.Tools) > 0 {
		c.tools = req.ToolGrammars
	}
	if req.ForceTool != "" {
		c.grammar = req.ToolGrammars[req.ForceTool]
		c.forced = true
		if _, jsonCalls := s.m.Format.(toolParserFormat); jsonCalls && chatMode {
			// Llama 3.1: the whole reply is {"name": ..., "parameters": ...},
			// so the grammar is that object around the arguments'.
			c.grammar = jsonschema.Object([]string{"name", "parameters"}, []*jsonschema.Node{jsonschema.Const(req.ForceTool), c.grammar})
		}
	}
	if _, jsonCalls := s.m.Format.(toolParserFormat); jsonCalls && chatMode && !c.forced && c.grammar == nil && len(req.Tools) == 1 {
		name := req.Tools[0].Name
		c.autoCall = jsonschema.Object([]string{"name", "parameters"}, []*jsonschema.Node{jsonschema.Const(name), req.ToolGrammars[name]})
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
		if ok1 && ok2 {
			c.harmony, c.message, c.start = true, int32(msg), int32(start)
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
}

func (c *constrained) Sample(logits []float32) int32 {
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
	for i, v := range logits {
		if allow[i] || (complete && c.stops[int32(i)]) {
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
	if !c.stops[id] && int(id) < len(c.tokens) {
		c.state, _ = c.state.Bytes(c.tokens[id])
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
		if i := bytes.Index(c.header, []byte("to="+chat.FunctionRecipient)); i >= 0 {
			name := c.header[i+len("to="+chat.FunctionRecipient):]
			if end := bytes.IndexAny(name, " <"); end >= 0 {
				name = name[:end]
			}
			g = c.tools[string(name)]
		} else if bytes.Contains(c.header, []byte("<|channel|>final")) {
			g = c.final
		}
		if g != nil {
			c.active, c.state = true, jsonschema.Start(g)
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
