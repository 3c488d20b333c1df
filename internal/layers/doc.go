// Package layers holds the test that keeps Minerva's dependencies pointing
// one way. The front end (dsl, compiler, codegen, templates) produces a
// program; the backends (runtime) consume it. The two meet only in the
// leaves they share: package program (the compiled program: IR, plans,
// kernel table, dispatches, the artifact reader), program/abi, and the IR
// and plan types it is made of (compiler/ir, compiler/plan), which import
// nothing of the front end. Only runtime/loader (and runtime/synth, which
// writes checkpoints for a compiled unit) and cmd/ join the two halves.
//
// The package has no code; see layers_test.go.
package layers
