package compiler

import (
	"testing"

	"github.com/minerva-ml/minerva/compiler/ir"
)

// TestPositionsSurviveLowering: every op of the final program, and every
// op of a fused body, still points at the .arch source it was lowered
// from, fused or not, so a late pass (legalize) can report where the user
// wrote it.
func TestPositionsSurviveLowering(t *testing.T) {
	for _, disable := range [][]string{nil, {"fuse"}} {
		opts, err := SourceOptions("../models/gpt-oss.arch", "../testdata/gpt-oss/tiny-random/config.json", nil)
		if err != nil {
			t.Fatal(err)
		}
		opts.Disable = disable
		opts.StopAfter = "legalize"
		u, err := Compile(opts)
		if err != nil {
			t.Fatal(err)
		}
		var check func(ops []*ir.Op)
		check = func(ops []*ir.Op) {
			for _, op := range ops {
				if !op.Pos.IsValid() || op.Pos.File != "../models/gpt-oss.arch" || op.End.Offset <= op.Pos.Offset {
					t.Errorf("disable %v: %s (layer %d) has no source span: %+v..%+v", disable, op.Kind, op.Layer, op.Pos, op.End)
				}
				check(op.Body)
			}
		}
		check(u.Func.Ops)
	}
}
