package weights

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestStack: a stacked tensor is its parts' bytes in order, one more
// leading dimension, bound as a tensor of its own that Validate does not
// count as unexpected; parts that disagree are refused.
func TestStack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.safetensors")
	headers := []TensorHeader{
		{Name: "e.0.w", DType: BF16, Shape: []int64{2, 2}},
		{Name: "e.1.w", DType: BF16, Shape: []int64{2, 2}},
		{Name: "odd", DType: BF16, Shape: []int64{4}},
	}
	w, err := NewWriter(path, headers, nil)
	if err != nil {
		t.Fatal(err)
	}
	parts := [][]byte{{1, 2, 3, 4, 5, 6, 7, 8}, {9, 10, 11, 12, 13, 14, 15, 16}, {0, 0, 0, 0, 0, 0, 0, 0}}
	for i, h := range headers {
		if err := w.WriteTensor(h.Name, parts[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ck, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	if err := ck.Stack("e.{0..2}.w", []string{"e.0.w", "e.1.w"}); err != nil {
		t.Fatal(err)
	}
	if err := ck.Stack("e.{0..2}.w", []string{"e.0.w", "e.1.w"}); err != nil {
		t.Fatalf("stacking twice: %v", err)
	}
	st, ok := ck.Tensor("e.{0..2}.w")
	if !ok || !st.Stacked {
		t.Fatal("the stacked tensor is not in the checkpoint")
	}
	if want := append(append([]byte(nil), parts[0]...), parts[1]...); !bytes.Equal(st.Data, want) {
		t.Fatalf("stacked bytes %v, want %v", st.Data, want)
	}
	if len(st.Shape) != 3 || st.Shape[0] != 2 || st.Shape[1] != 2 || st.Shape[2] != 2 {
		t.Fatalf("stacked shape %v, want [2 2 2]", st.Shape)
	}
	if f := ck.Files()[st.File]; f.Mapped || len(f.Data) != 16 {
		t.Fatalf("the stacked tensor's file: mapped %v, %d bytes", f.Mapped, len(f.Data))
	}
	specs := []TensorSpec{{Name: "e.0.w", DType: BF16, Shape: []int64{2, 2}}, {Name: "e.1.w", DType: BF16, Shape: []int64{2, 2}}, {Name: "odd", DType: BF16, Shape: []int64{4}}}
	if err := ck.Validate(specs, ""); err != nil {
		t.Fatalf("Validate after stacking: %v", err)
	}
	err = ck.Stack("mixed", []string{"e.0.w", "odd"})
	if err == nil || !strings.Contains(err.Error(), "must agree") {
		t.Fatalf("stacking parts of two shapes: %v", err)
	}
	err = ck.Stack("gone", []string{"e.0.w", "e.7.w"})
	if err == nil || !strings.Contains(err.Error(), "e.7.w: missing") {
		t.Fatalf("stacking a missing part: %v", err)
	}
}
