// Package models holds the architectures that ship with Minerva and the
// default model, all embedded in the binaries: gpt-oss.arch, llama.arch,
// qwen3.arch, qwen3-moe.arch, gemma3.arch, phi3.arch, mistral.arch, and the small trained gpt-oss "fortune" checkpoint (about 9 MB) that
// `minerva run` uses when no model is given.
package models

import (
	"embed"
	"fmt"
	"sort"
	"strings"
)

//go:embed gpt-oss.arch llama.arch qwen3.arch qwen3-moe.arch gemma3.arch phi3.arch mistral.arch fortune/config.json fortune/tokenizer.json
var files embed.FS

// fortuneCheckpoint is the default model's weights. It is a []byte
// variable rather than a file of the FS because the FS's ReadFile returns
// a copy, and a checkpoint is never copied: this slice is the binary's own
// data, mapped with it.
//
//go:embed fortune/model.safetensors
var fortuneCheckpoint []byte

// Arch is an embedded architecture.
type Arch struct {
	// File is the name diagnostics print: "models/gpt-oss.arch".
	File   string
	Source string
	// HF lists the Hugging Face architectures it implements.
	HF []string
}

var archs = []struct{ file string }{
	{"gpt-oss.arch"}, {"llama.arch"}, {"qwen3.arch"}, {"qwen3-moe.arch"}, {"gemma3.arch"}, {"phi3.arch"}, {"mistral.arch"},
}

// Archs returns the shipped architectures.
func Archs() []Arch {
	var out []Arch
	for _, a := range archs {
		b, err := files.ReadFile(a.file)
		if err != nil {
			panic("BUG: missing embedded " + a.file)
		}
		out = append(out, Arch{File: "models/" + a.file, Source: string(b), HF: hfNames(string(b))})
	}
	return out
}

// hfNames reads the `for "..."` list of the model header without a full
// parse: it is only used to pick a file.
func hfNames(src string) []string {
	for _, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "model ") {
			continue
		}
		_, after, ok := strings.Cut(line, " for ")
		if !ok {
			return nil
		}
		var names []string
		for _, part := range strings.Split(after, ",") {
			names = append(names, strings.Trim(strings.TrimSpace(part), `"`))
		}
		return names
	}
	return nil
}

// ForArchitecture finds the shipped .arch for a config.json
// "architectures" entry.
func ForArchitecture(names []string) (Arch, error) {
	all := Archs()
	var known []string
	for _, a := range all {
		for _, hf := range a.HF {
			known = append(known, hf)
			for _, n := range names {
				if n == hf {
					return a, nil
				}
			}
		}
	}
	sort.Strings(known)
	return Arch{}, fmt.Errorf("no shipped architecture implements %v (shipped: %s); pass an .arch file", names, strings.Join(known, ", "))
}

// FortuneFile returns one file of the default model. The checkpoint is
// returned without copying: do not modify it.
func FortuneFile(name string) []byte {
	if name == "model.safetensors" {
		return fortuneCheckpoint
	}
	b, err := files.ReadFile("fortune/" + name)
	if err != nil {
		panic("BUG: missing embedded fortune/" + name)
	}
	return b
}
