// Package gguf writes and reads GGUF files, the single-file model format of
// llama.cpp and GGML (version 3 of the published specification,
// ggml/docs/gguf.md): a header, typed metadata key-value pairs, tensor
// descriptions, then the tensors' data, each aligned.
//
// The writer streams: tensor data is produced tensor by tensor, so a
// 13 GB model is written without holding it in memory. The reader exists
// to check what the writer produced against the specification; it reads
// the header and descriptions and checks every byte range.
package gguf

import "fmt"

// Magic is the file's first four bytes, "GGUF".
const Magic = "GGUF"

// Version is the format version this package writes and reads.
const Version = 3

// DefaultAlignment is the alignment of tensor data when the metadata has
// no general.alignment.
const DefaultAlignment = 32

// ValueType is the type tag of a metadata value.
type ValueType uint32

// The metadata value types of the specification, with their numbers.
const (
	TypeUint8     ValueType = 0
	TypeInt8      ValueType = 1
	TypeUint16    ValueType = 2
	TypeInt16     ValueType = 3
	TypeUint32    ValueType = 4
	TypeInt32     ValueType = 5
	TypeFloat32   ValueType = 6
	TypeBool      ValueType = 7
	TypeString    ValueType = 8
	TypeArray     ValueType = 9
	TypeUint64    ValueType = 10
	TypeInt64     ValueType = 11
	TypeFloat64   ValueType = 12
	numValueTypes ValueType = 13
)

var valueTypeNames = [numValueTypes]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"}

func (t ValueType) String() string {
	if t < numValueTypes {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("value type %d", uint32(t))
}

// scalarSize is the encoded size of a fixed-size value type, 0 for string
// and array.
func (t ValueType) scalarSize() int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// TensorType is a GGML tensor type (enum ggml_type in ggml.h).
type TensorType uint32

// The GGML types the writer produces. Numbers are ggml.h's.
const (
	F32   TensorType = 0
	F16   TensorType = 1
	BF16  TensorType = 30
	MXFP4 TensorType = 39
)

// blockLayout gives elements per block and bytes per block of the types
// this package knows.
func (t TensorType) blockLayout() (elems, bytes int64, ok bool) {
	switch t {
	case F32:
		return 1, 4, true
	case F16, BF16:
		return 1, 2, true
	case MXFP4:
		// block_mxfp4 (ggml-common.h): one E8M0 exponent byte, then 16
		// bytes holding 32 4-bit E2M1 codes.
		return 32, 17, true
	}
	return 0, 0, false
}

func (t TensorType) String() string {
	switch t {
	case F32:
		return "F32"
	case F16:
		return "F16"
	case BF16:
		return "BF16"
	case MXFP4:
		return "MXFP4"
	}
	return fmt.Sprintf("ggml type %d", uint32(t))
}

// DataSize is the byte size of a tensor of type t with dims (GGML order:
// the first dimension is the contiguous one). The first dimension must be
// a whole number of blocks.
func DataSize(t TensorType, dims []uint64) (uint64, error) {
	elems, bytes, ok := t.blockLayout()
	if !ok {
		return 0, fmt.Errorf("tensor type %s is not supported", t)
	}
	if len(dims) == 0 {
		return 0, fmt.Errorf("a tensor needs at least one dimension")
	}
	if dims[0]%uint64(elems) != 0 {
		return 0, fmt.Errorf("first dimension %d is not a multiple of the %s block of %d", dims[0], t, elems)
	}
	n := dims[0] / uint64(elems) * uint64(bytes)
	for _, d := range dims[1:] {
		if d != 0 && n > ^uint64(0)/d {
			return 0, fmt.Errorf("tensor size overflows")
		}
		n *= d
	}
	return n, nil
}
