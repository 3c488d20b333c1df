//go:build !linux

package tokenizer

// hugeSlice allocates a table of n Ts.
func hugeSlice[T any](owner *Tokenizer, n int) []T { return make([]T, n) }
