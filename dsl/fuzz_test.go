package dsl

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: any input parses or fails with diagnostics; it never panics
// or hangs. Seeded with the shipped models.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("../models/*.arch")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("model \"x\"\nconfig { a: int = 1 }")
	f.Add("")
	f.Fuzz(func(t *testing.T, src string) {
		file, err := Parse("fuzz.arch", src)
		if err == nil && file == nil {
			t.Fatal("nil file without error")
		}
		if err != nil && err.Error() == "" {
			t.Fatal("empty error")
		}
	})
}
