//go:build !linux

package tokenizer

import "os"

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
func mapCacheFile(path string) (data []byte, unmap func(), err error) {
	data, err = os.ReadFile(path)
	return data, func() {}, err
}
