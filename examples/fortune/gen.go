// Command fortune shows how an app ships one model: it imports the Go
// package that minervac generated for the fortune model (artifact/go),
// binds the checkpoint embedded in the models package, and generates text
// on a Metal device: Metal on a Mac, or mslemu (the emitted Metal run on
// the CPU) anywhere else.
//
// Regenerate the package after changing the compiler:
//
//	go generate ./examples/fortune
package main

//go:generate go run ../../cmd/minervac compile ../../models/gpt-oss.arch --config ../../models/fortune/config.json --ctx 512 -o artifact --go-package fortunemodel
