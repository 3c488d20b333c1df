package serve

import (
	"bytes"
	"encoding/json"
)

// Fields of OpenAI's request bodies that the struct decoders do not
// read. A known field is never dropped silently: it is refused with a
// 400 naming it unless its value is null or does nothing here (refused),
// or it is listed as ignored because it cannot change the output. Unknown
// fields are ignored, as llama-server and vLLM do (OpenAI refuses them),
// so that clients sending other servers' extensions still work. The full
// table is in docs/serving.md.
var (
	// refusedFields map a field to why it is refused, and the value it
	// may have anyway (JSON, compacted), if any.
	refusedChatFields = map[string]refusal{
		"audio":              {why: "audio output is not supported: the model writes text"},
		"modalities":         {why: "only text output is supported", allowed: []string{`["text"]`}},
		"prediction":         {why: "predicted outputs (speculative decoding) are not supported"},
		"web_search_options": {why: "web search is not supported"},
		"functions":          {why: "the deprecated functions field is not supported; use tools"},
		"function_call":      {why: "the deprecated function_call field is not supported; use tool_choice"},
		"verbosity":          {why: "verbosity is not supported by these models", allowed: []string{`"medium"`}},
	}
	refusedCompletionFields = map[string]refusal{}

	// ignoredFields change nothing a model computes: they are accepted
	// and dropped.
	ignoredFields = []string{"user", "metadata", "store", "service_tier", "safety_identifier", "prompt_cache_key"}
)

type refusal struct {
	why     string
	allowed []string
}

// checkFields refuses the known fields of refused that the request sets.
// body is valid JSON (decode has run).
func checkFields(body []byte, refused map[string]refusal) *apiError {
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return nil // decode reported it
	}
	for name, r := range refused {
		raw, ok := fields[name]
		if !ok || isNull(raw) {
			continue
		}
		var compact bytes.Buffer
		if json.Compact(&compact, raw) == nil && contains(r.allowed, compact.String()) {
			continue
		}
		return invalid(name, "unsupported_parameter", "%s: %s", name, r.why)
	}
	return nil
}
