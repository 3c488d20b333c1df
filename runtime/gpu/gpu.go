// Package gpu runs a compiled program's dispatches on a Metal-like device:
// Metal itself on a Mac, or mslemu, which runs the same kernels.metal on
// the CPU with Metal's execution model. The device allocates the arena,
// the KV cache and the scratch region exactly as planned, binds weights as
// no-copy buffers over the checkpoint's files with each tensor's offset,
// and encodes one step's dispatches together with memory barriers only
// where a dispatch touches memory an earlier one in the step wrote.
package gpu

import (
	"fmt"
	"unsafe"

	"github.com/minerva-ml/minerva/internal/human"
	"github.com/minerva-ml/minerva/program"
	"github.com/minerva-ml/minerva/program/abi"
	"github.com/minerva-ml/minerva/runtime/engine"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// Buffer is device memory the host can see (unified memory).
type Buffer interface {
	Bytes() []byte
}

// DeviceMemory is a Buffer in memory the host cannot address (a discrete
// GPU's): Bytes is then a host copy, and the executor moves the tokens in
// and the logits out with Write and Read.
type DeviceMemory interface {
	Write(off int, p []byte) error
	Read(off int, p []byte) error
}

// Bind sets one kernel parameter: a buffer at an offset, or bytes.
type Bind struct {
	Index  int
	Buffer Buffer
	Offset int
	Bytes  []byte
}

// Launch is one dispatch.
type Launch struct {
	Kernel  string
	Groups  [3]int
	Threads [3]int
	Binds   []Bind
	TGMem   []int
	// Barrier asks for a memory barrier before this dispatch: it reads or
	// writes memory an earlier dispatch of the step wrote.
	Barrier bool
	// Label names the dispatch in errors: the op and its layer.
	Label string
}

// Device is what the executor needs of Metal or mslemu.
type Device interface {
	NewBuffer(size int) (Buffer, error)
	// FileBuffer wraps one checkpoint file without copying it.
	FileBuffer(f weights.MappedFile) (Buffer, error)
	// Run executes one step's launches in order. The executor reuses
	// them from step to step, so a device must not keep or change them.
	Run(launches []Launch) error
	Close() error
}

// replayMaxTokens is the largest call the executor replays (Replayer):
// decode and small batched steps, whose kernels are short enough that
// launching them is a visible share of the step (docs/gpu.md). A prompt
// chunk of hundreds of tokens runs kernels long enough for their launches
// to matter less (not measured), and recording one for every chunk size
// a server sees would hold a graph per size.
const replayMaxTokens = 64

// Replayer is a device that records a call size's launches once and
// replays the recording every step after (CUDA graphs): the executor's
// launches for a call size never change, only the bytes their step
// arguments point to, which the device must read anew at each replay.
type Replayer interface {
	// Replay runs launches as Run does; key names them (the call size),
	// and the same key always comes with the same launches.
	Replay(key int, launches []Launch) error
}

// Model is a program on a device. It implements engine.Backend.
type Model struct {
	prog    *program.Program
	dev     Device
	code    *program.Code
	kernels map[string]*program.Kernel
	arena   Buffer
	kv      Buffer
	files   []Buffer
	tensors map[string]tensorRef
	// launches holds each call size's launches, resolved once: a step
	// differs from the last of its size only in the step arguments, which
	// the launches bind by reference to args, rewritten every call.
	// Resolving them every step took about 3 us of host time a launch
	// (84 us for fortune's 26 on the project's VM, BenchmarkStepHost),
	// spent before the step's first kernel could start.
	launches map[int][]Launch
	args     []byte
	batch    int
	ctx      int
	vocab    int
	seqs     int
	tokens   []int32
	logits   []float32
	// inOff and outOff locate the tokens and the logits in the arena.
	inOff, outOff int
}

type tensorRef struct {
	buf    Buffer
	offset int
}

// Load binds a program (its Code included) to a device and a checkpoint
// that Program.Validate accepted, with a KV cache of one sequence.
func Load(p *program.Program, ck *weights.Checkpoint, dev Device) (*Model, error) {
	return LoadSequences(p, ck, dev, 1)
}

// LoadSequences is Load with a KV cache of seqs sequences, each its own
// copy of the planned cache, for batched steps (engine.BatchBackend).
func LoadSequences(p *program.Program, ck *weights.Checkpoint, dev Device, seqs int) (*Model, error) {
	out := p.Code
	if out == nil {
		return nil, fmt.Errorf("BUG: gpu.Load needs a program with its Code (kernels and dispatches); it was compiled without codegen")
	}
	seqs = max(seqs, 1)
	if seqs > 1 && p.Arena.Batch > abi.MaxStepTokens {
		return nil, fmt.Errorf("a batched step passes at most %d tokens to the kernels, but the program's batch is %d; use --batch %d or less with several sequences", abi.MaxStepTokens, p.Arena.Batch, abi.MaxStepTokens)
	}
	if seqs > 1 && p.KV.Bytes >= 1<<32 {
		return nil, fmt.Errorf("one sequence's KV cache is %s, over the 4 GiB the kernels address per sequence in a batched step; use a smaller --ctx or --kv format with several sequences", human.Bytes(p.KV.Bytes))
	}
	if err := p.StackWeights(ck); err != nil {
		return nil, err
	}
	m := &Model{prog: p, dev: dev, code: out, kernels: map[string]*program.Kernel{}, tensors: map[string]tensorRef{},
		launches: map[int][]Launch{}, args: abi.StepArgs{}.Bytes(),
		batch: int(p.Arena.Batch), ctx: int(p.KV.Ctx), vocab: p.Vocab(), seqs: seqs}
	for _, k := range out.Kernels {
		m.kernels[k.Name] = k
	}
	var err error
	if m.arena, err = dev.NewBuffer(int(program.ArenaBufferBytes(p.Arena, out.Dispatches))); err != nil {
		return nil, err
	}
	if m.kv, err = dev.NewBuffer(int(max(int64(seqs)*p.KV.Bytes, 256))); err != nil {
		return nil, err
	}
	// A device that copies weights gives each tensor an aligned
	// allocation of its own; the file's offsets matter only without it.
	if _, copies := dev.(tensorCopier); !copies {
		if err := checkAlignment(out, ck); err != nil {
			return nil, err
		}
	}
	tensors, files, err := Tensors(dev, ck)
	if err != nil {
		return nil, err
	}
	m.files = files
	for name, t := range tensors {
		m.tensors[name] = tensorRef{t.Buffer, t.Offset}
	}
	in := p.Arena.Slots[p.Func.Input.ID]
	o := p.Arena.Slots[p.Func.Output.ID]
	m.inOff, m.outOff = int(in.Offset), int(o.Offset)
	if _, ok := m.arena.(DeviceMemory); ok {
		m.tokens = make([]int32, m.batch)
		m.logits = make([]float32, int(o.Bytes/4))
		return m, nil
	}
	m.tokens = unsafe.Slice((*int32)(unsafe.Pointer(&m.arena.Bytes()[in.Offset])), m.batch)
	m.logits = unsafe.Slice((*float32)(unsafe.Pointer(&m.arena.Bytes()[o.Offset])), int(o.Bytes/4))
	return m, nil
}

// Batch, Ctx and Vocab implement engine.Backend.
func (m *Model) Batch() int { return m.batch }
func (m *Model) Ctx() int   { return m.ctx }
func (m *Model) Vocab() int { return m.vocab }

// Rings implements engine.Backend: the sliding-window layers whose plan
// keeps a ring of window + batch - 1 positions instead of the context.
func (m *Model) Rings() []engine.Ring {
	return engine.RingsOf(m.prog.KV)
}

// Close releases the device.
func (m *Model) Close() { m.dev.Close() }

// Sequences implements engine.BatchBackend.
func (m *Model) Sequences() int { return m.seqs }

// Forward runs one call of the program on sequence 0.
func (m *Model) Forward(tokens []int32, pos int) ([]float32, error) {
	if err := m.prog.CheckCall(tokens, pos); err != nil {
		return nil, err
	}
	return m.run(tokens, abi.StepArgs{Seq: uint32(len(tokens)), Pos: uint32(pos)})
}

// Step implements engine.BatchBackend: the kernels read each token's
// sequence and position from StepArgs.
func (m *Model) Step(tokens []engine.Token) ([]float32, error) {
	if err := engine.CheckStep(tokens, m.batch, m.ctx, m.vocab, m.seqs); err != nil {
		return nil, err
	}
	args := abi.StepArgs{Seq: uint32(len(tokens)), Pos: uint32(tokens[0].Pos), Batched: 1, SeqBytes: uint32(m.prog.KV.Bytes)}
	ids := make([]int32, len(tokens))
	for i, t := range tokens {
		ids[i] = t.ID
		args.Tok[2*i], args.Tok[2*i+1] = uint32(t.Seq), uint32(t.Pos)
	}
	return m.run(ids, args)
}

func (m *Model) run(tokens []int32, a abi.StepArgs) ([]float32, error) {
	n := len(tokens)
	copy(m.tokens, tokens)
	copy(m.args, a.Bytes())
	ls, ok := m.launches[n]
	if !ok {
		for _, l := range program.Launches(m.code.Dispatches, m.prog.Arena, m.prog.KV, n) {
			ls = append(ls, m.launch(l, n, m.args))
		}
		m.launches[n] = ls
	}
	dm, discrete := m.arena.(DeviceMemory)
	if discrete {
		if err := dm.Write(m.inOff, unsafe.Slice((*byte)(unsafe.Pointer(&m.tokens[0])), 4*n)); err != nil {
			return nil, err
		}
	}
	var err error
	if r, ok := m.dev.(Replayer); ok && n <= replayMaxTokens {
		err = r.Replay(n, ls)
	} else {
		err = m.dev.Run(ls)
	}
	if err != nil {
		return nil, err
	}
	if discrete {
		if err := dm.Read(m.outOff, unsafe.Slice((*byte)(unsafe.Pointer(&m.logits[0])), 4*n*m.vocab)); err != nil {
			return nil, err
		}
	}
	return m.logits[:n*m.vocab], nil
}

// Arena, KVBuffer and RunOp let tests compare backends op by op.
func (m *Model) Arena() []byte { return m.arena.Bytes() }

// KVBuffer is the KV cache's memory.
func (m *Model) KVBuffer() []byte { return m.kv.Bytes() }

// RunOp runs op i alone on seq tokens at position pos: its kernel and
// stages, with the barriers between them.
func (m *Model) RunOp(i, seq, pos int) error {
	args := abi.StepArgs{Seq: uint32(seq), Pos: uint32(pos)}.Bytes()
	var ls []Launch
	for _, l := range program.Launches(m.code.Dispatches[i:i+1], m.prog.Arena, m.prog.KV, seq) {
		ls = append(ls, m.launch(l, seq, args))
	}
	return m.dev.Run(ls)
}

// launch resolves one launch of a step of seq tokens.
func (m *Model) launch(pl program.Launch, seq int, args []byte) Launch {
	d, k := pl.Dispatch, m.kernels[pl.Kernel]
	l := Launch{Kernel: pl.Kernel, Groups: pl.Grid.Eval(seq), Threads: k.Threads, TGMem: k.TGMem, Barrier: pl.Barrier,
		Label: fmt.Sprintf("op %d (%s, layer %d)", d.Op, d.Kind, d.Layer)}
	for _, b := range pl.Bindings {
		l.Binds = append(l.Binds, m.bind(b, args))
	}
	return l
}

// bind resolves one binding.
func (m *Model) bind(b program.Binding, args []byte) Bind {
	switch b.Kind {
	case program.BindArgs:
		return Bind{Index: b.Index, Bytes: args}
	case program.BindValue:
		return Bind{Index: b.Index, Buffer: m.arena, Offset: int(m.prog.Arena.Slots[b.Value].Offset)}
	case program.BindScratch:
		return Bind{Index: b.Index, Buffer: m.arena, Offset: int(program.ScratchBase(m.prog.Arena))}
	case program.BindWeight:
		t := m.tensors[b.Tensor]
		return Bind{Index: b.Index, Buffer: t.buf, Offset: t.offset}
	case program.BindKV:
		l := m.prog.KV.Layer(b.Cache)
		off := l.KOffset
		if b.Part == "v" {
			off = l.VOffset
		}
		return Bind{Index: b.Index, Buffer: m.kv, Offset: int(off)}
	}
	panic("BUG: unknown binding kind " + string(b.Kind))
}

// Tensor is a checkpoint tensor on a device: its file's buffer and its
// offset in that file.
type Tensor struct {
	Buffer Buffer
	Offset int
}

// tensorCopier is a device that copies weights into memory of its own
// (CUDA): it takes each tensor into a buffer of its own, which aligns
// every tensor, rather than whole files.
type tensorCopier interface {
	TensorBuffer(t *weights.Tensor) (Buffer, error)
}

// Tensors binds every tensor of a checkpoint to the device: one no-copy
// buffer per file, or one buffer per tensor on a device that copies.
func Tensors(dev Device, ck *weights.Checkpoint) (map[string]Tensor, []Buffer, error) {
	if tc, ok := dev.(tensorCopier); ok {
		out := map[string]Tensor{}
		var bufs []Buffer
		for _, name := range ck.Names() {
			t, _ := ck.Tensor(name)
			b, err := tc.TensorBuffer(t)
			if err != nil {
				return nil, nil, err
			}
			bufs = append(bufs, b)
			out[name] = Tensor{b, 0}
		}
		return out, bufs, nil
	}
	var files []Buffer
	for _, f := range ck.Files() {
		b, err := dev.FileBuffer(f)
		if err != nil {
			return nil, nil, fmt.Errorf("binding %s: %w", f.Path, err)
		}
		files = append(files, b)
	}
	out := map[string]Tensor{}
	for _, name := range ck.Names() {
		t, _ := ck.Tensor(name)
		out[name] = Tensor{files[t.File], int(t.Offset)}
	}
	return out, files, nil
}

// checkAlignment refuses a checkpoint whose dense weights do not start on
// a multiple of their element's size: on a GPU a misaligned load is
// undefined. This names a damaged or unusual file.
func checkAlignment(out *program.Code, ck *weights.Checkpoint) error {
	seen := map[string]bool{}
	for _, d := range out.Dispatches {
		bindings := d.Bindings
		for _, s := range d.Then {
			bindings = append(bindings[:len(bindings):len(bindings)], s.Bindings...)
		}
		for _, b := range bindings {
			if b.Kind != program.BindWeight || seen[b.Tensor] {
				continue
			}
			seen[b.Tensor] = true
			t, ok := ck.Tensor(b.Tensor)
			if !ok {
				continue
			}
			align := int64(1)
			if t.DType == weights.U8 {
				// MXFP4 blocks (16 bytes each) are read as 8-byte words.
				if len(t.Shape) > 0 && t.Shape[len(t.Shape)-1] == 16 {
					align = 8
				}
			} else {
				align = int64(program.VectorAlignment(t.DType.String()))
			}
			if t.Offset%align != 0 {
				return fmt.Errorf("checkpoint tensor %s starts at byte %d of its file, not a multiple of %d, which the GPU kernels need; use --backend cpu, or rewrite the checkpoint with aligned tensors", b.Tensor, t.Offset, align)
			}
		}
	}
	return nil
}
