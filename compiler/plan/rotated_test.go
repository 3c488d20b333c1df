package plan

import "testing"

// TestRotated is the rotation rule as docs/architecture.md's KV-cache table
// states it: q4 groups are always rotated, q8 rows when the head width is
// a multiple of 32, float formats never.
func TestRotated(t *testing.T) {
	for _, c := range []struct {
		f    KVFormat
		dim  int64
		want bool
	}{
		{KVQ4, 64, true}, {KVQ4, 32, true},
		{KVQ8, 64, true}, {KVQ8, 48, false}, {KVQ8, 16, false},
		{KVF16, 64, false}, {KVF32, 64, false},
	} {
		if got := c.f.Rotated(c.dim); got != c.want {
			t.Errorf("%s.Rotated(%d) = %v, want %v", c.f, c.dim, got, c.want)
		}
	}
}
