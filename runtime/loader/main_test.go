package loader

import (
	"fmt"
	"os"
	"testing"
)

// TestMain puts the tokenizer cache in a directory of this test process's
// own, not the user's cache.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "minerva-cache-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("MINERVA_CACHE_DIR", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
