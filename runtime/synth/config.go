package synth

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/compiler/config"
)

// ConfigJSON returns a config.json that compiles the unit's architecture
// back to the same program: base (the config.json the unit was compiled
// with, or nil) with every parameter that did not come from it written
// under the first key of its `from` clause (dotted keys become nested
// objects), and "architectures" naming the model's Hugging Face class so
// that `minerva run` finds the shipped .arch. Every parameter is written,
// defaults included, because a `from ... or FALLBACK` clause may fall back
// to something other than the default when config.json lacks the key.
//
// A --set value of a parameter that no config.json key feeds cannot be
// recorded; that is an error.
func ConfigJSON(u *compiler.Unit, base map[string]any) ([]byte, error) {
	if u == nil || u.File == nil || u.Config == nil {
		return nil, fmt.Errorf("BUG: synth.ConfigJSON needs a compiled unit")
	}
	out := deepCopy(base)
	if out == nil {
		out = map[string]any{}
	}
	from := map[string][]string{}
	for _, b := range u.File.Blocks {
		if b.Config == nil {
			continue
		}
		for _, item := range b.Config.Items {
			if item.Param != nil && item.Param.From != nil {
				from[item.Param.Name] = item.Param.From.Keys
			}
		}
	}
	for _, e := range u.Config.Entries {
		if e.Type == "" || e.Source == config.FromJSON {
			continue // derived, or already in base
		}
		keys := from[e.Name]
		if len(keys) == 0 {
			if e.Source == config.FromSet {
				return nil, fmt.Errorf("--set %s: the architecture reads %s from no config.json key, so the checkpoint's config.json cannot record it; drop the --set or add a `from` clause to the .arch", e.Name, e.Name)
			}
			continue
		}
		setKey(out, keys[0], e.Value)
	}
	if _, ok := out["architectures"]; !ok && u.File.Model != nil && len(u.File.Model.HF) > 0 {
		out["architectures"] = []any{u.File.Model.HF[0]}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("cannot encode config.json: %w", err)
	}
	return append(b, '\n'), nil
}

// setKey sets a dotted key, replacing anything in the way that is not an
// object (a null rope_scaling, say) by one.
func setKey(m map[string]any, key string, v any) {
	parts := strings.Split(key, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = v
}

func deepCopy(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			out[k] = deepCopy(sub)
		} else {
			out[k] = v
		}
	}
	return out
}
