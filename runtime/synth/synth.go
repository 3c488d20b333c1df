// Package synth writes synthetic checkpoints: random weights in the exact
// layout a compiled architecture reads (tensor names, dtypes, shapes, the
// MXFP4 blocks and scales, shards and index), with a config.json that
// compiles back to the same program. A full-size gpt-oss-20b is 13 GB that
// nobody can check into a repository; this makes one in about a minute, so
// loading, memory and speed can be measured at the real size without the
// released weights.
//
// Values are random but sane, so activations stay finite through every
// layer: matrices are uniform-ish Gaussian with standard deviation
// 1/sqrt(fan-in), norms are near 1 (minus the norm's offset), biases and
// other vectors are small, and MXFP4 blocks are uniformly random E2M1 codes
// under E8M0 scales chosen so that the dequantised values have the same
// 1/sqrt(fan-in) spread. The output depends only on the program and the
// seed: each 1 MiB segment of each tensor has its own generator, seeded
// from the seed, the tensor's name and the segment's index, so tensors can
// be written in any order on any number of threads.
package synth

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// DefaultShardBytes is the largest shard Write makes unless told otherwise:
// the 5 GB of Hugging Face's save_pretrained default, which splits
// gpt-oss-20b into three files like the released checkpoint.
const DefaultShardBytes = 5_000_000_000

// Options control Write.
type Options struct {
	// Seed selects the random values; the same seed gives the same bytes.
	Seed uint64
	// ShardBytes is the largest shard (0: DefaultShardBytes). A checkpoint
	// that fits in one shard is written as model.safetensors; a larger one
	// as model-00001-of-0000N.safetensors ... with
	// model.safetensors.index.json.
	ShardBytes int64
	// Workers is the number of tensors generated at once (0: GOMAXPROCS).
	Workers int
	// Progress, when set, receives a progress bar (redrawn in place on a
	// terminal, a line every few seconds otherwise).
	Progress io.Writer
}

// Tensor is one tensor of the layout.
type Tensor struct {
	Name  string
	DType weights.DType
	Shape []int64
	Bytes int64
	// Fill says how its values are drawn.
	Fill Fill
}

// FillKind is how a tensor's values are drawn.
type FillKind uint8

const (
	// Normal draws mean + std * N(0, 1), approximately (a sum of four
	// uniforms), rounded to the tensor's dtype.
	Normal FillKind = iota + 1
	// RandomBytes draws uniform bytes: packed E2M1 codes, any byte valid.
	RandomBytes
	// Scales draws E8M0 bytes Exponent-1, Exponent or Exponent+1.
	Scales
)

// Fill is the distribution of one tensor's values.
type Fill struct {
	Kind      FillKind
	Mean, Std float64
	Exponent  int // Scales: the central E8M0 byte
}

// Shard is one file of the layout.
type Shard struct {
	File    string
	Tensors []Tensor // in file order
	Bytes   int64    // tensor data, without the header
}

// Layout is the set of files Write makes for a program.
type Layout struct {
	Shards []Shard
	// Index is true when the shards are listed by
	// model.safetensors.index.json.
	Index bool
	// Tensors and Bytes count every tensor and its data.
	Tensors int
	Bytes   int64
}

// Plan lays out the checkpoint of a compiled unit without writing it.
// Tensors are assigned to shards in manifest order, a new shard starting
// when the next tensor would take the current one past shardBytes; inside
// a shard they are ordered as the safetensors library orders them (wider
// dtypes first, then by name), which keeps every tensor aligned to its
// element size.
func Plan(u *compiler.Unit, shardBytes int64) (*Layout, error) {
	if u == nil || u.Func == nil {
		return nil, errors.New("BUG: synth.Plan needs a compiled unit")
	}
	if shardBytes <= 0 {
		shardBytes = DefaultShardBytes
	}
	fills := fillsFor(u.Func)
	l := &Layout{}
	var cur Shard
	for _, w := range u.Func.Weights {
		for i, t := range w.Tensors() {
			dt, err := weights.ParseDType(t.DType.String())
			if err != nil {
				return nil, fmt.Errorf("BUG: weight %s has the dtype %s, which no checkpoint stores", w.Name, t.DType)
			}
			n := int64(dt.Size())
			for _, d := range t.Shape {
				if d < 0 || d != 0 && n > maxBytes/d {
					return nil, fmt.Errorf("%s %v takes more than %d bytes: choose a smaller model", t.Name, t.Shape, int64(maxBytes))
				}
				n *= d
			}
			if l.Bytes > maxBytes-n {
				return nil, fmt.Errorf("the checkpoint would take more than %d bytes: choose a smaller model", int64(maxBytes))
			}
			ten := Tensor{Name: t.Name, DType: dt, Shape: slices.Clone([]int64(t.Shape)), Bytes: n, Fill: fills.of(w, i)}
			if len(cur.Tensors) > 0 && cur.Bytes+n > shardBytes {
				l.Shards = append(l.Shards, cur)
				cur = Shard{}
			}
			cur.Tensors = append(cur.Tensors, ten)
			cur.Bytes += n
			l.Tensors++
			l.Bytes += n
		}
	}
	if len(cur.Tensors) > 0 || len(l.Shards) == 0 {
		l.Shards = append(l.Shards, cur)
	}
	l.Index = len(l.Shards) > 1
	for i := range l.Shards {
		s := &l.Shards[i]
		if l.Index {
			s.File = fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, len(l.Shards))
		} else {
			s.File = "model.safetensors"
		}
		slices.SortStableFunc(s.Tensors, func(a, b Tensor) int {
			if c := cmp.Compare(b.DType.Size(), a.DType.Size()); c != 0 {
				return c
			}
			return cmp.Compare(a.Name, b.Name)
		})
	}
	return l, nil
}

// maxBytes bounds the sizes Plan adds up (a PiB), so that they cannot
// overflow.
const maxBytes = 1 << 50

// freeSpace is diskFree; tests replace it.
var freeSpace = diskFree

// checkFreeSpace refuses to start a checkpoint the file system holding dir
// cannot take: writing would fail far into the job, after filling the
// disk. need counts the tensor data and a generous allowance for the
// headers, the index and config.json.
func checkFreeSpace(dir string, l *Layout) error {
	need := l.Bytes + int64(l.Tensors)*1024 + 1<<20
	// dir may not exist yet: ask about the directory it will be made in.
	at := dir
	for {
		if _, err := os.Stat(at); err == nil || filepath.Dir(at) == at {
			break
		}
		at = filepath.Dir(at)
	}
	free, ok := freeSpace(at)
	if !ok || need <= free {
		return nil
	}
	return fmt.Errorf("the checkpoint needs %s (%d bytes) but the file system of %s has %s (%d bytes) free: free some space, choose another --out, or make the model smaller (--set, --config)",
		compiler.HumanBytes(need), need, dir, compiler.HumanBytes(free), free)
}

// Result describes a written checkpoint.
type Result struct {
	Layout   *Layout
	Dir      string
	Files    []string // the files written, relative to Dir
	Duration time.Duration
}

// Write generates the checkpoint of a compiled unit into dir, which must
// not already hold one, and writes config.json (see ConfigJSON). base is
// the config.json the unit was compiled with, or nil.
func Write(dir string, u *compiler.Unit, base map[string]any, opts Options) (*Result, error) {
	start := time.Now()
	layout, err := Plan(u, opts.ShardBytes)
	if err != nil {
		return nil, err
	}
	cfg, err := ConfigJSON(u, base)
	if err != nil {
		return nil, err
	}
	if err := checkFreeSpace(dir, layout); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create the output directory: %w", err)
	}
	if existing := existingCheckpoint(dir); existing != "" {
		return nil, fmt.Errorf("%s already holds a checkpoint (%s): remove it or choose another --out", dir, existing)
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	res := &Result{Layout: layout, Dir: dir}

	// One Writer per shard, all open at once, so that the biggest tensors
	// of every shard can start first and the workers finish together.
	type job struct {
		w *weights.Writer
		t Tensor
	}
	var jobs []job
	writers := make([]*weights.Writer, len(layout.Shards))
	abandon := func() {
		for _, w := range writers {
			if w != nil {
				w.Close() // reports the missing tensors and deletes the partial file
			}
		}
	}
	for i, s := range layout.Shards {
		headers := make([]weights.TensorHeader, len(s.Tensors))
		for j, t := range s.Tensors {
			headers[j] = weights.TensorHeader{Name: t.Name, DType: t.DType, Shape: t.Shape}
		}
		w, err := weights.NewWriter(filepath.Join(dir, s.File), headers, map[string]string{"format": "pt"})
		if err != nil {
			abandon()
			return nil, err
		}
		writers[i] = w
		for _, t := range s.Tensors {
			jobs = append(jobs, job{w, t})
		}
	}
	slices.SortStableFunc(jobs, func(a, b job) int { return cmp.Compare(b.t.Bytes, a.t.Bytes) })

	bar := newProgress(opts.Progress, layout.Tensors, layout.Bytes)
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for range min(workers, len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(jobs) || bar.failed.Load() {
					return
				}
				j := jobs[i]
				r := newReader(opts.Seed, j.t, &bar.bytes)
				if err := j.w.WriteTensorFrom(j.t.Name, r); err != nil {
					errOnce.Do(func() { firstErr = err })
					bar.failed.Store(true)
					return
				}
				bar.tensors.Add(1)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		bar.stop("")
		abandon()
		return nil, firstErr
	}
	for i, w := range writers {
		if err := w.Close(); err != nil {
			bar.stop("")
			abandon()
			for _, f := range res.Files {
				os.Remove(filepath.Join(dir, f)) // a checkpoint missing a shard is no use
			}
			return nil, err
		}
		res.Files = append(res.Files, layout.Shards[i].File)
	}
	if layout.Index {
		if err := writeIndex(dir, layout); err != nil {
			bar.stop("")
			return nil, err
		}
		res.Files = append(res.Files, indexFile)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644); err != nil {
		bar.stop("")
		return nil, fmt.Errorf("cannot write config.json: %w", err)
	}
	res.Files = append(res.Files, "config.json")
	res.Duration = time.Since(start)
	bar.stop(fmt.Sprintf("wrote %d tensors, %s in %d file(s), in %s (%.0f MB/s)",
		layout.Tensors, compiler.HumanBytes(layout.Bytes), len(layout.Shards),
		res.Duration.Round(time.Millisecond), float64(layout.Bytes)/1e6/res.Duration.Seconds()))
	return res, nil
}

const indexFile = "model.safetensors.index.json"

// existingCheckpoint names a checkpoint file already in dir, or "". Open
// prefers model.safetensors to an index and globs *.safetensors without
// one, so a stale file would be loaded instead of, or beside, the new ones.
func existingCheckpoint(dir string) string {
	if _, err := os.Stat(filepath.Join(dir, indexFile)); err == nil {
		return indexFile
	}
	m, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	if len(m) > 0 {
		return filepath.Base(m[0])
	}
	return ""
}

// writeIndex writes model.safetensors.index.json as save_pretrained does.
func writeIndex(dir string, l *Layout) error {
	weightMap := map[string]string{}
	for _, s := range l.Shards {
		for _, t := range s.Tensors {
			weightMap[t.Name] = s.File
		}
	}
	idx := struct {
		Metadata  map[string]int64  `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}{map[string]int64{"total_size": l.Bytes}, weightMap}
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		panic("BUG: cannot encode the index: " + err.Error())
	}
	if err := os.WriteFile(filepath.Join(dir, indexFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("cannot write the index: %w", err)
	}
	return nil
}

// fills assigns each weight a distribution from the ops that read it.
type fills map[*ir.Weight]Fill

// of gives the fill of physical tensor i of w (MXFP4: 0 blocks, 1 scales).
func (f fills) of(w *ir.Weight, i int) Fill {
	fill, ok := f[w]
	if !ok {
		fill = defaultFill(w)
	}
	if w.DType == ir.MXFP4 {
		if i == 0 {
			return Fill{Kind: RandomBytes}
		}
		return Fill{Kind: Scales, Exponent: mxfp4Exponent(fill.Std)}
	}
	return fill
}

func fillsFor(f *ir.Func) fills {
	out := fills{}
	var walk func(ops []*ir.Op)
	walk = func(ops []*ir.Op) {
		for _, op := range ops {
			if len(op.Body) > 0 {
				// A fused op's body names the weights where they are used.
				walk(op.Body)
				continue
			}
			for i, a := range op.Args {
				if a.W != nil {
					if _, seen := out[a.W]; !seen {
						out[a.W] = fillFor(op, i, a.W)
					}
				}
			}
		}
	}
	walk(f.Ops)
	return out
}

// smallStd is the spread of biases and other vectors added to activations.
const smallStd = 0.02

// fillFor picks the distribution of a weight from its use: operand i of
// op, whose role the op registry gives (ir.InputDef.Role).
func fillFor(op *ir.Op, i int, w *ir.Weight) Fill {
	switch ir.MustLookup(op.Kind).Inputs[i].Role {
	case ir.RoleMatrix:
		return Fill{Kind: Normal, Std: fanInStd(w)}
	case ir.RoleBias:
		return Fill{Kind: Normal, Std: smallStd}
	case ir.RoleScale:
		// The op scales by weight + offset (a norm's offset; 0 when the op
		// has none): keep that near 1.
		offset, _ := op.Attrs.Get("offset")
		off, _ := offset.(float64)
		return Fill{Kind: Normal, Mean: 1 - off, Std: smallStd}
	case ir.RoleLogits:
		// Sinks are logits that join the softmax: unit spread, like scores.
		return Fill{Kind: Normal, Std: 1}
	}
	return defaultFill(w)
}

func defaultFill(w *ir.Weight) Fill {
	if len(w.Shape) >= 2 {
		return Fill{Kind: Normal, Std: fanInStd(w)}
	}
	return Fill{Kind: Normal, Std: smallStd}
}

// fanInStd keeps a product with a unit-variance input at unit variance.
func fanInStd(w *ir.Weight) float64 {
	n := max(1, w.Shape.Last())
	return 1 / math.Sqrt(float64(n))
}

// fp4RMS is the root mean square of the 16 E2M1 values: sqrt(68.5/8).
const fp4RMS = 2.9261749776799064

// jitterRMS is the root mean square of the scale factor 2^j for the
// exponent jitter j in {-1, 0, +1}: sqrt((1/4 + 1 + 4) / 3).
const jitterRMS = 1.3228756555322954

// mxfp4Exponent is the central E8M0 byte e for which uniformly random
// E2M1 codes under the scales e-1, e and e+1 have a spread of std, to the
// nearest power of two: 2^(e-127) * fp4RMS * jitterRMS ≈ std.
func mxfp4Exponent(std float64) int {
	e := 127 + int(math.Round(math.Log2(std/(fp4RMS*jitterRMS))))
	return min(max(e, 2), 252) // keep e±1 and 6 * 2^(e+1-127) finite
}
