package weights

import (
	"fmt"
	"strings"

	"github.com/nlpodyssey/safetensors"
)

// DType is the element type of a tensor. The zero value is not a valid type.
type DType uint8

// The element types of the SafeTensors format that Minerva can read.
const (
	Bool DType = iota + 1
	U8
	I8
	I16
	U16
	F16
	BF16
	I32
	U32
	F32
	F64
	I64
	U64
	numDTypes
)

var dtypeInfo = [numDTypes]struct {
	name string // Minerva's spelling
	st   safetensors.DType
	size int
}{
	Bool: {"bool", safetensors.BOOL, 1},
	U8:   {"u8", safetensors.U8, 1},
	I8:   {"i8", safetensors.I8, 1},
	I16:  {"i16", safetensors.I16, 2},
	U16:  {"u16", safetensors.U16, 2},
	F16:  {"f16", safetensors.F16, 2},
	BF16: {"bf16", safetensors.BF16, 2},
	I32:  {"i32", safetensors.I32, 4},
	U32:  {"u32", safetensors.U32, 4},
	F32:  {"f32", safetensors.F32, 4},
	F64:  {"f64", safetensors.F64, 8},
	I64:  {"i64", safetensors.I64, 8},
	U64:  {"u64", safetensors.U64, 8},
}

// Valid reports whether d is one of the defined element types.
func (d DType) Valid() bool { return d > 0 && d < numDTypes }

// String gives Minerva's lower-case spelling: "bf16", "f32", "u8", ...
func (d DType) String() string {
	if !d.Valid() {
		return fmt.Sprintf("DType(%d)", uint8(d))
	}
	return dtypeInfo[d].name
}

// SafeTensorsName gives the spelling of the SafeTensors header: "BF16", "F32", ...
func (d DType) SafeTensorsName() string {
	if !d.Valid() {
		return fmt.Sprintf("DType(%d)", uint8(d))
	}
	return dtypeInfo[d].st.String()
}

// Size is the number of bytes of one element. It panics for an invalid DType.
func (d DType) Size() int {
	if !d.Valid() {
		panic(fmt.Sprintf("BUG: Size of invalid weights.DType(%d)", uint8(d)))
	}
	return dtypeInfo[d].size
}

// ParseDType accepts Minerva's spelling ("bf16") and the SafeTensors
// spelling ("BF16").
func ParseDType(s string) (DType, error) {
	lower := strings.ToLower(s)
	for d := Bool; d < numDTypes; d++ {
		if dtypeInfo[d].name == lower {
			return d, nil
		}
	}
	return 0, fmt.Errorf("unknown dtype %q (known: bool u8 i8 i16 u16 f16 bf16 i32 u32 f32 f64 i64 u64)", s)
}

func fromLibraryDType(st safetensors.DType) (DType, bool) {
	for d := Bool; d < numDTypes; d++ {
		if dtypeInfo[d].st == st {
			return d, true
		}
	}
	return 0, false
}

func (d DType) library() safetensors.DType {
	if !d.Valid() {
		panic(fmt.Sprintf("BUG: invalid weights.DType(%d) has no SafeTensors form", uint8(d)))
	}
	return dtypeInfo[d].st
}
