package weights

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// manyTensors is a valid header of n one-byte tensors.
func manyTensors(n int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"t%d":{"dtype":"U8","shape":[1],"data_offsets":[%d,%d]}`, i, i, i+1)
	}
	b.WriteByte('}')
	return b.String()
}

// TestHugeHeadersAreRefused: a header past MaxHeaderBytes or with more
// than MaxTensorsPerFile entries is refused before it is parsed. An 87 MB
// header of 1.5M tensors used to take 30 s and 2.1 GB to open.
func TestHugeHeadersAreRefused(t *testing.T) {
	// Valid JSON (an empty object padded with the spaces the format
	// allows) one byte past the bound: it used to open as an empty file.
	big := "{}" + strings.Repeat(" ", MaxHeaderBytes-1)
	many := manyTensors(MaxTensorsPerFile + 1)
	for _, c := range []struct {
		name   string
		header string
		data   int
		want   string
	}{
		{"bytes", big, 0, fmt.Sprintf("x.safetensors: the header has %d bytes, more than the 16777216 Minerva reads", len(big))},
		{"tensors", many, MaxTensorsPerFile + 1, "x.safetensors: the header has 65537 entries, more than the 65536 tensors a file may hold"},
	} {
		c2, err := FromBytes("x.safetensors", craft(c.header, c.data))
		if err == nil {
			c2.Close()
			t.Errorf("%s: opened", c.name)
			continue
		}
		ce := asCheckpointError(t, err)
		if len(ce.Problems) != 1 || ce.Problems[0].Kind != BadHeader || !strings.Contains(ce.Problems[0].Message, c.want) {
			t.Errorf("%s: %v\nwant one bad header problem containing %q", c.name, err, c.want)
		}
	}
	// At the bounds, the header goes on to be parsed (which
	// BenchmarkOpenMaxTensors times).
	if probs := checkHeaderBounds("x.safetensors", craft(manyTensors(MaxTensorsPerFile), MaxTensorsPerFile)); probs != nil {
		t.Errorf("%d tensors: %v", MaxTensorsPerFile, probs)
	}
	withMetadata := `{"__metadata__":{"format":"pt"},` + manyTensors(MaxTensorsPerFile)[1:]
	if probs := checkHeaderBounds("x.safetensors", craft(withMetadata, MaxTensorsPerFile)); probs != nil {
		t.Errorf("%d tensors and __metadata__: %v", MaxTensorsPerFile, probs)
	}
	if probs := checkHeaderBounds("x.safetensors", craft("{}"+strings.Repeat(" ", MaxHeaderBytes-2), 0)); probs != nil {
		t.Errorf("a header of %d bytes: %v", MaxHeaderBytes, probs)
	}
}

// TestWriterKeepsToTheBounds: the writer refuses a file Open would refuse.
func TestWriterKeepsToTheBounds(t *testing.T) {
	headers := make([]TensorHeader, MaxTensorsPerFile+1)
	for i := range headers {
		headers[i] = TensorHeader{Name: fmt.Sprint(i), DType: U8, Shape: []int64{1}}
	}
	if _, _, err := buildHeader(headers, nil); err == nil || !strings.Contains(err.Error(), "65537 tensors in one file, more than the 65536") {
		t.Errorf("%d tensors: %v", len(headers), err)
	}
}

// topLevelKeys counts an object's keys with encoding/json's tokenizer, or
// reports false when text is not one JSON object.
func topLevelKeys(text []byte) (int, bool) {
	dec := json.NewDecoder(bytes.NewReader(text))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return 0, false
	}
	n := 0
	for dec.More() {
		if _, err := dec.Token(); err != nil { // the key
			return 0, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return 0, false
		}
		n++
	}
	if _, err := dec.Token(); err != nil {
		return 0, false
	}
	if _, err := dec.Token(); err != io.EOF { // anything after the object
		return 0, false
	}
	return n, true
}

func TestCountTopLevelKeys(t *testing.T) {
	for _, text := range []string{
		`{}`, ` { } `, `{"a":1}`, `{"a:b":{"c":[1,{"d":2}]},"e":"x\"y:z","f":[":"]}`,
		`{"a":1,"a":2}`, `{"\\":"\\\"","k":{}}`, tinyHeader(t),
	} {
		want, ok := topLevelKeys([]byte(text))
		if !ok {
			t.Fatalf("%s is not a JSON object", text)
		}
		if got := countTopLevelKeys([]byte(text)); got != want {
			t.Errorf("%.60s: %d keys, want %d", text, got, want)
		}
	}
}

// FuzzCountTopLevelKeys: on every JSON object, the count before parsing
// is the number of keys encoding/json's tokenizer reads (duplicates
// included), so the tensor bound holds for every header the parser would
// accept.
func FuzzCountTopLevelKeys(f *testing.F) {
	f.Add(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"k":"v"}}`)
	f.Add(`{"a\"":"\\","b":[{"c":":"}]}`)
	f.Add(`{"a":1,"a":2}`)
	f.Add(tinyHeader(f))
	f.Fuzz(func(t *testing.T, text string) {
		got := countTopLevelKeys([]byte(text))
		if want, ok := topLevelKeys([]byte(text)); ok && got != want {
			t.Fatalf("%q: %d keys, want %d", text, got, want)
		}
	})
}

// TestHugeIndexIsRefused: model.safetensors.index.json is read whole, so
// one past MaxIndexBytes is refused before it is read.
func TestHugeIndexIsRefused(t *testing.T) {
	dir := writeTemp(t, "model.safetensors.index.json", nil)
	if err := os.Truncate(filepath.Join(dir, "model.safetensors.index.json"), MaxIndexBytes+1); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir)
	want := fmt.Sprintf("model.safetensors.index.json has %d bytes, more than the %d Minerva reads", MaxIndexBytes+1, MaxIndexBytes)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want an error containing %q", err, want)
	}
}
