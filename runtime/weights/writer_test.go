package weights

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nlpodyssey/safetensors"
)

// TestWriterReproducesTinyRandom rewrites tiny-random, tensor by tensor in
// file order, and expects the very bytes the Hugging Face safetensors
// library wrote.
func TestWriterReproducesTinyRandom(t *testing.T) {
	original := readTiny(t)
	c, err := FromBytes("tiny", original)
	if err != nil {
		t.Fatal(err)
	}
	tensors := make([]*Tensor, 0, len(c.Names()))
	for _, name := range c.Names() {
		tensor, _ := c.Tensor(name)
		tensors = append(tensors, tensor)
	}
	slices.SortFunc(tensors, func(a, b *Tensor) int { return int(a.Offset - b.Offset) })
	headers := make([]TensorHeader, len(tensors))
	for i, tensor := range tensors {
		headers[i] = TensorHeader{Name: tensor.Name, DType: tensor.DType, Shape: tensor.Shape}
	}
	path := filepath.Join(t.TempDir(), "model.safetensors")
	w, err := NewWriter(path, headers, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Back to front, to show that the order of writing does not matter.
	for _, tensor := range slices.Backward(tensors) {
		if err := w.WriteTensorFrom(tensor.Name, bytes.NewReader(tensor.Data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	written, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(written, original) {
		t.Fatalf("rewritten file differs from the original (%d vs %d bytes)", len(written), len(original))
	}
}

func TestWriterRoundTrip(t *testing.T) {
	headers := []TensorHeader{
		{Name: "b.weight", DType: BF16, Shape: []int64{2, 3}},
		{Name: "a.scalar", DType: F32, Shape: []int64{}},
		{Name: "empty", DType: I64, Shape: []int64{0, 5}},
		{Name: "q\"uoted\\name", DType: U8, Shape: []int64{5}},
	}
	data := map[string][]byte{
		"b.weight":       {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12},
		"a.scalar":       {0, 0, 0x80, 0x3f},
		"empty":          {},
		"q\"uoted\\name": {9, 8, 7, 6, 5},
	}
	metadata := map[string]string{"format": "pt", "author": "minerva"}
	write := func(path string) []byte {
		w, err := NewWriter(path, headers, metadata)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range headers {
			if err := w.WriteTensor(h.Name, data[h.Name]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		file, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return file
	}
	dir := t.TempDir()
	file := write(filepath.Join(dir, "one.safetensors"))
	if again := write(filepath.Join(dir, "two.safetensors")); !bytes.Equal(file, again) {
		t.Error("the same input wrote different files")
	}

	// The header, written out by hand from the format's definition.
	wantHeader := `{"__metadata__":{"author":"minerva","format":"pt"},` +
		`"b.weight":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]},` +
		`"a.scalar":{"dtype":"F32","shape":[],"data_offsets":[12,16]},` +
		`"empty":{"dtype":"I64","shape":[0,5],"data_offsets":[16,16]},` +
		`"q\"uoted\\name":{"dtype":"U8","shape":[5],"data_offsets":[16,21]}}`
	for len(wantHeader)%8 != 0 {
		wantHeader += " "
	}
	if got := string(file[8 : 8+len(wantHeader)]); got != wantHeader || file[0] != byte(len(wantHeader)) {
		t.Errorf("header\n%q\nwant\n%q", got, wantHeader)
	}

	// The library reads it back.
	st, err := safetensors.Deserialize(file)
	if err != nil {
		t.Fatal(err)
	}
	if st.Len() != len(headers) {
		t.Errorf("library sees %d tensors", st.Len())
	}
	for _, h := range headers {
		view, ok := st.Tensor(h.Name)
		if !ok || view.DType() != h.DType.library() || len(view.Shape()) != len(h.Shape) || !bytes.Equal(view.Data(), data[h.Name]) {
			t.Errorf("library reads %s back as %v %v %v", h.Name, view.DType(), view.Shape(), view.Data())
		}
	}

	// And so does Open.
	c, err := Open(filepath.Join(dir, "one.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, h := range headers {
		tensor, ok := c.Tensor(h.Name)
		if !ok || tensor.DType != h.DType || !slices.Equal(tensor.Shape, h.Shape) || !bytes.Equal(tensor.Data, data[h.Name]) {
			t.Errorf("Open reads %s back as %+v", h.Name, tensor)
		}
	}
	if got := c.Files()[0].Metadata; got["author"] != "minerva" || got["format"] != "pt" || len(got) != 2 {
		t.Errorf("metadata came back as %v", got)
	}
}

func TestWriterConcurrent(t *testing.T) {
	var headers []TensorHeader
	for i := range 64 {
		headers = append(headers, TensorHeader{Name: string(rune('A' + i)), DType: F32, Shape: []int64{int64(i + 1), 3}})
	}
	path := filepath.Join(t.TempDir(), "c.safetensors")
	w, err := NewWriter(path, headers, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i, h := range headers {
		wg.Go(func() {
			if err := w.WriteTensor(h.Name, bytes.Repeat([]byte{byte(i)}, 12*(i+1))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, h := range headers {
		tensor, _ := c.Tensor(h.Name)
		if !bytes.Equal(tensor.Data, bytes.Repeat([]byte{byte(i)}, 12*(i+1))) {
			t.Errorf("%s has the wrong data", h.Name)
		}
	}
}

func TestWriterErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.safetensors")
	headers := []TensorHeader{
		{Name: "a", DType: F16, Shape: []int64{4}},
		{Name: "b", DType: U8, Shape: []int64{3}},
		{Name: "c", DType: U8, Shape: []int64{1}},
	}
	w, err := NewWriter(path, headers, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{w.WriteTensor("a", make([]byte, 7)), "write " + path + `: tensor "a" needs 8 bytes, got 7`},
		{w.WriteTensor("z", nil), "write " + path + `: tensor "z" is not in the header`},
		{w.WriteTensor("b", []byte{1, 2, 3}), ""},
		{w.WriteTensor("b", []byte{1, 2, 3}), "write " + path + `: tensor "b" is written twice`},
	} {
		if got := errString(tc.err); got != tc.want {
			t.Errorf("error %q, want %q", got, tc.want)
		}
	}
	err = w.Close()
	if want := "write " + path + `: 2 of 3 tensors were not written: a, c`; errString(err) != want {
		t.Errorf("Close: %v, want %s", err, want)
	}
	assertNoFiles(t, dir)

	w, err = NewWriter(path, headers[:1], nil)
	if err != nil {
		t.Fatal(err)
	}
	err = w.WriteTensorFrom("a", strings.NewReader("short"))
	if want := "write " + path + `: tensor "a" needs 8 bytes, the reader gave 5`; errString(err) != want {
		t.Errorf("short reader: %v, want %s", err, want)
	}
	if err := w.Close(); err == nil {
		t.Error("Close after a failed write succeeded")
	}
	assertNoFiles(t, dir)

	// A failed write can be tried again.
	w, err = NewWriter(path, headers[:1], nil)
	if err != nil {
		t.Fatal(err)
	}
	w.WriteTensorFrom("a", strings.NewReader("short"))
	if err := w.WriteTensor("a", []byte("12345678")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	assertNoFiles(t, dir)

	for _, bad := range [][]TensorHeader{
		{{Name: "a", DType: F16, Shape: []int64{-1}}},
		{{Name: "a", DType: F16}, {Name: "a", DType: F16}},
		{{Name: "__metadata__", DType: F16}},
		{{Name: "a", DType: 0}},
		{{Name: "a", DType: F64, Shape: []int64{1 << 40, 1 << 40}}},
	} {
		if _, err := NewWriter(path, bad, nil); err == nil {
			t.Errorf("NewWriter accepted %+v", bad)
		}
	}
	assertNoFiles(t, dir)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func assertNoFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left behind %s", e.Name())
	}
}
