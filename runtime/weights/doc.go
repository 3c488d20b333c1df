// Package weights opens SafeTensors checkpoints for Minerva without copying
// them: every file is memory-mapped read-only and each tensor is a view into
// its mapping, so a 13 GB checkpoint costs page cache, not Go heap, and the
// Metal backend can wrap the same pages in no-copy GPU buffers.
//
// Opening a checkpoint checks the structure of every file before any tensor
// byte is touched (a truncated file is an error, never a SIGBUS), and
// Checkpoint.Validate checks every tensor against the weight manifest of a
// compiled model. Both report all problems in one *CheckpointError.
//
// The package also holds the exact decoders of the weight formats Minerva
// reads (bf16, f16, MXFP4) and a streaming Writer for checkpoints too large
// to build in memory.
//
// Header parsing is done by github.com/nlpodyssey/safetensors, which parses
// a []byte in place. Where it rejects a file, this package diagnoses the
// header itself, because the library's messages ("metadata incomplete
// buffer") name neither the tensors nor the byte ranges at fault.
package weights
