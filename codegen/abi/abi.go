// Package abi is the single definition of what the host passes a kernel
// besides its buffers. The Metal source's struct is rendered from the Go
// type by reflection and the host packs bytes from the same type, so the
// two sides cannot drift; a test compiles the rendered struct and checks
// every field's offset against Go's.
//
// Everything else a kernel needs (shapes, dtypes, the window, the KV
// format) is a compile-time constant of its specialisation, so only what
// changes from call to call is here.
package abi

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"strings"
)

// StepArgs is the per-dispatch argument struct, bound at buffer index 0
// of every kernel.
//
// A call runs tokens of one sequence at positions Pos, Pos+1, ..., or,
// when Batched is set, a batched step: token t is of sequence Tok[2t] at
// position Tok[2t+1], and sequence s's KV cache starts SeqBytes × s bytes
// after sequence 0's (the plan's cache, once per sequence). The kernels
// that depend on positions (RoPE, the cache write, attention) read them
// through the common header's token_seq and token_pos.
type StepArgs struct {
	// Seq is the number of tokens in this call.
	Seq uint32 `msl:"seq"`
	// Pos is the position of the first of them, when not Batched.
	Pos uint32 `msl:"pos"`
	// Batched says that Tok holds each token's sequence and position.
	Batched uint32 `msl:"batched"`
	// SeqBytes is the size of one sequence's KV cache.
	SeqBytes uint32 `msl:"seq_bytes"`
	// Tok is, per token, its sequence and its position.
	Tok [2 * MaxStepTokens]uint32 `msl:"tok"`
}

// MaxStepTokens is the most tokens a batched step passes in StepArgs:
// Metal's inline argument bytes are limited to 4 KiB.
const MaxStepTokens = 256

// Bytes packs the struct as Metal lays it out: little-endian fields at
// their natural alignment.
func (a StepArgs) Bytes() []byte {
	b := make([]byte, 16+4*len(a.Tok))
	binary.LittleEndian.PutUint32(b[0:], a.Seq)
	binary.LittleEndian.PutUint32(b[4:], a.Pos)
	binary.LittleEndian.PutUint32(b[8:], a.Batched)
	binary.LittleEndian.PutUint32(b[12:], a.SeqBytes)
	for i, v := range a.Tok {
		binary.LittleEndian.PutUint32(b[16+4*i:], v)
	}
	return b
}

// mslTypes maps Go field types to Metal's.
var mslTypes = map[reflect.Kind]string{
	reflect.Uint32:  "uint",
	reflect.Int32:   "int",
	reflect.Float32: "float",
}

// MSL renders a struct type as Metal source.
func MSL(v any) string {
	t := reflect.TypeOf(v)
	var b strings.Builder
	fmt.Fprintf(&b, "struct %s {\n", t.Name())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		ft, suffix := f.Type, ""
		if ft.Kind() == reflect.Array {
			ft, suffix = ft.Elem(), fmt.Sprintf("[%d]", ft.Len())
		}
		ty, ok := mslTypes[ft.Kind()]
		if !ok {
			panic(fmt.Sprintf("BUG: abi field %s.%s has no Metal type", t.Name(), f.Name))
		}
		fmt.Fprintf(&b, "  %s %s%s;\n", ty, f.Tag.Get("msl"), suffix)
	}
	b.WriteString("};\n")
	return b.String()
}

// Fields lists each field's Metal name and Go byte offset, for the layout
// test.
func Fields(v any) []Field {
	t := reflect.TypeOf(v)
	var out []Field
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		out = append(out, Field{Name: f.Tag.Get("msl"), Offset: int(f.Offset), Size: int(f.Type.Size())})
	}
	return out
}

// Field is one field's layout.
type Field struct {
	Name         string
	Offset, Size int
}
