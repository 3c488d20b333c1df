package main

import (
	"fmt"
	"os"
	"path/filepath"
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
	if err := c.checkOut(); err != nil {
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

// checkOut refuses an --out that is one of the model's own files (its
// checkpoint, config.json, ...), the architecture or a file of the
// artifact: writing the logits would overwrite it. Files are compared with
// os.SameFile, so another path or a link to them is refused too.
func (c *LogitsCmd) checkOut() error {
	out, err := os.Stat(c.Out)
	if err != nil {
		return nil // a new file cannot be one of the inputs
	}
	var inputs []string
	if c.Model != "" {
		dir, err := loader.ResolveModel(c.Model)
		if err != nil {
			return err
		}
		inputs = append(inputs, filesIn(dir)...)
	} else if exe, err := os.Executable(); err == nil {
		inputs = append(inputs, exe) // the embedded checkpoint is in the binary
	}
	if fi, err := os.Stat(c.Arch); err == nil && fi.IsDir() {
		inputs = append(inputs, filesIn(c.Arch)...)
	} else {
		inputs = append(inputs, c.Arch)
	}
	for _, p := range inputs {
		if fi, err := os.Stat(p); err == nil && os.SameFile(fi, out) {
			return fmt.Errorf("--out %s is %s, an input of this command: writing the logits there would overwrite it; choose another file", c.Out, p)
		}
	}
	return nil
}

// filesIn lists the files of a directory and of its subdirectories one
// level down (an artifact's go/), following links.
func filesIn(dir string) []string {
	var out []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			sub, _ := os.ReadDir(p)
			for _, s := range sub {
				out = append(out, filepath.Join(p, s.Name()))
			}
			continue
		}
		out = append(out, p)
	}
	return out
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
