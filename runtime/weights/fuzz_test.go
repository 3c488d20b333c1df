package weights

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tinyHeader is the header text of tiny-random, as the Hugging Face
// library wrote it.
func tinyHeader(t testing.TB) string {
	file := readTiny(t)
	n := binary.LittleEndian.Uint64(file)
	return string(file[8 : 8+n])
}

func seedFiles(t testing.TB) [][]byte {
	file := readTiny(t)
	n := int(binary.LittleEndian.Uint64(file))
	return [][]byte{
		file[:8+n],      // the header alone: truncated
		file[:8+n+4096], // cut inside the data
		craft(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"k":"v"}}`, 8),
		craft(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}`, 24),
		craft(`{}`, 0),
		craft(`null`, 3),
		{},
	}
}

// checkOpened checks what Open or FromBytes gave for data: either a
// checkpoint whose tensors tile the file's data section exactly, or a
// *CheckpointError whose problems the diagnosis explained.
func checkOpened(t *testing.T, data []byte, c *Checkpoint, err error) {
	t.Helper()
	if err != nil {
		var ce *CheckpointError
		if !errors.As(err, &ce) || len(ce.Problems) == 0 {
			t.Fatalf("error %v is not a CheckpointError with problems", err)
		}
		for _, p := range ce.Problems {
			if strings.Contains(p.Message, "the SafeTensors header is rejected") {
				t.Fatalf("the diagnosis missed what the library rejects: %s", p.Message)
			}
		}
		return
	}
	defer c.Close()
	n := int64(binary.LittleEndian.Uint64(data))
	type span struct{ begin, end int64 }
	var spans []span
	for _, name := range c.Names() {
		tensor, _ := c.Tensor(name)
		if int64(len(tensor.Data)) != tensor.NumElements()*int64(tensor.DType.Size()) {
			t.Fatalf("%s: %d bytes for %v %v", name, len(tensor.Data), tensor.DType, tensor.Shape)
		}
		spans = append(spans, span{tensor.Offset, tensor.Offset + int64(len(tensor.Data))})
	}
	slices.SortFunc(spans, func(a, b span) int {
		if a.begin != b.begin {
			return int(a.begin - b.begin)
		}
		return int(a.end - b.end)
	})
	at := 8 + n
	for _, s := range spans {
		if s.begin != at {
			t.Fatalf("tensors do not tile the data section: %v", spans)
		}
		at = s.end
	}
	if at != int64(len(data)) {
		t.Fatalf("the tensors end at %d, the file at %d", at, len(data))
	}
	if err := c.Validate(nil, "hint"); (err == nil) != (len(spans) == 0) {
		t.Fatalf("Validate against an empty manifest: %v", err)
	}
}

// The seeds hold the real 8 KB header of tiny-random, which the fuzzing
// engine's minimizer chews on for its default minute per new input; run
// with -fuzzminimizetime=1s:
//
//	go test -run '^$' -fuzz FuzzOpen -fuzzminimizetime 1s ./runtime/weights

// FuzzOpen opens arbitrary files through a real mapping and from memory:
// no panic, no fault, and both ways agree.
func FuzzOpen(f *testing.F) {
	for _, seed := range seedFiles(f) {
		f.Add(seed)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "fuzz.safetensors")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		mapped, err := Open(path)
		checkOpened(t, data, mapped, err)
		fromBytes, err2 := FromBytes("fuzz.safetensors", data)
		checkOpened(t, data, fromBytes, err2)
		if (err == nil) != (err2 == nil) {
			t.Fatalf("Open: %v; FromBytes: %v", err, err2)
		}
	})
}

// FuzzHeader varies the header text over a data section of a given size.
func FuzzHeader(f *testing.F) {
	f.Add(tinyHeader(f), uint32(344768))
	f.Add(tinyHeader(f), uint32(200000))
	f.Add(`{"a":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]}}`, uint32(12))
	f.Add(`{"a":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]},"b":{"dtype":"U8","shape":[],"data_offsets":[12,13]}}  `, uint32(13))
	f.Add(`{"a":{"dtype":"I64","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"I64","shape":[0],"data_offsets":[0,0]}}`, uint32(0))
	f.Fuzz(func(t *testing.T, header string, dataLen uint32) {
		data := craft(header, int(dataLen%(1<<20)))
		c, err := FromBytes("fuzz.safetensors", data)
		checkOpened(t, data, c, err)
	})
}
