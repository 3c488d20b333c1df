package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Value is a typed metadata value. Build one with the constructors below.
type Value struct {
	Type ValueType
	// Elem is the element type of an array.
	Elem ValueType
	u    uint64   // every integer and bool, float bits
	s    string   // a string
	arr  []Value  // an array of any element type
	strs []string // an array of strings (the common, large case)
	i32s []int32  // an array of int32
}

// Uint32 is a uint32 value.
func Uint32(v uint32) Value { return Value{Type: TypeUint32, u: uint64(v)} }

// Int32 is an int32 value.
func Int32(v int32) Value { return Value{Type: TypeInt32, u: uint64(uint32(v))} }

// Uint64 is a uint64 value.
func Uint64(v uint64) Value { return Value{Type: TypeUint64, u: v} }

// Float32 is a float32 value.
func Float32(v float32) Value { return Value{Type: TypeFloat32, u: uint64(math.Float32bits(v))} }

// Bool is a bool value.
func Bool(v bool) Value {
	var u uint64
	if v {
		u = 1
	}
	return Value{Type: TypeBool, u: u}
}

// String is a string value.
func String(s string) Value { return Value{Type: TypeString, s: s} }

// Strings is an array of strings.
func Strings(s []string) Value { return Value{Type: TypeArray, Elem: TypeString, strs: s} }

// Int32s is an array of int32.
func Int32s(v []int32) Value { return Value{Type: TypeArray, Elem: TypeInt32, i32s: v} }

// Str returns a string value's text.
func (v Value) Str() string { return v.s }

// Uint returns an unsigned or bool value, widened.
func (v Value) Uint() uint64 { return v.u }

// Float returns a float32 value.
func (v Value) Float() float32 { return math.Float32frombits(uint32(v.u)) }

// StringArray returns an array of strings.
func (v Value) StringArray() []string { return v.strs }

// Int32Array returns an array of int32.
func (v Value) Int32Array() []int32 { return v.i32s }

// Len is the number of elements of an array.
func (v Value) Len() int {
	switch {
	case v.Elem == TypeString && v.Type == TypeArray:
		return len(v.strs)
	case v.Elem == TypeInt32 && v.Type == TypeArray && v.i32s != nil:
		return len(v.i32s)
	}
	return len(v.arr)
}

// KV is one metadata pair.
type KV struct {
	Key   string
	Value Value
}

// TensorInfo describes one tensor: its name, its dimensions in GGML order
// (first = contiguous), its type, and (as read) the offset of its data
// from the start of the data section.
type TensorInfo struct {
	Name   string
	Dims   []uint64
	Type   TensorType
	Offset uint64
}

// Size is the tensor's byte size.
func (t TensorInfo) Size() uint64 {
	n, _ := DataSize(t.Type, t.Dims)
	return n
}

// DataFunc writes tensor i's bytes, exactly its Size, to w.
type DataFunc func(i int, w io.Writer) error

// Write writes a GGUF v3 file: the metadata, the tensor descriptions and,
// through data, every tensor's bytes, each aligned to the file's
// alignment (general.alignment when kvs sets it, else 32). A DataFunc that
// writes the wrong number of bytes is an error, not a corrupt file.
func Write(w io.Writer, kvs []KV, tensors []TensorInfo, data DataFunc) error {
	align := uint64(DefaultAlignment)
	seen := map[string]bool{}
	for _, kv := range kvs {
		if seen[kv.Key] {
			return fmt.Errorf("gguf: metadata key %q given twice", kv.Key)
		}
		seen[kv.Key] = true
		if kv.Key == "general.alignment" {
			if kv.Value.Type != TypeUint32 || kv.Value.u == 0 || kv.Value.u&(kv.Value.u-1) != 0 {
				return fmt.Errorf("gguf: general.alignment must be a uint32 power of two")
			}
			align = kv.Value.u
		}
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	e := &encoder{w: bw}
	e.raw([]byte(Magic))
	e.u32(Version)
	e.u64(uint64(len(tensors)))
	e.u64(uint64(len(kvs)))
	for _, kv := range kvs {
		e.str(kv.Key)
		e.value(kv.Value, true)
	}
	var offset uint64
	sizes := make([]uint64, len(tensors))
	names := map[string]bool{}
	for i, t := range tensors {
		if names[t.Name] {
			return fmt.Errorf("gguf: tensor %q given twice", t.Name)
		}
		names[t.Name] = true
		n, err := DataSize(t.Type, t.Dims)
		if err != nil {
			return fmt.Errorf("gguf: tensor %s: %v", t.Name, err)
		}
		sizes[i] = n
		e.str(t.Name)
		e.u32(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			e.u64(d)
		}
		e.u32(uint32(t.Type))
		e.u64(offset)
		offset = alignUp(offset+n, align)
	}
	e.pad(align)
	if e.err != nil {
		return e.err
	}
	var pos uint64
	for i := range tensors {
		cw := &countingWriter{w: bw}
		if err := data(i, cw); err != nil {
			return fmt.Errorf("gguf: tensor %s: %w", tensors[i].Name, err)
		}
		if cw.n != sizes[i] {
			return fmt.Errorf("BUG: gguf: tensor %s: %d bytes written, %d expected", tensors[i].Name, cw.n, sizes[i])
		}
		pos += cw.n
		next := alignUp(pos, align)
		e.zeros(next - pos)
		pos = next
		if e.err != nil {
			return e.err
		}
	}
	return bw.Flush()
}

func alignUp(n, a uint64) uint64 { return (n + a - 1) / a * a }

type countingWriter struct {
	w io.Writer
	n uint64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += uint64(n)
	return n, err
}

type encoder struct {
	w   *bufio.Writer
	n   uint64
	err error
	buf [8]byte
}

func (e *encoder) raw(p []byte) {
	if e.err != nil {
		return
	}
	_, e.err = e.w.Write(p)
	e.n += uint64(len(p))
}

func (e *encoder) u32(v uint32) {
	binary.LittleEndian.PutUint32(e.buf[:4], v)
	e.raw(e.buf[:4])
}

func (e *encoder) u64(v uint64) {
	binary.LittleEndian.PutUint64(e.buf[:8], v)
	e.raw(e.buf[:8])
}

func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	if e.err == nil {
		_, e.err = e.w.WriteString(s)
		e.n += uint64(len(s))
	}
}

func (e *encoder) pad(align uint64) { e.zeros(alignUp(e.n, align) - e.n) }

func (e *encoder) zeros(n uint64) {
	var z [64]byte
	for n > 0 {
		k := min(n, uint64(len(z)))
		e.raw(z[:k])
		n -= k
	}
}

func (e *encoder) value(v Value, tagged bool) {
	if tagged {
		e.u32(uint32(v.Type))
	}
	switch v.Type {
	case TypeString:
		e.str(v.s)
	case TypeArray:
		e.u32(uint32(v.Elem))
		switch {
		case v.Elem == TypeString && v.arr == nil:
			e.u64(uint64(len(v.strs)))
			for _, s := range v.strs {
				e.str(s)
			}
		case v.Elem == TypeInt32 && v.arr == nil:
			e.u64(uint64(len(v.i32s)))
			for _, x := range v.i32s {
				e.u32(uint32(x))
			}
		default:
			e.u64(uint64(len(v.arr)))
			for _, x := range v.arr {
				e.value(x, false)
			}
		}
	default:
		size := v.Type.scalarSize()
		if size == 0 {
			if e.err == nil {
				e.err = fmt.Errorf("BUG: gguf: value of type %s", v.Type)
			}
			return
		}
		binary.LittleEndian.PutUint64(e.buf[:8], v.u)
		e.raw(e.buf[:size])
	}
}
