package wcheck

import "testing"

func TestGeneralise(t *testing.T) {
	for in, want := range map[string]string{
		"model.layers.3.mlp.experts.7.up_proj.weight": "model.layers.{i}.mlp.experts.{n}.up_proj.weight",
		"model.embed_tokens.weight":                   "model.embed_tokens.weight",
		"model.layers.12.self_attn.q_proj.weight":     "model.layers.{i}.self_attn.q_proj.weight",
		"h.0.attn.c_attn2.weight":                     "h.{i}.attn.c_attn2.weight",
	} {
		if got := Generalise(in); got != want {
			t.Errorf("Generalise(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLayerPhrase(t *testing.T) {
	for _, c := range []struct {
		layers []int
		total  int
		want   string
	}{
		{[]int{-1}, 1, ""},
		{[]int{0, 1, 2}, 3, " (in all 3 layers)"},
		{[]int{2}, 3, " (in layer 2)"},
		{[]int{1, 2}, 3, " (in layers 1..3)"},
		{[]int{0, 2}, 3, " (in layers 0, 2)"},
		{[]int{0, 2, 4, 6, 8, 10, 12, 14, 16}, 20, " (in layers 0, 2, 4, 6, 8, 10, 12, 14, ...)"},
	} {
		if got := layerPhrase(c.layers, c.total); got != c.want {
			t.Errorf("layerPhrase(%v, %d) = %q, want %q", c.layers, c.total, got, c.want)
		}
	}
}
