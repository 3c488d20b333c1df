package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/minerva-ml/minerva/runtime/chat"
	"github.com/minerva-ml/minerva/runtime/jsonschema"
	"github.com/minerva-ml/minerva/runtime/sample"
)

// The request bodies as sent. Pointers tell a field left out (or null)
// from a zero; encoding/json matches keys case-insensitively and ignores
// unknown ones, as OpenAI-compatible servers commonly do.
type commonJSON struct {
	Model         string `json:"model"`
	Stream        *bool  `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	MaxTokens        *int64             `json:"max_tokens"`
	Temperature      *float64           `json:"temperature"`
	TopP             *float64           `json:"top_p"`
	TopK             *int64             `json:"top_k"`
	MinP             *float64           `json:"min_p"`
	RepeatPenalty    *float64           `json:"repeat_penalty"`
	RepetitionPen    *float64           `json:"repetition_penalty"`
	FrequencyPenalty *float64           `json:"frequency_penalty"`
	PresencePenalty  *float64           `json:"presence_penalty"`
	Seed             *int64             `json:"seed"`
	Stop             json.RawMessage    `json:"stop"`
	N                *int64             `json:"n"`
	IgnoreEOS        *bool              `json:"ignore_eos"`
	LogitBias        map[string]float64 `json:"logit_bias"`
}

type chatRequestJSON struct {
	commonJSON
	Messages            []messageJSON   `json:"messages"`
	MaxCompletionTokens *int64          `json:"max_completion_tokens"`
	Logprobs            *bool           `json:"logprobs"`
	TopLogprobs         *int64          `json:"top_logprobs"`
	Tools               json.RawMessage `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
	ParallelToolCalls   *bool           `json:"parallel_tool_calls"`
	ResponseFormat      json.RawMessage `json:"response_format"`
	ReasoningEffort     *string         `json:"reasoning_effort"`
}

type messageJSON struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	ToolCalls  json.RawMessage `json:"tool_calls"`
	ToolCallID *string         `json:"tool_call_id"`
}

type completionRequestJSON struct {
	commonJSON
	Prompt   json.RawMessage `json:"prompt"`
	Logprobs *int64          `json:"logprobs"`
	Echo     *bool           `json:"echo"`
	Suffix   *string         `json:"suffix"`
	BestOf   *int64          `json:"best_of"`
}

// request is a validated request of either endpoint.
type request struct {
	Model        string
	Stream       bool
	IncludeUsage bool
	// MaxTokens is 0 when the client gave none; MaxParam names the field
	// it came in, for errors.
	MaxTokens int
	MaxParam  string
	Sampling  sampling
	Stop      []string
	IgnoreEOS bool
	// N is the number of choices (1 to maxChoices).
	N int
	// Logprobs asks for the answer tokens' log-probabilities, and
	// TopLogprobs for that many alternatives per token.
	Logprobs    bool
	TopLogprobs int

	// Chat only.
	Messages []chat.Message
	// Grammar constrains the answer (response_format); nil is free text.
	Grammar         *jsonschema.Node
	ReasoningEffort string
	// Tools the model may call, their arguments' grammars, and the
	// function the reply must call ("" for the model's choice).
	Tools        []chat.Tool
	ToolGrammars map[string]*jsonschema.Node
	ForceTool    string
	// ForceAny: the reply must call one of the tools (tool_choice
	// required with several).
	ForceAny bool
	// OneCall: at most one call per reply (parallel_tool_calls false).
	OneCall bool

	// Completions only: the prompt as text, or as token ids.
	Prompt    string
	PromptIDs []int32
}

// sampling holds the sampling fields a request set.
type sampling struct {
	Temperature, TopP, MinP, RepeatPenalty *float64
	PresencePenalty, FrequencyPenalty      *float64
	TopK                                   *int
	Seed                                   *uint64
	LogitBias                              map[int32]float32
}

// OpenAI's limits: stop sequences, choices (ours: they run one after the
// other), logprob alternatives and logit_bias values.
const (
	maxStops        = 4
	maxChoices      = 8
	maxLogitBias    = 100
	maxCompletionLP = sample.MaxTopLogprobs
)

// decode unmarshals a body, turning the decoder's errors into 400s that
// name the field.
func decode(body []byte, v any) *apiError {
	if len(bytes.TrimSpace(body)) == 0 {
		return invalid("", "invalid_json", "the request body is empty; send a JSON object")
	}
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return invalid("", "invalid_json", "the request body must be a JSON object, not a JSON %s", te.Value)
		}
		field := strings.TrimPrefix(te.Field, "commonJSON.") // the embedded struct is not part of the API
		return invalid(field, "invalid_type", "%s: expected %s, got a JSON %s", field, jsonKind(te.Type.Kind().String()), te.Value)
	}
	return invalid("", "invalid_json", "the request body is not valid JSON (%v); send a JSON object", err)
}

func jsonKind(goKind string) string {
	switch {
	case strings.HasPrefix(goKind, "int"), strings.HasPrefix(goKind, "uint"):
		return "an integer"
	case strings.HasPrefix(goKind, "float"):
		return "a number"
	case goKind == "bool":
		return "a boolean"
	case goKind == "string":
		return "a string"
	case goKind == "slice":
		return "an array"
	}
	return "an object"
}

func parseChatRequest(body []byte) (*request, *apiError) {
	var in chatRequestJSON
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if e := checkFields(body, refusedChatFields); e != nil {
		return nil, e
	}
	r := &request{}
	if e := in.commonJSON.parse(r); e != nil {
		return nil, e
	}
	if in.MaxCompletionTokens != nil {
		if e := r.setMaxTokens(*in.MaxCompletionTokens, "max_completion_tokens"); e != nil {
			return nil, e
		}
	}
	r.Logprobs = in.Logprobs != nil && *in.Logprobs
	if in.TopLogprobs != nil {
		if *in.TopLogprobs < 0 || *in.TopLogprobs > sample.MaxTopLogprobs {
			return nil, invalid("top_logprobs", "invalid_value", "top_logprobs must be between 0 and %d, not %d", sample.MaxTopLogprobs, *in.TopLogprobs)
		}
		if !r.Logprobs && *in.TopLogprobs > 0 {
			return nil, invalid("top_logprobs", "invalid_value", "top_logprobs needs logprobs set to true")
		}
		r.TopLogprobs = int(*in.TopLogprobs)
	}
	if e := parseTools(in.Tools, in.ToolChoice, in.ParallelToolCalls, r); e != nil {
		return nil, e
	}
	var e *apiError
	if r.Grammar, e = parseResponseFormat(in.ResponseFormat); e != nil {
		return nil, e
	}
	if in.ReasoningEffort != nil {
		r.ReasoningEffort = *in.ReasoningEffort
		if r.ReasoningEffort == "minimal" {
			r.ReasoningEffort = "low" // gpt-oss knows three levels
		}
		if !contains(chat.ReasoningEfforts, r.ReasoningEffort) {
			return nil, invalid("reasoning_effort", "invalid_value", "reasoning_effort must be low, medium or high, not %q", *in.ReasoningEffort)
		}
	}
	if len(in.Messages) == 0 {
		return nil, invalid("messages", "invalid_value", "messages must hold at least one message")
	}
	callNames := map[string]string{} // tool call id -> function
	for i, m := range in.Messages {
		msg, e := m.parse(i, callNames)
		if e != nil {
			return nil, e
		}
		r.Messages = append(r.Messages, msg)
	}
	return r, nil
}

func (m messageJSON) parse(i int, callNames map[string]string) (chat.Message, *apiError) {
	p := fmt.Sprintf("messages[%d]", i)
	switch m.Role {
	case chat.RoleSystem, chat.RoleDeveloper, chat.RoleUser, chat.RoleAssistant:
	case chat.RoleTool:
		return m.parseToolResult(p, callNames)
	case "function":
		return chat.Message{}, invalid(p+".role", "unsupported_value", "%s.role: function messages are OpenAI's deprecated form; send role tool with a tool_call_id", p)
	case "":
		return chat.Message{}, invalid(p+".role", "missing_required_parameter", "%s.role is missing; use system, developer, user or assistant", p)
	default:
		return chat.Message{}, invalid(p+".role", "invalid_value", "%s.role: unknown role %q; use system, developer, user or assistant", p, m.Role)
	}
	if !isNullOrEmpty(m.ToolCalls) {
		if m.Role != chat.RoleAssistant {
			return chat.Message{}, invalid(p+".tool_calls", "invalid_value", "%s.tool_calls: only assistant messages make tool calls", p)
		}
		return m.parseToolCalls(p, callNames)
	}
	text, e := contentText(m.Content, p+".content")
	if e != nil {
		return chat.Message{}, e
	}
	return chat.Message{Role: m.Role, Content: text}, nil
}

// contentText reads a message's content: a string, or an array of text
// parts ({"type": "text", "text": ...}), joined by newlines.
func contentText(raw json.RawMessage, param string) (string, *apiError) {
	if isNull(raw) {
		return "", invalid(param, "missing_required_parameter", "%s is missing; give the message's text", param)
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var parts []struct {
		Type string  `json:"type"`
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", invalid(param, "invalid_type", "%s must be a string or an array of text parts", param)
	}
	texts := make([]string, 0, len(parts))
	for j, part := range parts {
		if part.Type != "text" || part.Text == nil {
			return "", invalid(fmt.Sprintf("%s[%d]", param, j), "unsupported_value", "%s[%d]: only text parts ({\"type\": \"text\", \"text\": ...}) are supported, not type %q", param, j, part.Type)
		}
		texts = append(texts, *part.Text)
	}
	return strings.Join(texts, "\n"), nil
}

func parseCompletionRequest(body []byte) (*request, *apiError) {
	var in completionRequestJSON
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if e := checkFields(body, refusedCompletionFields); e != nil {
		return nil, e
	}
	r := &request{}
	if e := in.commonJSON.parse(r); e != nil {
		return nil, e
	}
	if in.Logprobs != nil {
		// The legacy format: the number of alternatives, 0 for the
		// chosen tokens alone.
		if *in.Logprobs < 0 || *in.Logprobs > maxCompletionLP {
			return nil, invalid("logprobs", "invalid_value", "logprobs must be between 0 and %d, not %d", maxCompletionLP, *in.Logprobs)
		}
		r.Logprobs, r.TopLogprobs = true, int(*in.Logprobs)
	}
	switch {
	case in.Echo != nil && *in.Echo:
		return nil, invalid("echo", "unsupported_parameter", "echo is not supported")
	case in.Suffix != nil && *in.Suffix != "":
		return nil, invalid("suffix", "unsupported_parameter", "suffix is not supported")
	case in.BestOf != nil && *in.BestOf != 1:
		return nil, invalid("best_of", "unsupported_parameter", "only best_of=1 is supported")
	}
	if isNull(in.Prompt) {
		return nil, invalid("prompt", "missing_required_parameter", "prompt is missing")
	}
	// A string, an array of one string, an array of token ids, or an
	// array of one array of token ids.
	var s string
	var list []string
	var ids []int64
	var idLists [][]int64
	switch {
	case json.Unmarshal(in.Prompt, &s) == nil:
		r.Prompt = s
	case json.Unmarshal(in.Prompt, &list) == nil && len(list) == 1:
		r.Prompt = list[0]
	case json.Unmarshal(in.Prompt, &ids) == nil && len(ids) > 0:
		r.PromptIDs = make([]int32, len(ids))
	case json.Unmarshal(in.Prompt, &idLists) == nil && len(idLists) == 1 && len(idLists[0]) > 0:
		ids = idLists[0]
		r.PromptIDs = make([]int32, len(ids))
	default:
		return nil, invalid("prompt", "invalid_value", "prompt must be a string, or token ids; one prompt per request")
	}
	for i, id := range ids {
		if id < 0 || id > math.MaxInt32 {
			return nil, invalid("prompt", "invalid_value", "prompt[%d]: %d is not a token id", i, id)
		}
		r.PromptIDs[i] = int32(id)
	}
	if r.PromptIDs == nil && r.Prompt == "" {
		return nil, invalid("prompt", "invalid_value", "prompt is empty")
	}
	return r, nil
}

// parse validates the fields both endpoints share, with OpenAI's ranges.
func (in *commonJSON) parse(r *request) *apiError {
	r.Model = in.Model
	r.Stream = in.Stream != nil && *in.Stream
	if in.StreamOptions != nil {
		if !r.Stream {
			return invalid("stream_options", "invalid_value", "stream_options is only allowed when stream is true")
		}
		r.IncludeUsage = in.StreamOptions.IncludeUsage
	}
	if in.MaxTokens != nil {
		if e := r.setMaxTokens(*in.MaxTokens, "max_tokens"); e != nil {
			return e
		}
	}
	s := &r.Sampling
	if e := inRange(in.Temperature, "temperature", 0, 2); e != nil {
		return e
	}
	s.Temperature = in.Temperature
	if e := inRange(in.TopP, "top_p", 0, 1); e != nil {
		return e
	}
	s.TopP = in.TopP
	if e := inRange(in.MinP, "min_p", 0, 1); e != nil {
		return e
	}
	s.MinP = in.MinP
	if in.TopK != nil {
		if *in.TopK < 0 || *in.TopK > math.MaxInt32 {
			return invalid("top_k", "invalid_value", "top_k must be 0 (off) or a positive number of tokens, not %d", *in.TopK)
		}
		k := int(*in.TopK)
		s.TopK = &k
	}
	penalty, name := in.RepeatPenalty, "repeat_penalty"
	if penalty == nil {
		penalty, name = in.RepetitionPen, "repetition_penalty"
	}
	if penalty != nil && (!(*penalty > 0) || math.IsInf(*penalty, 0)) {
		return invalid(name, "invalid_value", "%s must be a positive number (1 is off), not %v", name, *penalty)
	}
	s.RepeatPenalty = penalty
	if e := inRange(in.FrequencyPenalty, "frequency_penalty", -2, 2); e != nil {
		return e
	}
	if e := inRange(in.PresencePenalty, "presence_penalty", -2, 2); e != nil {
		return e
	}
	s.FrequencyPenalty, s.PresencePenalty = in.FrequencyPenalty, in.PresencePenalty
	for key, v := range in.LogitBias {
		id, err := strconv.ParseInt(key, 10, 32)
		if err != nil || id < 0 {
			return invalid("logit_bias", "invalid_value", "logit_bias: the key %q is not a token id", key)
		}
		if !(v >= -maxLogitBias && v <= maxLogitBias) {
			return invalid("logit_bias", "invalid_value", "logit_bias: the bias of token %d must be between -100 and 100, not %v", id, v)
		}
		if s.LogitBias == nil {
			s.LogitBias = map[int32]float32{}
		}
		s.LogitBias[int32(id)] = float32(v)
	}
	if in.Seed != nil {
		seed := uint64(*in.Seed)
		s.Seed = &seed
	}
	r.N = 1
	if in.N != nil {
		if *in.N < 1 || *in.N > maxChoices {
			return invalid("n", "invalid_value", "n must be between 1 and %d, not %d", maxChoices, *in.N)
		}
		r.N = int(*in.N)
	}
	r.IgnoreEOS = in.IgnoreEOS != nil && *in.IgnoreEOS
	return parseStop(in.Stop, r)
}

func (r *request) setMaxTokens(v int64, param string) *apiError {
	if v < 1 || v > math.MaxInt32 {
		return invalid(param, "invalid_value", "%s must be at least 1, not %d", param, v)
	}
	r.MaxTokens, r.MaxParam = int(v), param
	return nil
}

func inRange(v *float64, name string, lo, hi float64) *apiError {
	if v != nil && !(*v >= lo && *v <= hi) {
		return invalid(name, "invalid_value", "%s must be between %g and %g, not %v", name, lo, hi, *v)
	}
	return nil
}

func parseStop(raw json.RawMessage, r *request) *apiError {
	if isNull(raw) {
		return nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		if one != "" {
			r.Stop = []string{one}
		}
		return nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return invalid("stop", "invalid_type", "stop must be a string or an array of strings")
	}
	if len(list) > maxStops {
		return invalid("stop", "invalid_value", "stop holds %d strings; at most %d are allowed", len(list), maxStops)
	}
	for _, s := range list {
		if s != "" {
			r.Stop = append(r.Stop, s)
		}
	}
	return nil
}

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

func isNullOrEmpty(raw json.RawMessage) bool {
	if isNull(raw) {
		return true
	}
	var list []json.RawMessage
	return json.Unmarshal(raw, &list) == nil && len(list) == 0
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
