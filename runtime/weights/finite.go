package weights

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
)

// FirstNonFinite returns the index and value of the first NaN or infinity
// among a floating-point tensor's elements, or -1. Tensors of other dtypes
// hold neither: -1. It reads every byte, so callers keep it to tensors they
// decode anyway, not a checkpoint's large matrices.
func (t *Tensor) FirstNonFinite() (int64, float64) {
	d := t.Data
	switch t.DType {
	case BF16:
		for i := 0; i+2 <= len(d); i += 2 {
			if h := binary.LittleEndian.Uint16(d[i:]); h&0x7f80 == 0x7f80 {
				return int64(i / 2), float64(BF16BitsToF32(h))
			}
		}
	case F16:
		for i := 0; i+2 <= len(d); i += 2 {
			if h := binary.LittleEndian.Uint16(d[i:]); h&0x7c00 == 0x7c00 {
				return int64(i / 2), float64(F16BitsToF32(h))
			}
		}
	case F32:
		for i := 0; i+4 <= len(d); i += 4 {
			if b := binary.LittleEndian.Uint32(d[i:]); b&0x7f800000 == 0x7f800000 {
				return int64(i / 4), float64(math.Float32frombits(b))
			}
		}
	case F64:
		for i := 0; i+8 <= len(d); i += 8 {
			if v := math.Float64frombits(binary.LittleEndian.Uint64(d[i:])); math.IsNaN(v) || math.IsInf(v, 0) {
				return int64(i / 8), v
			}
		}
	}
	return -1, 0
}

// MXFP4NaNScale is the E8M0 scale byte that encodes NaN (OCP
// Microscaling Formats v1.0): every value of its block is NaN.
const MXFP4NaNScale = 0xFF

// CheckValues reads the named tensors of the checkpoint and reports every
// one that holds a NaN or an infinity (values: floating-point tensors), or
// an E8M0 scale of 0xFF (scales: the _scales tensors of MXFP4 weights),
// naming the tensor and the first bad element. Names the checkpoint lacks
// are skipped: Validate reports them. hint ends the error's message.
// Tensors are read on all cores: gpt-oss-20b's scales are 600 MB.
func (c *Checkpoint) CheckValues(values, scales []string, hint string) error {
	c.checkOpen()
	type job struct {
		name  string
		scale bool
	}
	var jobs []job
	for _, n := range values {
		jobs = append(jobs, job{n, false})
	}
	for _, n := range scales {
		jobs = append(jobs, job{n, true})
	}
	found := make([]*Problem, len(jobs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(jobs) {
					return
				}
				found[i] = c.checkTensor(jobs[i].name, jobs[i].scale)
			}
		}()
	}
	wg.Wait()
	var probs []Problem
	for _, p := range found {
		if p != nil {
			probs = append(probs, *p)
		}
	}
	if len(probs) == 0 {
		return nil
	}
	return &CheckpointError{Checkpoint: c.path, Summary: "holds values that are not finite", Problems: probs, Hint: hint}
}

// checkTensor is CheckValues for one tensor: nil when it is absent or
// fine.
func (c *Checkpoint) checkTensor(name string, scale bool) *Problem {
	t, ok := c.tensors[name]
	if !ok {
		return nil
	}
	if scale {
		if i := bytes.IndexByte(t.Data, MXFP4NaNScale); i >= 0 {
			return &Problem{Kind: NonFinite, File: c.displayName(t.File), Tensor: name,
				Message: fmt.Sprintf("%s: MXFP4 scale %d is 0xFF, the E8M0 code of NaN", name, i)}
		}
		return nil
	}
	if i, v := t.FirstNonFinite(); i >= 0 {
		return &Problem{Kind: NonFinite, File: c.displayName(t.File), Tensor: name,
			Message: fmt.Sprintf("%s: element %d of %s %s is %v", name, i, t.DType, formatShape(t.Shape), v)}
	}
	return nil
}
