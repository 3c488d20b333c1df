// Package cpu is Minerva's CPU backend. It executes a compiled program
// against a memory-mapped checkpoint on every core: on Linux it is what
// users run, and everywhere it is the reference the Metal path is checked
// against.
//
// The backend follows the program exactly: it allocates the arena and the
// KV cache the plans describe and nothing else, binds weights as views of
// the mapping (MXFP4 experts stay packed and are decoded as they are read),
// and runs one kernel per op. Kernels are prepared when the model is
// loaded, so a decode step allocates nothing.
//
// The inner loops (dot.go) are Go, which is their definition; on amd64
// with AVX2 or AVX-512 assembly versions replace them at start-up
// (dot_amd64.s, dot_decode_amd64.s), tested against the Go ones.
// Decoding a token is bound by reading the weights from memory, so the
// kernels read each weight byte once, straight from the mapping.
package cpu

import (
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"sync"
	"time"
	"unsafe"

	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/compiler/plan"
	"github.com/minerva-ml/minerva/internal/human"
	"github.com/minerva-ml/minerva/program"
	"github.com/minerva-ml/minerva/runtime/engine"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// Options tune a model.
type Options struct {
	// Workers is the number of threads; 0 means GOMAXPROCS.
	Workers int
	// Sequences is how many sequences the KV cache holds at once, each in
	// its own copy of the planned cache; 0 means 1. Step runs tokens of
	// several of them in one call.
	Sequences int
	// Observe, when set, is called after every op with its results (the
	// first seq rows of each). Fused ops then run as their bodies, so every
	// value of the unfused program is observed too. For tests and tools.
	Observe func(op *ir.Op, results [][]float32)
	// Spin is how long an idle thread polls for the model's next
	// parallel loop before it sleeps: 0 means 50 µs, negative means it
	// sleeps at once. Polling keeps the threads of a step working
	// together (a wake-up costs more than a small model's loop); sleeping
	// at once suits a machine whose cores are all busy with other work.
	Spin time.Duration
}

// MaxWorkers is the most threads a model may use: four per core. More
// only add per-thread scratch (a few MB each on gpt-oss) and contention.
func MaxWorkers() int { return 4 * runtime.NumCPU() }

// CheckWorkers refuses a thread count outside 0 (all cores) to
// MaxWorkers; flag names the setting in the message.
func CheckWorkers(flag string, n int) error {
	if n < 0 || n > MaxWorkers() {
		return fmt.Errorf("%s %d: use 0 (all cores) to %d (4 per core on this machine of %d)", flag, n, MaxWorkers(), runtime.NumCPU())
	}
	return nil
}

// Model is a program bound to its weights and buffers.
type Model struct {
	prog    *program.Program
	ck      *weights.Checkpoint // for FaultError
	arena   []float32
	kv      []byte
	steps   []step
	pool    *pool
	weights map[*ir.Weight]*weight
	caches  map[int]*kvLayer
	input   buf
	output  buf
	batch   int
	ctx     int
	vocab   int
	seqs    int
	// tokSeq and tokPos are the sequence and position of each token of
	// the current call: the kernels that depend on them (RoPE, the cache
	// write, attention) read them here.
	tokSeq, tokPos []int32
	// tokLast is the largest position of the current call.
	tokLast int32
	// stepIDs holds a step's token ids.
	stepIDs []int32
	observe func(op *ir.Op, results [][]float32)
	// scratch is per-worker float space for kernels (a decoded weight
	// row, attention scores), sized at load: the kernels' registers.
	scratch [][]float32
	// views is per-worker room for the token groups' chunks that
	// rowsBF16 hands its kernel.
	views []chunkViews
	// bodyScratch is the plan's scratch region for values inside fused
	// ops; scratchUsed is the part the fused op being built has taken.
	bodyScratch []float32
	scratchUsed int
	// prep holds the current op's inputs as weight.prepare reorders them
	// for MXFP4 rows; ops run one at a time and share it.
	prep []float32
	// pairLists are the MoE ops' per-expert lists (expertPairs), one set
	// per (experts, routes per token): every MoE op refills them before
	// it runs and ops run one at a time, so they share. A set per op
	// cost the 20b's load ~25 MB of fresh pages (48 ops × 32 experts).
	pairLists map[[2]int]*pairLists
	// mapped lists the memory from mapZeroed, which Close returns.
	mapped    [][]byte
	closeOnce sync.Once
}

// buf is an activation: seq rows of row floats, inside the arena (or a
// fused body's scratch). Integers (token ids, route indices) are stored as
// their bit patterns.
type buf struct {
	data []float32
	row  int
}

func (b buf) rows(seq int) []float32 { return b.data[:seq*b.row] }

type step struct {
	op  *ir.Op
	run func(seq, pos int)
	out []buf
}

// Load binds a program to a checkpoint that Program.Validate accepted.
func Load(p *program.Program, ck *weights.Checkpoint, opts Options) (*Model, error) {
	if err := CheckWorkers("cpu.Options.Workers", opts.Workers); err != nil {
		return nil, err
	}
	if err := checkSizes(p); err != nil {
		return nil, err
	}
	m := &Model{
		prog:    p,
		ck:      ck,
		pool:    newPool(opts.Workers, opts.Spin),
		weights: map[*ir.Weight]*weight{},
		caches:  map[int]*kvLayer{},
		batch:   int(p.Arena.Batch),
		ctx:     int(p.KV.Ctx),
		vocab:   p.Vocab(),
		observe: opts.Observe,
		seqs:    max(opts.Sequences, 1),
	}
	m.tokSeq = make([]int32, m.batch)
	m.tokPos = make([]int32, m.batch)
	var err error
	m.arena, err = m.mapFloats(int(p.Arena.Bytes / 4))
	if err == nil {
		// The plan aligns each body value to 256 bytes; the kernels align
		// to 64 floats, which is the same.
		m.bodyScratch, err = m.mapFloats(int(p.Arena.Scratch / 4))
	}
	if err == nil {
		m.kv, err = m.mapBytes(m.seqs * int(p.KV.Bytes))
	}
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("cannot allocate the activations (%s at --batch %d) and the KV cache of %d sequences (%s at --ctx %d): %w; use a smaller --ctx or --batch, or a smaller --kv format",
			human.Bytes(p.Arena.Bytes+p.Arena.Scratch), p.Arena.Batch, m.seqs, human.Bytes(int64(m.seqs)*p.KV.Bytes), p.KV.Ctx, err)
	}
	for _, w := range p.Func.Weights {
		bw, err := bindWeight(w, ck)
		if err != nil {
			m.Close()
			return nil, err
		}
		m.weights[w] = bw
	}
	for _, l := range p.KV.Layers {
		m.caches[l.Cache] = newKVLayer(l, p.KV.Format, m.kv, m.seqs, p.KV.Bytes)
	}
	m.scratch = make([][]float32, m.pool.workers)
	m.views = make([]chunkViews, m.pool.workers)
	val := func(v *ir.Value) buf { return m.arenaBuf(v) }
	m.input = val(p.Func.Input)
	m.output = val(p.Func.Output)
	for _, op := range p.Func.Ops {
		s, err := m.buildStep(op, val)
		if err != nil {
			m.Close()
			return nil, err
		}
		m.steps = append(m.steps, s)
	}
	return m, nil
}

// checkSizes refuses plans whose sizes no allocation can meet: the
// compiler bounds them, but a program can also come from an edited
// artifact.
func checkSizes(p *program.Program) error {
	for _, s := range []struct {
		name string
		n    int64
	}{{"arena.Bytes", p.Arena.Bytes}, {"arena.Scratch", p.Arena.Scratch}, {"kv.Bytes", p.KV.Bytes}} {
		if s.n < 0 || s.n > plan.MaxBytes {
			return fmt.Errorf("the plan's %s is %d, outside 0..%d; recompile with minervac compile", s.name, s.n, int64(plan.MaxBytes))
		}
	}
	return nil
}

func (m *Model) arenaBuf(v *ir.Value) buf {
	s, ok := m.prog.Arena.Slots[v.ID]
	if !ok {
		panic(fmt.Sprintf("BUG: value %%%d has no arena slot", v.ID))
	}
	off := int(s.Offset / 4)
	return buf{data: m.arena[off : off+int(s.Bytes/4)], row: int(s.RowBytes / 4)}
}

// needScratch makes sure every worker has n floats of scratch.
func (m *Model) needScratch(n int) {
	for i := range m.scratch {
		if len(m.scratch[i]) < n {
			m.scratch[i] = make([]float32, n)
		}
	}
}

// needPrep makes sure prep holds n floats.
func (m *Model) needPrep(n int) {
	if len(m.prep) < n {
		m.prep = make([]float32, n)
	}
}

// Batch is the most tokens one Forward call takes.
func (m *Model) Batch() int { return m.batch }

// Ctx is the number of positions the KV cache holds.
func (m *Model) Ctx() int { return m.ctx }

// Vocab is the width of the logits.
func (m *Model) Vocab() int { return m.vocab }

// Rings implements engine.Backend: the sliding-window layers whose plan
// keeps a ring of window + batch - 1 positions instead of the context.
func (m *Model) Rings() []engine.Ring {
	return engine.RingsOf(m.prog.KV)
}

// Sequences is how many sequences the KV cache holds.
func (m *Model) Sequences() int { return m.seqs }

// Forward runs the program on tokens at positions pos, pos+1, ... of
// sequence 0 and returns the logits, one row of Vocab per token. The slice
// is valid until the next call. Tokens at positions before pos must have
// been run already: their keys and values are in the cache.
//
// If the checkpoint file is cut short while mapped, reading it faults:
// Forward then returns an error matching weights.ErrChanged, and the
// cache and the arena hold garbage; the model must be loaded again.
func (m *Model) Forward(tokens []int32, pos int) (logits []float32, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer m.recoverFault(&logits, &err)
	if err := m.prog.CheckCall(tokens, pos); err != nil {
		return nil, err
	}
	m.setConsecutive(len(tokens), pos)
	return m.run(tokens), nil
}

// Step implements engine.BatchBackend: one call over tokens of several
// sequences, each at its own position; logits come in the tokens' order.
// A fault reading the checkpoint is an error, as in Forward.
func (m *Model) Step(tokens []engine.Token) (logits []float32, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer m.recoverFault(&logits, &err)
	if err := engine.CheckStep(tokens, m.batch, m.ctx, m.vocab, m.seqs); err != nil {
		return nil, err
	}
	if cap(m.stepIDs) < m.batch {
		m.stepIDs = make([]int32, m.batch)
	}
	ids := m.stepIDs[:len(tokens)]
	m.tokLast = 0
	for i, t := range tokens {
		ids[i] = t.ID
		m.tokSeq[i], m.tokPos[i] = int32(t.Seq), int32(t.Pos)
		m.tokLast = max(m.tokLast, int32(t.Pos))
	}
	return m.run(ids), nil
}

// recoverFault, deferred, turns a fault reading the mapped checkpoint
// into an error matching weights.ErrChanged; other panics go on.
func (m *Model) recoverFault(logits *[]float32, err *error) {
	if r := recover(); r != nil {
		if *err = m.ck.FaultError(r); *err == nil {
			panic(r)
		}
		*logits = nil
	}
}

// setConsecutive makes the call n tokens of sequence 0 from pos.
func (m *Model) setConsecutive(n, pos int) {
	for t := range n {
		m.tokSeq[t], m.tokPos[t] = 0, int32(pos+t)
	}
	m.tokLast = int32(pos + n - 1)
}

func (m *Model) run(tokens []int32) []float32 {
	n := len(tokens)
	pos := int(m.tokPos[0])
	in := m.input.rows(n)
	for i, t := range tokens {
		in[i] = math.Float32frombits(uint32(t))
	}
	for _, s := range m.steps {
		s.run(n, pos)
		if m.observe != nil {
			res := make([][]float32, len(s.out))
			for i, b := range s.out {
				res[i] = b.rows(n)
			}
			m.observe(s.op, res)
		}
	}
	return m.output.rows(n)
}

// mapBytes takes n zeroed bytes from mapZeroed; Close returns them.
func (m *Model) mapBytes(n int) ([]byte, error) {
	b, err := mapZeroed(n)
	if err != nil {
		return nil, err
	}
	m.mapped = append(m.mapped, b)
	return b, nil
}

func (m *Model) mapFloats(n int) ([]float32, error) {
	b, err := m.mapBytes(4 * n)
	if err != nil || n == 0 {
		return nil, err
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n), nil
}

// Close stops the workers and frees the activations and the KV cache:
// logits that Forward returned are invalid afterwards. The checkpoint stays
// open; its owner closes it.
func (m *Model) Close() {
	m.pool.close()
	m.closeOnce.Do(func() {
		for _, b := range m.mapped {
			unmapZeroed(b)
		}
		m.mapped, m.arena, m.bodyScratch, m.kv = nil, nil, nil, nil
	})
}

// buildStep prepares one op. Fused ops run their specialised kernel when
// one exists, or else their body op by op, which is their definition.
func (m *Model) buildStep(op *ir.Op, val func(*ir.Value) buf) (step, error) {
	s := step{op: op}
	for _, r := range op.Results {
		s.out = append(s.out, val(r))
	}
	def, _ := ir.Lookup(op.Kind)
	m.scratchUsed = 0
	if def.Fused {
		if m.observe == nil {
			if run, ok := m.fusedKernel(op, val); ok {
				s.run = run
				return s, nil
			}
		}
		run, err := m.bodyKernel(op, val)
		s.run = run
		return s, err
	}
	run, err := m.kernel(op, val)
	s.run = run
	return s, err
}

// bodyKernel runs a fused op's body: parameters are the op's operands,
// yielded values are its results, and the rest live in scratch.
func (m *Model) bodyKernel(op *ir.Op, outer func(*ir.Value) buf) (func(seq, pos int), error) {
	yield := map[*ir.Value]buf{}
	for i, y := range op.Yield {
		yield[y] = outer(op.Results[i])
	}
	val := func(v *ir.Value) buf {
		if v.Param >= 0 {
			return outer(op.Args[v.Param].V)
		}
		if b, ok := yield[v]; ok {
			return b
		}
		return m.scratchBuf(int(v.Type.RowBytes() / 4))
	}
	bound := map[*ir.Value]buf{}
	memo := func(v *ir.Value) buf {
		if b, ok := bound[v]; ok {
			return b
		}
		b := val(v)
		bound[v] = b
		return b
	}
	var runs []func(seq, pos int)
	var outs [][]buf
	for _, b := range op.Body {
		run, err := m.kernel(b, memo)
		if err != nil {
			return nil, err
		}
		runs = append(runs, run)
		var o []buf
		for _, r := range b.Results {
			o = append(o, memo(r))
		}
		outs = append(outs, o)
	}
	body := op.Body
	return func(seq, pos int) {
		for i, r := range runs {
			r(seq, pos)
			if m.observe != nil {
				res := make([][]float32, len(outs[i]))
				for j, b := range outs[i] {
					res[j] = b.rows(seq)
				}
				m.observe(body[i], res)
			}
		}
	}, nil
}

// Arena, KVBuffer and RunOp let tests compare backends op by op: set an
// op's inputs in the arena, run it alone, read its outputs.
func (m *Model) Arena() []float32 { return m.arena }

// KVBuffer is the KV cache's memory.
func (m *Model) KVBuffer() []byte { return m.kv }

// RunOp runs op i alone on seq tokens of sequence 0 at position pos.
func (m *Model) RunOp(i, seq, pos int) {
	m.setConsecutive(seq, pos)
	m.steps[i].run(seq, pos)
}
