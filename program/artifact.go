package program

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/compiler/plan"
)

// An artifact is a compiled program as a directory (codegen/artifact
// writes it):
//
//	manifest.json   format and compiler versions, a hash of the source and
//	                config, the weight manifest, the KV and arena plans, the
//	                kernel table, the dispatch program and the program's IR
//	kernels.metal   every kernel, specialised for the model
//	go/             a Go package that embeds both and runs the dispatches
//
// Reading one needs no compiler: this file is all of it.

// FormatVersion changes whenever the manifest's meaning changes; readers
// refuse other versions. 2: bindings say whether the kernel writes them
// ("write"); barriers come from that, so a manifest without it would run
// without barriers. 3: a dispatch may have stages after its kernel
// ("then") and a scratch region ("scratch", bound as "scratch" after the
// arena's values); a reader of 2 would skip the stages.
const FormatVersion = 3

// MetallibName is the precompiled library an artifact may carry.
const MetallibName = "kernels.metallib"

// Manifest is manifest.json. Its field names are an interface other tools
// read: keep them stable.
type Manifest struct {
	Format     int           `json:"format"`
	Compiler   string        `json:"compiler"`
	Model      string        `json:"model"`
	SourceHash string        `json:"source_hash"`
	Source     string        `json:"source"`
	Config     []ConfigValue `json:"config"`
	Plan       PlanOptions   `json:"plan"`
	Weights    []Tensor      `json:"weights"`
	KV         *plan.KV      `json:"kv"`
	Arena      *plan.Arena   `json:"arena"`
	Kernels    []*Kernel     `json:"kernels"`
	Dispatches []*Dispatch   `json:"dispatches"`
	// IR is the final program in canonical text (ir.Print).
	IR string `json:"ir"`
}

// PlanOptions are the run-time shape the program was planned for.
type PlanOptions struct {
	Ctx   int    `json:"ctx"`
	KV    string `json:"kv"`
	Batch int    `json:"batch"`
}

// Tensor is one checkpoint tensor the model reads, as the manifest lists
// it.
type Tensor struct {
	Name  string  `json:"name"`
	DType string  `json:"dtype"`
	Shape []int64 `json:"shape"`
}

// Marshal renders manifest.json deterministically.
func (m *Manifest) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// IsArtifact reports whether dir holds a compiled artifact.
func IsArtifact(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "manifest.json"))
	return err == nil
}

// ReadArtifact loads an artifact directory's program, its Code included.
func ReadArtifact(dir string) (*Program, *Manifest, error) {
	mb, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("%s is not a compiled artifact (no manifest.json); compile one with minervac compile ARCH -o %s", dir, dir)
		}
		return nil, nil, err
	}
	metal, err := os.ReadFile(filepath.Join(dir, "kernels.metal"))
	if err != nil {
		return nil, nil, fmt.Errorf("artifact %s: %v", dir, err)
	}
	return DecodeArtifact(mb, string(metal), dir)
}

// DecodeArtifact reads a manifest (and its kernels.metal) from bytes: the
// generated Go package embeds both. where names the artifact in errors.
func DecodeArtifact(manifest []byte, metal string, where string) (*Program, *Manifest, error) {
	var probe struct {
		Format   int    `json:"format"`
		Compiler string `json:"compiler"`
	}
	if err := json.Unmarshal(manifest, &probe); err != nil {
		return nil, nil, fmt.Errorf("artifact %s: manifest.json is not valid JSON: %v", where, err)
	}
	if probe.Format != FormatVersion {
		return nil, nil, fmt.Errorf("artifact %s has format %d (written by %s), but this minerva reads format %d: recompile it with this version: minervac compile ARCH -o %s",
			where, probe.Format, probe.Compiler, FormatVersion, where)
	}
	var m Manifest
	if err := json.Unmarshal(manifest, &m); err != nil {
		return nil, nil, fmt.Errorf("artifact %s: manifest.json: %v", where, err)
	}
	f, err := ir.Parse(m.IR)
	if err != nil {
		return nil, nil, fmt.Errorf("artifact %s: its IR does not parse: %v", where, err)
	}
	if err := ir.Verify(f); err != nil {
		return nil, nil, fmt.Errorf("artifact %s: %v", where, err)
	}
	if m.KV == nil || m.Arena == nil {
		return nil, nil, fmt.Errorf("artifact %s: the manifest has no plans", where)
	}
	if len(m.Dispatches) != len(f.Ops) {
		return nil, nil, fmt.Errorf("artifact %s: %d dispatches for %d ops", where, len(m.Dispatches), len(f.Ops))
	}
	if err := checkKernelNames(&m); err != nil {
		return nil, nil, fmt.Errorf("artifact %s: %v: recompile it: minervac compile ARCH -o %s", where, err, where)
	}
	p := &Program{Model: m.Model, Func: f, KV: m.KV, Arena: m.Arena, Config: m.Config,
		Code: &Code{Kernels: m.Kernels, Dispatches: m.Dispatches, Metal: metal}}
	return p, &m, nil
}

// checkKernelNames requires every kernel a dispatch launches, its stages'
// included, to be one the manifest declares, so that an edited or
// truncated manifest fails here and not when a backend looks the kernel up
// mid-load.
func checkKernelNames(m *Manifest) error {
	declared := map[string]bool{}
	for _, k := range m.Kernels {
		if k != nil {
			declared[k.Name] = true
		}
	}
	for i, d := range m.Dispatches {
		if d == nil {
			return fmt.Errorf("dispatch %d is null", i)
		}
		for _, v := range slices.Sorted(maps.Keys(d.Kernels)) {
			if name := d.Kernels[v]; !declared[name] {
				return fmt.Errorf("op %d (%s) launches kernel %q (%s), which the manifest does not declare", d.Op, d.Kind, name, v)
			}
		}
		for _, s := range d.Then {
			if !declared[s.Kernel] {
				return fmt.Errorf("op %d (%s) has a %s stage launching kernel %q, which the manifest does not declare", d.Op, d.Kind, s.Variant, s.Kernel)
			}
		}
	}
	return nil
}
