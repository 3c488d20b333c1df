package compiler

import (
	"strings"
	"testing"
)

// TestPlanSizeBounds: sizes outside the bounds are refused with the flag
// and the range, instead of wrapping around (--ctx 2^62 used to plan a KV
// cache of 6266880 bytes) or being taken as the default.
func TestPlanSizeBounds(t *testing.T) {
	cases := []struct {
		plan PlanOptions
		want string
	}{
		{PlanOptions{Ctx: 1 << 62}, "--ctx 4611686018427387904: the context must be from 1 to 16777216"},
		{PlanOptions{Ctx: -1}, "--ctx -1: the context must be from 1"},
		{PlanOptions{Batch: -3}, "--batch -3: a call must process from 1 to 65536"},
		{PlanOptions{Batch: 1 << 40}, "--batch 1099511627776"},
		// gpt-oss's config.json says max_position_embeddings 131072.
		{PlanOptions{Ctx: 131073}, "--ctx 131073: the model's max_positions (config.json max_position_embeddings) is 131072"},
	}
	for _, c := range cases {
		opts, err := SourceOptions("../models/gpt-oss.arch", "../models/fortune/config.json", nil)
		if err != nil {
			t.Fatal(err)
		}
		opts.Plan = c.plan
		_, err = Compile(opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want an error containing %q", c.plan, err, c.want)
		}
	}
	opts, err := SourceOptions("../models/gpt-oss.arch", "../models/fortune/config.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	opts.Plan = PlanOptions{Ctx: 131072, Batch: 1}
	if _, err := Compile(opts); err != nil {
		t.Errorf("the model's own max_positions is refused: %v", err)
	}
}

// TestCheckRefusesZero: commands pass flags as given, so --ctx 0 and
// --batch 0 are errors there, not the defaults.
func TestCheckRefusesZero(t *testing.T) {
	for _, p := range []PlanOptions{{Ctx: 0, Batch: 1}, {Ctx: 1, Batch: 0}} {
		if err := p.Check(); err == nil {
			t.Errorf("%+v accepted", p)
		}
	}
	if err := (PlanOptions{Ctx: MaxCtx, Batch: MaxBatch}).Check(); err != nil {
		t.Errorf("the bounds themselves are refused: %v", err)
	}
}
