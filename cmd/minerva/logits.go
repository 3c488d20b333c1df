package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/minerva-ml/minerva/runtime/engine"
	"github.com/minerva-ml/minerva/runtime/loader"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// LogitsCmd is `minerva logits`.
type LogitsCmd struct {
	Arch string `arg:"" help:"An .arch file (compiled in memory for the model's config.json) or a compiled artifact directory." name:"ARCH_OR_ARTIFACT"`
	ModelFlags
	IDs string `name:"ids" required:"" help:"Comma-separated token ids." placeholder:"1,2,3"`
	Out string `required:"" help:"Output SafeTensors file: one F32 tensor named logits, shape [T, V]." placeholder:"FILE.safetensors"`
}

// Run computes the logits: the first half of the ids as one prefill, the
// rest one token at a time, so both paths run.
func (c *LogitsCmd) Run(env *Env) error {
	ids, err := parseIDs(c.IDs)
	if err != nil {
		return err
	}
	m, err := loader.Load(c.spec(c.Arch, env))
	if err != nil {
		return err
	}
	defer m.Close()
	s := engine.NewSession(m.Backend)
	logits, err := s.AllLogits(ids, len(ids)/2)
	if err != nil {
		return err
	}
	V := m.Backend.Vocab()
	w, err := weights.NewWriter(c.Out, []weights.TensorHeader{{Name: "logits", DType: weights.F32, Shape: []int64{int64(len(ids)), int64(V)}}}, nil)
	if err != nil {
		return err
	}
	data := make([]byte, 4*len(logits))
	weights.F32ToBytes(data, logits)
	if err := w.WriteTensor("logits", data); err != nil {
		w.Close()
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "wrote logits [%d, %d] to %s\n", len(ids), V, c.Out)
	return nil
}

func parseIDs(s string) ([]int32, error) {
	var ids []int32
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("--ids: entry %d is empty; write ids like 1,2,3", i+1)
		}
		v, err := strconv.ParseInt(part, 10, 32)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("--ids: %q is not a token id (a non-negative integer)", part)
		}
		ids = append(ids, int32(v))
	}
	return ids, nil
}
