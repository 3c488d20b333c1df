//go:build !linux

package tokenizer

import (
	"fmt"
	"os"
)

// readFile gives the file's bytes to parse.
func readFile(path string, parse func([]byte) (*Tokenizer, error)) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parse(data)
}

// mapCacheFile reads a tokenizer cache file; the Tokenizer built from it
// uses the memory in place.
func mapCacheFile(path string, maxSize int64) (data []byte, unmap func(), err error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if st.Size() > maxSize || !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s is not a cache file (%d bytes)", path, st.Size())
	}
	data, err = os.ReadFile(path)
	return data, func() {}, err
}
