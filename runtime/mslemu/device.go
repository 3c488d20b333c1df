package mslemu

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

// Request opcodes of the driver protocol (see doc.go).
const (
	opMap      = 1
	opUnmap    = 2
	opDispatch = 3

	protocolVersion = 1
)

// Metal's limits, checked before a request is sent.
const (
	maxThreadgroupMemory = 32768
	maxInlineBytes       = 4096
)

// Options tune a driver process.
type Options struct {
	// StackKiB is each kernel thread's stack; 0 means 256 KiB.
	StackKiB int
	// Workers is the number of OS threads running threadgroups; 0 means
	// one per CPU.
	Workers int
	// DispatchTimeout bounds one Dispatch; a kernel still running then is
	// taken to loop forever and the driver is stopped. 0 means 5 minutes.
	DispatchTimeout time.Duration
}

// Device is a running driver process.
type Device struct {
	mu      sync.Mutex
	cmd     *exec.Cmd
	req     *os.File // the driver's stdin
	resp    *os.File // replies (the driver's fd 3)
	respBuf *bufio.Reader
	exited  chan struct{}
	output  *tailBuffer
	kernels map[string]kernelEntry
	buffers map[uint32]*Buffer
	nextID  uint32
	timeout time.Duration
	broken  error // set when the driver can no longer be used
	msg     []byte
}

type kernelEntry struct {
	index      uint32
	maxThreads int
}

// Start runs the driver executable that Build returned.
func Start(exe string) (*Device, error) { return StartWithOptions(exe, Options{}) }

// StartWithOptions runs the driver executable with the given options.
func StartWithOptions(exe string, opt Options) (*Device, error) {
	if opt.StackKiB < 0 || opt.Workers < 0 || opt.DispatchTimeout < 0 {
		return nil, fmt.Errorf("mslemu: negative option in %+v", opt)
	}
	args := []string{"-reply-fd", "3"}
	if opt.StackKiB > 0 {
		args = append(args, "-stack-kib", strconv.Itoa(opt.StackKiB))
	}
	if opt.Workers > 0 {
		args = append(args, "-workers", strconv.Itoa(opt.Workers))
	}
	respR, respW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("mslemu: %w", err)
	}
	reqR, reqW, err := os.Pipe()
	if err != nil {
		respR.Close()
		respW.Close()
		return nil, fmt.Errorf("mslemu: %w", err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdin = reqR
	cmd.ExtraFiles = []*os.File{respW}
	out := &tailBuffer{max: 16 << 10}
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		respR.Close()
		respW.Close()
		reqR.Close()
		reqW.Close()
		return nil, fmt.Errorf("mslemu: starting the driver: %w", err)
	}
	reqR.Close()
	respW.Close()
	d := &Device{
		cmd:     cmd,
		req:     reqW,
		resp:    respR,
		respBuf: bufio.NewReaderSize(respR, 4096),
		exited:  make(chan struct{}),
		output:  out,
		kernels: map[string]kernelEntry{},
		buffers: map[uint32]*Buffer{},
		timeout: opt.DispatchTimeout,
	}
	if d.timeout == 0 {
		d.timeout = 5 * time.Minute
	}
	go func() {
		cmd.Wait()
		close(d.exited)
	}()
	if err := d.readHello(); err != nil {
		d.kill()
		return nil, err
	}
	return d, nil
}

func (d *Device) readHello() error {
	d.resp.SetReadDeadline(time.Now().Add(30 * time.Second))
	defer d.resp.SetReadDeadline(time.Time{})
	var n uint32
	if err := binary.Read(d.respBuf, binary.LittleEndian, &n); err != nil {
		return d.deadErr("reading the driver's greeting", err)
	}
	if n > 1<<20 {
		return fmt.Errorf("mslemu: the driver's greeting claims %d bytes; is this an mslemu driver?", n)
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(d.respBuf, msg); err != nil {
		return d.deadErr("reading the driver's greeting", err)
	}
	kernels, err := parseHello(msg)
	if err != nil {
		return err
	}
	for i, k := range kernels {
		d.kernels[k.name] = kernelEntry{index: uint32(i), maxThreads: k.maxThreads}
	}
	return nil
}

type helloKernel struct {
	name       string
	maxThreads int
}

// parseHello decodes the driver's greeting: "MSLEMU", u32 version, u32
// kernel count, then per kernel u32 max threads, u16 name length, name.
func parseHello(msg []byte) ([]helloKernel, error) {
	bad := errors.New("mslemu: malformed greeting from the driver; is this an mslemu driver?")
	if len(msg) < 14 || string(msg[:6]) != "MSLEMU" {
		return nil, bad
	}
	if v := binary.LittleEndian.Uint32(msg[6:]); v != protocolVersion {
		return nil, fmt.Errorf("mslemu: the driver speaks protocol %d, this package %d; rebuild it with Build", v, protocolVersion)
	}
	count := binary.LittleEndian.Uint32(msg[10:])
	p := msg[14:]
	if uint64(count) > uint64(len(p))/6 {
		return nil, bad
	}
	kernels := make([]helloKernel, 0, count)
	for i := uint32(0); i < count; i++ {
		if len(p) < 6 {
			return nil, bad
		}
		maxThreads := binary.LittleEndian.Uint32(p)
		nl := int(binary.LittleEndian.Uint16(p[4:]))
		p = p[6:]
		if len(p) < nl || maxThreads == 0 || maxThreads > maxThreadsPerThreadgroup {
			return nil, bad
		}
		kernels = append(kernels, helloKernel{name: string(p[:nl]), maxThreads: int(maxThreads)})
		p = p[nl:]
	}
	if len(p) != 0 {
		return nil, bad
	}
	return kernels, nil
}

// Kernels returns the names of the kernels the driver can dispatch.
func (d *Device) Kernels() []string { return sortedKeys(d.kernels) }

// Buffer is memory shared by the Go process and the driver: what Go writes
// to Bytes the kernels read, and the other way round.
type Buffer struct {
	dev      *Device
	id       uint32
	mapping  []byte
	data     []byte
	readOnly bool
	released bool
}

// Bytes returns the buffer's memory. The slice of a buffer from MapFile is
// mapped read-only: writing to it crashes the process.
func (b *Buffer) Bytes() []byte { return b.data }

// Len returns the buffer's length in bytes.
func (b *Buffer) Len() int { return len(b.data) }

// shmDir is where buffer files are created: /dev/shm keeps them in memory.
func shmDir() string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		return "/dev/shm"
	}
	return os.TempDir()
}

// NewBuffer allocates a zeroed shared buffer of size bytes. The driver maps
// it so that its end (rounded up to 16 bytes) touches an inaccessible page:
// a kernel reading or writing past the end is reported.
func (d *Device) NewBuffer(size int) (*Buffer, error) {
	if size <= 0 {
		return nil, fmt.Errorf("mslemu: NewBuffer(%d): the size must be positive", size)
	}
	page := os.Getpagesize()
	aligned := (size + 15) &^ 15
	mapLen := (aligned + page - 1) / page * page
	pad := mapLen - aligned
	f, err := os.CreateTemp(shmDir(), "mslemu-buf-")
	if err != nil {
		return nil, fmt.Errorf("mslemu: creating a buffer file: %w", err)
	}
	path := f.Name()
	defer os.Remove(path) // both sides keep their mappings
	defer f.Close()
	if err := f.Truncate(int64(mapLen)); err != nil {
		return nil, fmt.Errorf("mslemu: sizing a %d-byte buffer: %w", size, err)
	}
	m, err := mapShared(f, mapLen, true)
	if err != nil {
		return nil, fmt.Errorf("mslemu: mapping a %d-byte buffer: %w", size, err)
	}
	b := &Buffer{dev: d, mapping: m, data: m[pad : pad+size : pad+size]}
	if err := d.mapInDriver(b, path, true, uint64(pad), uint64(size)); err != nil {
		unmap(m)
		return nil, err
	}
	return b, nil
}

// MapFile maps an existing file read-only, in the driver and in Go, without
// copying it (checkpoint weights).
func (d *Device) MapFile(path string) (*Buffer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("mslemu: MapFile: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("mslemu: MapFile: %w", err)
	}
	if !st.Mode().IsRegular() || st.Size() == 0 {
		return nil, fmt.Errorf("mslemu: MapFile %s: not a non-empty regular file", path)
	}
	if st.Size() > int64(^uint(0)>>1) {
		return nil, fmt.Errorf("mslemu: MapFile %s: too large to map", path)
	}
	size := int(st.Size())
	m, err := mapShared(f, size, false)
	if err != nil {
		return nil, fmt.Errorf("mslemu: MapFile %s: %w", path, err)
	}
	b := &Buffer{dev: d, mapping: m, data: m[:size:size], readOnly: true}
	if err := d.mapInDriver(b, path, false, 0, uint64(size)); err != nil {
		unmap(m)
		return nil, err
	}
	return b, nil
}

func (d *Device) mapInDriver(b *Buffer, path string, writable bool, pad, size uint64) error {
	if len(path) > 0xffff {
		return fmt.Errorf("mslemu: path too long: %s", path)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.nextID++
	b.id = d.nextID
	msg := d.begin(opMap)
	msg = binary.LittleEndian.AppendUint32(msg, b.id)
	msg = append(msg, boolByte(writable))
	msg = binary.LittleEndian.AppendUint64(msg, pad)
	msg = binary.LittleEndian.AppendUint64(msg, size)
	msg = binary.LittleEndian.AppendUint16(msg, uint16(len(path)))
	msg = append(msg, path...)
	if err := d.roundTrip(msg, "mapping a buffer"); err != nil {
		return err
	}
	d.buffers[b.id] = b
	return nil
}

// Release unmaps the buffer in the driver and in Go. Bytes must not be used
// afterwards.
func (b *Buffer) Release() error {
	d := b.dev
	d.mu.Lock()
	defer d.mu.Unlock()
	if b.released {
		return nil
	}
	b.released = true
	delete(d.buffers, b.id)
	var err error
	if d.broken == nil {
		msg := d.begin(opUnmap)
		msg = binary.LittleEndian.AppendUint32(msg, b.id)
		err = d.roundTrip(msg, "releasing a buffer")
	}
	unmap(b.mapping)
	b.mapping, b.data = nil, nil
	return err
}

// Dispatch is one compute dispatch, as a compute command encoder would
// encode it.
type Dispatch struct {
	Kernel string
	// Threadgroups is the grid in threadgroups (dispatchThreadgroups).
	// Threads is the grid in threads (dispatchThreads): threadgroups at the
	// far edges are then cut to the grid. Set exactly one of the two;
	// unused dimensions are 1, not 0.
	Threadgroups          [3]int
	Threads               [3]int
	ThreadsPerThreadgroup [3]int
	Buffers               []Binding
	ThreadgroupMemory     []ThreadgroupMemory
	// Seed drives the order in which threads run; the same seed gives the
	// same order.
	Seed uint64
}

// Binding sets [[buffer(Index)]]: either Buffer at byte Offset
// (setBuffer) or a copy of Bytes (setBytes, at most 4 KiB).
type Binding struct {
	Index  int
	Buffer *Buffer
	Offset int
	Bytes  []byte
}

// ThreadgroupMemory sets the length of [[threadgroup(Index)]]
// (setThreadgroupMemoryLength): a positive multiple of 16 bytes.
type ThreadgroupMemory struct {
	Index  int
	Length int
}

// Dispatch runs d to completion. A kernel error (barrier divergence, a
// fault, ...) is returned as an error naming the kernel, the threadgroup
// and the thread; the device stays usable.
func (dev *Device) Dispatch(d Dispatch) error {
	dev.mu.Lock()
	defer dev.mu.Unlock()
	if dev.broken != nil {
		return dev.broken
	}
	k, ok := dev.kernels[d.Kernel]
	if !ok {
		return fmt.Errorf("mslemu: no kernel %q in this driver (it has %v)", d.Kernel, sortedKeys(dev.kernels))
	}
	msg, err := dev.encodeDispatch(d, k)
	if err != nil {
		return err
	}
	return dev.roundTrip(msg, "kernel "+d.Kernel)
}

func (dev *Device) encodeDispatch(d Dispatch, k kernelEntry) ([]byte, error) {
	where := "mslemu: dispatch of " + d.Kernel
	uniform := d.Threadgroups != [3]int{}
	nonuniform := d.Threads != [3]int{}
	if uniform == nonuniform {
		return nil, fmt.Errorf("%s: set exactly one of Threadgroups and Threads", where)
	}
	grid := d.Threadgroups
	gridName := "Threadgroups"
	if nonuniform {
		grid, gridName = d.Threads, "Threads"
	}
	threads := 1
	for i := 0; i < 3; i++ {
		if grid[i] < 1 || grid[i] > 1<<31 {
			return nil, fmt.Errorf("%s: %s[%d] is %d; each dimension must be at least 1 (use 1 for unused dimensions)", where, gridName, i, grid[i])
		}
		t := d.ThreadsPerThreadgroup[i]
		if t < 1 || t > maxThreadsPerThreadgroup {
			return nil, fmt.Errorf("%s: ThreadsPerThreadgroup[%d] is %d; each dimension must be 1..%d", where, i, t, maxThreadsPerThreadgroup)
		}
		threads *= t
	}
	if threads > maxThreadsPerThreadgroup {
		return nil, fmt.Errorf("%s: %d threads per threadgroup exceeds Metal's limit of %d", where, threads, maxThreadsPerThreadgroup)
	}
	if threads > k.maxThreads {
		return nil, fmt.Errorf("%s: %d threads per threadgroup exceeds the kernel's max_total_threads_per_threadgroup (%d)", where, threads, k.maxThreads)
	}
	if len(d.Buffers) > maxBindings || len(d.ThreadgroupMemory) > maxBindings {
		return nil, fmt.Errorf("%s: more than %d bindings", where, maxBindings)
	}
	msg := dev.begin(opDispatch)
	msg = binary.LittleEndian.AppendUint32(msg, k.index)
	for i := 0; i < 3; i++ {
		v := 0
		if uniform {
			v = grid[i]
		}
		msg = binary.LittleEndian.AppendUint32(msg, uint32(v))
	}
	for i := 0; i < 3; i++ {
		msg = binary.LittleEndian.AppendUint32(msg, uint32(d.ThreadsPerThreadgroup[i]))
	}
	for i := 0; i < 3; i++ {
		v := 0
		if nonuniform {
			v = grid[i]
		}
		msg = binary.LittleEndian.AppendUint32(msg, uint32(v))
	}
	msg = binary.LittleEndian.AppendUint64(msg, d.Seed)
	msg = append(msg, byte(len(d.Buffers)))
	var bound [maxBindings]bool
	for _, b := range d.Buffers {
		if b.Index < 0 || b.Index >= maxBindings {
			return nil, fmt.Errorf("%s: buffer index %d is outside 0..%d", where, b.Index, maxBindings-1)
		}
		if bound[b.Index] {
			return nil, fmt.Errorf("%s: [[buffer(%d)]] is bound twice", where, b.Index)
		}
		bound[b.Index] = true
		msg = append(msg, byte(b.Index))
		switch {
		case b.Buffer != nil && b.Bytes != nil:
			return nil, fmt.Errorf("%s: [[buffer(%d)]] sets both Buffer and Bytes", where, b.Index)
		case b.Buffer != nil:
			if b.Buffer.dev != dev || b.Buffer.released {
				return nil, fmt.Errorf("%s: [[buffer(%d)]] is released or belongs to another device", where, b.Index)
			}
			if b.Offset < 0 || b.Offset > b.Buffer.Len() {
				return nil, fmt.Errorf("%s: [[buffer(%d)]] offset %d is outside its %d-byte buffer", where, b.Index, b.Offset, b.Buffer.Len())
			}
			msg = append(msg, 0)
			msg = binary.LittleEndian.AppendUint32(msg, b.Buffer.id)
			msg = binary.LittleEndian.AppendUint64(msg, uint64(b.Offset))
		case len(b.Bytes) > 0:
			if len(b.Bytes) > maxInlineBytes {
				return nil, fmt.Errorf("%s: [[buffer(%d)]] has %d inline bytes; setBytes allows at most %d, use a Buffer", where, b.Index, len(b.Bytes), maxInlineBytes)
			}
			if b.Offset != 0 {
				return nil, fmt.Errorf("%s: [[buffer(%d)]] sets an Offset with inline Bytes", where, b.Index)
			}
			msg = append(msg, 1)
			msg = binary.LittleEndian.AppendUint32(msg, uint32(len(b.Bytes)))
			msg = append(msg, b.Bytes...)
		default:
			return nil, fmt.Errorf("%s: [[buffer(%d)]] sets neither Buffer nor Bytes", where, b.Index)
		}
	}
	msg = append(msg, byte(len(d.ThreadgroupMemory)))
	var tgSet [maxBindings]bool
	total := 0
	for _, t := range d.ThreadgroupMemory {
		if t.Index < 0 || t.Index >= maxBindings {
			return nil, fmt.Errorf("%s: threadgroup memory index %d is outside 0..%d", where, t.Index, maxBindings-1)
		}
		if tgSet[t.Index] {
			return nil, fmt.Errorf("%s: [[threadgroup(%d)]] length is set twice", where, t.Index)
		}
		tgSet[t.Index] = true
		if t.Length <= 0 || t.Length%16 != 0 {
			return nil, fmt.Errorf("%s: [[threadgroup(%d)]] length %d must be a positive multiple of 16 bytes", where, t.Index, t.Length)
		}
		total += t.Length
		if total > maxThreadgroupMemory {
			return nil, fmt.Errorf("%s: threadgroup memory adds up to more than Metal's %d bytes", where, maxThreadgroupMemory)
		}
		msg = append(msg, byte(t.Index))
		msg = binary.LittleEndian.AppendUint32(msg, uint32(t.Length))
	}
	return msg, nil
}

// begin starts a request in the device's reusable message buffer: u32
// length (filled in by roundTrip) and the opcode.
func (d *Device) begin(op byte) []byte {
	return append(d.msg[:0], 0, 0, 0, 0, op)
}

// roundTrip sends a request and waits for its reply. Callers hold d.mu.
func (d *Device) roundTrip(msg []byte, what string) error {
	if d.broken != nil {
		return d.broken
	}
	d.msg = msg[:0]
	binary.LittleEndian.PutUint32(msg, uint32(len(msg)-4))
	if _, err := d.req.Write(msg); err != nil {
		return d.fail(d.deadErr(what, err))
	}
	d.resp.SetReadDeadline(time.Now().Add(d.timeout))
	var hdr [5]byte
	if _, err := io.ReadFull(d.respBuf, hdr[:]); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return d.fail(fmt.Errorf("mslemu: %s did not finish within %v (an endless loop?); the driver was stopped", what, d.timeout))
		}
		return d.fail(d.deadErr(what, err))
	}
	n := binary.LittleEndian.Uint32(hdr[:4])
	if n == 0 || n > 1<<20 {
		return d.fail(fmt.Errorf("mslemu: BUG: reply of %d bytes from the driver", n))
	}
	text := make([]byte, n-1)
	if _, err := io.ReadFull(d.respBuf, text); err != nil {
		return d.fail(d.deadErr(what, err))
	}
	if hdr[4] != 0 {
		return errors.New("mslemu: " + string(text))
	}
	return nil
}

// fail marks the device unusable after a protocol failure and stops the
// driver.
func (d *Device) fail(err error) error {
	d.broken = err
	d.kill()
	return err
}

// deadErr describes a driver that stopped answering, with its last output.
func (d *Device) deadErr(what string, cause error) error {
	state := "stopped answering"
	select {
	case <-d.exited:
		if ps := d.cmd.ProcessState; ps != nil {
			state = "exited (" + ps.String() + ")"
		}
	case <-time.After(2 * time.Second):
	}
	msg := fmt.Sprintf("mslemu: the driver %s during %s: %v", state, what, cause)
	if out := d.output.String(); out != "" {
		msg += "\ndriver output:\n" + out
	}
	return errors.New(msg)
}

func (d *Device) kill() {
	d.cmd.Process.Kill()
	d.req.Close()
	<-d.exited
	d.resp.Close()
}

// Close stops the driver and unmaps every buffer. The driver also exits by
// itself when the Go process dies (its stdin closes).
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, b := range d.buffers {
		unmap(b.mapping)
		b.released = true
		b.mapping, b.data = nil, nil
	}
	d.buffers = nil
	if d.broken != nil {
		return nil
	}
	d.broken = errors.New("mslemu: the device is closed")
	d.req.Close()
	select {
	case <-d.exited:
	case <-time.After(5 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
	}
	d.resp.Close()
	return nil
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
