//go:build race

package engine_test

// raceEnabled shrinks the model tests under the race detector, which runs
// the CPU kernels about ten times slower; they check the cache, not
// concurrency.
const raceEnabled = true
