// Package testcache keeps the tokenizer cache (runtime/tokenizer, which
// writes one file per tokenizer.json it parses) of a package's tests out
// of the user's cache directory.
package testcache

import (
	"fmt"
	"os"
	"testing"
)

// Use points MINERVA_CACHE_DIR at a new temporary directory for the rest
// of the test process and returns a function that removes it.
func Use() (remove func(), err error) {
	dir, err := os.MkdirTemp("", "minerva-cache-test")
	if err != nil {
		return nil, err
	}
	os.Setenv("MINERVA_CACHE_DIR", dir)
	return func() { os.RemoveAll(dir) }, nil
}

// Run is a TestMain's body for a package that needs nothing else set up:
// it runs the tests with Use's directory and returns their exit code.
func Run(m *testing.M) int {
	remove, err := Use()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer remove()
	return m.Run()
}
