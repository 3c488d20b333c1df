package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
)

// File is a parsed GGUF file.
type File struct {
	Version   uint32
	KV        []KV
	Tensors   []TensorInfo
	Alignment uint64
	// DataOffset is where the data section starts: tensor i's bytes are
	// data[DataOffset+Tensors[i].Offset:][:Tensors[i].Size()].
	DataOffset uint64
}

// Lookup returns the value of a metadata key.
func (f *File) Lookup(key string) (Value, bool) {
	for _, kv := range f.KV {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return Value{}, false
}

// maxArrayDepth bounds arrays of arrays, which the format allows but no
// model uses, so that a crafted file cannot recurse deeply.
const maxArrayDepth = 4

// Read parses a whole GGUF file held in data and checks it against the
// specification: magic, version 3, value types, key and tensor-name
// uniqueness, the alignment, and every tensor's data range (aligned, in
// the file, not overlapping the next). It returns an error naming the
// first problem and where it is; it never panics on any input.
func Read(data []byte) (*File, error) {
	d := &decoder{b: data}
	if len(data) < 4 || string(data[:4]) != Magic {
		return nil, fmt.Errorf("gguf: not a GGUF file (the first four bytes are not %q)", Magic)
	}
	d.pos = 4
	f := &File{Version: d.u32()}
	if d.err == nil && f.Version != Version {
		return nil, fmt.Errorf("gguf: version %d; only version %d is read", f.Version, Version)
	}
	nt, nkv := d.u64(), d.u64()
	if d.err != nil {
		return nil, d.err
	}
	// Each pair takes at least 12 bytes and each tensor description at
	// least 24: refuse counts the file cannot hold before allocating.
	if nkv > uint64(d.left())/12 || nt > uint64(d.left())/24 {
		return nil, fmt.Errorf("gguf: header declares %d tensors and %d metadata pairs, more than the file's %d bytes can hold", nt, nkv, len(data))
	}
	f.Alignment = DefaultAlignment
	keys := map[string]bool{}
	for i := uint64(0); i < nkv && d.err == nil; i++ {
		key := d.str()
		if d.err != nil {
			break
		}
		if keys[key] {
			return nil, fmt.Errorf("gguf: metadata key %q appears twice", key)
		}
		keys[key] = true
		v := d.value(ValueType(d.u32()), 0)
		if d.err != nil {
			return nil, fmt.Errorf("gguf: metadata %q: %w", key, d.err)
		}
		if key == "general.alignment" {
			if v.Type != TypeUint32 || v.u == 0 || v.u&(v.u-1) != 0 {
				return nil, fmt.Errorf("gguf: general.alignment must be a uint32 power of two, not %s %d", v.Type, v.u)
			}
			f.Alignment = v.u
		}
		f.KV = append(f.KV, KV{Key: key, Value: v})
	}
	if d.err != nil {
		return nil, d.err
	}
	names := map[string]bool{}
	for i := uint64(0); i < nt && d.err == nil; i++ {
		var t TensorInfo
		t.Name = d.str()
		nd := d.u32()
		if d.err != nil {
			break
		}
		if nd == 0 || nd > 4 {
			return nil, fmt.Errorf("gguf: tensor %q has %d dimensions; GGML tensors have 1 to 4", t.Name, nd)
		}
		for j := uint32(0); j < nd; j++ {
			t.Dims = append(t.Dims, d.u64())
		}
		t.Type = TensorType(d.u32())
		t.Offset = d.u64()
		if d.err != nil {
			break
		}
		if names[t.Name] {
			return nil, fmt.Errorf("gguf: tensor %q appears twice", t.Name)
		}
		names[t.Name] = true
		f.Tensors = append(f.Tensors, t)
	}
	if d.err != nil {
		return nil, d.err
	}
	f.DataOffset = alignUp(uint64(d.pos), f.Alignment)
	if f.DataOffset > uint64(len(data)) {
		return nil, fmt.Errorf("gguf: the file ends in the padding before the data section (truncated?)")
	}
	var end uint64
	for _, t := range f.Tensors {
		size, err := DataSize(t.Type, t.Dims)
		if err != nil {
			return nil, fmt.Errorf("gguf: tensor %q: %v", t.Name, err)
		}
		if t.Offset%f.Alignment != 0 {
			return nil, fmt.Errorf("gguf: tensor %q: data offset %d is not a multiple of the alignment %d", t.Name, t.Offset, f.Alignment)
		}
		if t.Offset < end {
			return nil, fmt.Errorf("gguf: tensor %q: data at offset %d overlaps the previous tensor's, which ends at %d", t.Name, t.Offset, end)
		}
		if t.Offset > uint64(len(data)) || size > uint64(len(data))-t.Offset || f.DataOffset > uint64(len(data))-t.Offset-size {
			return nil, fmt.Errorf("gguf: tensor %q: its %d bytes at data offset %d run past the end of the %d-byte file (truncated?)", t.Name, size, t.Offset, len(data))
		}
		end = t.Offset + size
	}
	// llama.cpp reads the data section as the sum of the tensors' sizes,
	// each padded to the alignment, so the last tensor's padding must be
	// there too.
	if padded := alignUp(end, f.Alignment); padded > uint64(len(data))-f.DataOffset {
		return nil, fmt.Errorf("gguf: the data section needs %d bytes (the last tensor padded to the alignment); the file holds %d (truncated?)", padded, uint64(len(data))-f.DataOffset)
	}
	return f, nil
}

type decoder struct {
	b   []byte
	pos int
	err error
}

func (d *decoder) left() int { return len(d.b) - d.pos }

func (d *decoder) take(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(d.left()) {
		d.err = fmt.Errorf("gguf: truncated at byte %d: %d more bytes needed, %d left", d.pos, n, d.left())
		return nil
	}
	p := d.b[d.pos : d.pos+int(n)]
	d.pos += int(n)
	return p
}

func (d *decoder) u32() uint32 {
	if p := d.take(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if p := d.take(8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

func (d *decoder) str() string {
	n := d.u64()
	return string(d.take(n))
}

func (d *decoder) value(t ValueType, depth int) Value {
	if d.err != nil {
		return Value{}
	}
	v := Value{Type: t}
	switch t {
	case TypeString:
		v.s = d.str()
	case TypeArray:
		if depth >= maxArrayDepth {
			d.err = fmt.Errorf("arrays nested deeper than %d", maxArrayDepth)
			return v
		}
		v.Elem = ValueType(d.u32())
		n := d.u64()
		if d.err != nil {
			return v
		}
		min := uint64(v.Elem.scalarSize())
		switch v.Elem {
		case TypeString:
			min = 8
		case TypeArray:
			min = 12
		}
		if min == 0 {
			d.err = fmt.Errorf("array of unknown value type %d", uint32(v.Elem))
			return v
		}
		if n > uint64(d.left())/min {
			d.err = fmt.Errorf("array of %d %s elements does not fit in the %d bytes left", n, v.Elem, d.left())
			return v
		}
		switch v.Elem {
		case TypeString:
			v.strs = make([]string, n)
			for i := range v.strs {
				v.strs[i] = d.str()
			}
		case TypeInt32:
			v.i32s = make([]int32, n)
			for i := range v.i32s {
				v.i32s[i] = int32(d.u32())
			}
		default:
			v.arr = make([]Value, 0, n)
			for i := uint64(0); i < n && d.err == nil; i++ {
				v.arr = append(v.arr, d.value(v.Elem, depth+1))
			}
		}
	case TypeBool:
		p := d.take(1)
		if p != nil && p[0] > 1 {
			d.err = fmt.Errorf("bool value %d is neither 0 nor 1", p[0])
		}
		if p != nil {
			v.u = uint64(p[0])
		}
	default:
		size := t.scalarSize()
		if size == 0 {
			d.err = fmt.Errorf("unknown value type %d", uint32(t))
			return v
		}
		p := d.take(uint64(size))
		if p == nil {
			return v
		}
		var buf [8]byte
		copy(buf[:], p)
		v.u = binary.LittleEndian.Uint64(buf[:])
	}
	return v
}

// Float64 returns a float64 value.
func (v Value) Float64() float64 { return math.Float64frombits(v.u) }
