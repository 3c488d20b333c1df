package compiler

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/compiler/config"
)

// TestShippedArchsCheckConfigValues edits the fortune model's config.json
// (a real gpt-oss config) one key at a time and compiles the shipped
// gpt-oss.arch with it: a value of the wrong type, out of its declared
// range or not one of the accepted values is an error that names the key,
// what was found and what was expected; none is accepted silently.
func TestShippedArchsCheckConfigValues(t *testing.T) {
	base, err := os.ReadFile("../models/fortune/config.json")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("../models/gpt-oss.arch")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		key  string
		val  any
		want string
	}{
		{"eos_token_id", "x", `config.json:8:3: "eos_token_id" is "x"; expected an integer or a list of integers`},
		{"eos_token_id", -1, `"eos_token_id" is -1; expected an integer from 0 to 4095`},
		{"eos_token_id", 1e9, `"eos_token_id" is 1000000000; expected an integer from 0 to 4095`},
		{"eos_token_id", []any{1, 4096}, `"eos_token_id" element 1 is 4096; expected an integer from 0 to 4095`},
		{"layer_types", []any{"sliding_attention", "full_attention", "chunked_attention", "full_attention"},
			`"layer_types" element 2 is "chunked_attention"; expected one of "sliding_attention", "full_attention"`},
		{"rope_scaling", "yarn", `"rope_scaling" is "yarn"; expected an object or null: rope_type reads "rope_scaling.rope_type"`},
		{"rope_scaling", map[string]any{"rope_type": "dynamic", "factor": 2.0},
			`"rope_scaling.rope_type" is "dynamic"; expected one of "default", "linear", "yarn", "llama3"`},
		{"num_hidden_layers", 0, `"num_hidden_layers" is 0; expected an integer from 1 to 1048575`},
		{"vocab_size", "big", `"vocab_size" is "big"; expected an integer`},
	}
	for _, c := range cases {
		var cfg map[string]any
		if err := json.Unmarshal(base, &cfg); err != nil {
			t.Fatal(err)
		}
		cfg[c.key] = c.val
		text, _ := json.MarshalIndent(cfg, "", "  ")
		js, err := config.ParseJSON("config.json", text)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Compile(Options{File: "models/gpt-oss.arch", Source: string(src), JSON: js, StopAfter: "config"})
		if err == nil {
			t.Errorf("%s = %v: compiled without error", c.key, c.val)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s = %v: the error does not say %q:\n%v", c.key, c.val, c.want, err)
		}
	}
}
