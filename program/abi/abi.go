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
type StepArgs struct {
	// Seq is the number of tokens in this call.
	Seq uint32 `msl:"seq"`
	// Pos is the position of the first of them.
	Pos uint32 `msl:"pos"`
}

// Bytes packs the struct as Metal lays it out: little-endian fields at
// their natural alignment.
func (a StepArgs) Bytes() []byte {
	var b [8]byte
	binary.LittleEndian.PutUint32(b[0:], a.Seq)
	binary.LittleEndian.PutUint32(b[4:], a.Pos)
	return b[:]
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
		ty, ok := mslTypes[f.Type.Kind()]
		if !ok {
			panic(fmt.Sprintf("BUG: abi field %s.%s has no Metal type", t.Name(), f.Name))
		}
		fmt.Fprintf(&b, "  %s %s;\n", ty, f.Tag.Get("msl"))
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
