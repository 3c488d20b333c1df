// Package artifact writes and reads a compiled model as a directory:
//
//	manifest.json   format and compiler versions, a hash of the source and
//	                config, the weight manifest, the KV and arena plans, the
//	                kernel table, the dispatch program and the program's IR
//	kernels.metal   every kernel, specialised for the model
//	go/             a Go package (package NAME) that embeds both and runs
//	                the dispatch sequence: the way an app ships one model
//
// Writing is deterministic: the same source, config and options give
// byte-identical directories. `minerva run DIR` and `minerva logits DIR`
// run an artifact without a Go toolchain.
package artifact

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/minerva-ml/minerva/codegen"
	"github.com/minerva-ml/minerva/codegen/gocode"
	"github.com/minerva-ml/minerva/codegen/kernels"
	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/compiler/plan"
	"github.com/minerva-ml/minerva/runtime/program"
)

// FormatVersion changes whenever the manifest's meaning changes; readers
// refuse other versions. 2: bindings say whether the kernel writes them
// ("write"); barriers come from that, so a manifest without it would run
// without barriers.
const FormatVersion = 2

// Manifest is manifest.json. Its field names are an interface other tools
// read: keep them stable.
type Manifest struct {
	Format     int                 `json:"format"`
	Compiler   string              `json:"compiler"`
	Model      string              `json:"model"`
	SourceHash string              `json:"source_hash"`
	Source     string              `json:"source"`
	Config     []ConfigValue       `json:"config"`
	Plan       PlanOptions         `json:"plan"`
	Weights    []Tensor            `json:"weights"`
	KV         *plan.KV            `json:"kv"`
	Arena      *plan.Arena         `json:"arena"`
	Kernels    []Kernel            `json:"kernels"`
	Dispatches []*kernels.Dispatch `json:"dispatches"`
	// IR is the final program in canonical text (ir.Print).
	IR string `json:"ir"`
}

// ConfigValue is one evaluated config entry.
type ConfigValue struct {
	Name  string `json:"name"`
	Value any    `json:"value"`
}

// PlanOptions are the run-time shape the program was planned for.
type PlanOptions struct {
	Ctx   int    `json:"ctx"`
	KV    string `json:"kv"`
	Batch int    `json:"batch"`
}

// Tensor is one checkpoint tensor the model reads.
type Tensor struct {
	Name  string  `json:"name"`
	DType string  `json:"dtype"`
	Shape []int64 `json:"shape"`
}

// Kernel is one row of the kernel table.
type Kernel struct {
	Name       string   `json:"name"`
	Op         string   `json:"op"`
	Variant    string   `json:"variant"`
	Implements []string `json:"implements"`
	Threads    [3]int   `json:"threads"`
	TGMem      []int    `json:"threadgroup_memory"`
	Params     []Param  `json:"params"`
}

// Param is one kernel parameter.
type Param struct {
	Name  string `json:"name"`
	Index int    `json:"index"`
	Type  string `json:"type"`
}

// CompilerVersion names this compiler in manifests.
func CompilerVersion() string { return "minervac " + compiler.Version + " (" + runtime.Version() + ")" }

// Build makes the manifest of a compiled unit.
func Build(u *compiler.Unit, out *codegen.Output) *Manifest {
	m := &Manifest{
		Format:     FormatVersion,
		Compiler:   CompilerVersion(),
		Model:      u.Func.Model,
		Source:     u.Opts.File,
		SourceHash: SourceHash(u.Opts),
		KV:         u.KV,
		Arena:      u.Arena,
		Dispatches: out.Dispatches,
		IR:         ir.Print(u.Func),
	}
	m.Plan = PlanOptions{Ctx: int(u.KV.Ctx), KV: string(u.KV.Format), Batch: int(u.Arena.Batch)}
	for _, e := range u.Config.Entries {
		m.Config = append(m.Config, ConfigValue{e.Name, e.Value})
	}
	for _, w := range u.Func.Weights {
		for _, t := range w.Tensors() {
			m.Weights = append(m.Weights, Tensor{Name: t.Name, DType: t.DType.String(), Shape: []int64(t.Shape)})
		}
	}
	for _, k := range out.Kernels {
		mk := Kernel{Name: k.Name, Op: k.Kind, Variant: string(k.Variant), Implements: k.Ops, Threads: k.Threads, TGMem: k.TGMem}
		for _, p := range k.Params {
			mk.Params = append(mk.Params, Param{p.Name, p.Index, p.Type})
		}
		m.Kernels = append(m.Kernels, mk)
	}
	return m
}

// SourceHash identifies what was compiled: the source, the config.json,
// the --set overrides and the plan options.
func SourceHash(o compiler.Options) string {
	h := sha256.New()
	fmt.Fprintf(h, "source %d\n%s\n", len(o.Source), o.Source)
	if o.JSON != nil {
		fmt.Fprintf(h, "config %d\n%s\n", len(o.JSON.Text), o.JSON.Text)
	}
	for _, s := range o.Sets {
		fmt.Fprintf(h, "set %s\n", s)
	}
	po := o.Plan.WithDefaults()
	fmt.Fprintf(h, "plan %d %s %d\n", po.Ctx, po.KV, po.Batch)
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// Marshal renders manifest.json deterministically.
func (m *Manifest) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Write writes the artifact directory.
func Write(dir string, m *Manifest, metal string, goPackage string) error {
	mb, err := m.Marshal()
	if err != nil {
		return err
	}
	gosrc, err := GoPackage(m, goPackage)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"manifest.json":    mb,
		"kernels.metal":    []byte(metal),
		"go/model.go":      gosrc,
		"go/manifest.json": mb,
		"go/kernels.metal": []byte(metal),
	}
	for name, data := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// IsArtifact reports whether dir holds a compiled artifact.
func IsArtifact(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "manifest.json"))
	return err == nil
}

// Read loads an artifact's program and dispatch program.
func Read(dir string) (*program.Program, *codegen.Output, *Manifest, error) {
	mb, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, nil, fmt.Errorf("%s is not a compiled artifact (no manifest.json); compile one with minervac compile ARCH -o %s", dir, dir)
		}
		return nil, nil, nil, err
	}
	metal, err := os.ReadFile(filepath.Join(dir, "kernels.metal"))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("artifact %s: %v", dir, err)
	}
	return Decode(mb, string(metal), dir)
}

// Decode reads a manifest (and its kernels.metal) from bytes: the
// generated Go package embeds both.
func Decode(manifest []byte, metal string, where string) (*program.Program, *codegen.Output, *Manifest, error) {
	var probe struct {
		Format   int    `json:"format"`
		Compiler string `json:"compiler"`
	}
	if err := json.Unmarshal(manifest, &probe); err != nil {
		return nil, nil, nil, fmt.Errorf("artifact %s: manifest.json is not valid JSON: %v", where, err)
	}
	if probe.Format != FormatVersion {
		return nil, nil, nil, fmt.Errorf("artifact %s has format %d (written by %s), but this minerva reads format %d: recompile it with this version: minervac compile ARCH -o %s",
			where, probe.Format, probe.Compiler, FormatVersion, where)
	}
	var m Manifest
	if err := json.Unmarshal(manifest, &m); err != nil {
		return nil, nil, nil, fmt.Errorf("artifact %s: manifest.json: %v", where, err)
	}
	f, err := ir.Parse(m.IR)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("artifact %s: its IR does not parse: %v", where, err)
	}
	if err := ir.Verify(f); err != nil {
		return nil, nil, nil, fmt.Errorf("artifact %s: %v", where, err)
	}
	if m.KV == nil || m.Arena == nil {
		return nil, nil, nil, fmt.Errorf("artifact %s: the manifest has no plans", where)
	}
	if err := checkDerived(f, &m); err != nil {
		return nil, nil, nil, fmt.Errorf("artifact %s: manifest.json: %v: it was edited or is damaged; recompile with minervac compile %s -o %s",
			where, err, m.Source, where)
	}
	p := &program.Program{Model: m.Model, Func: f, KV: m.KV, Arena: m.Arena}
	for _, c := range m.Config {
		p.Config = append(p.Config, program.ConfigValue{Name: c.Name, Value: c.Value})
	}
	out := &codegen.Output{Dispatches: m.Dispatches, Metal: metal}
	for _, k := range m.Kernels {
		kk := &kernels.Kernel{Name: k.Name, Kind: k.Op, Variant: kernels.Variant(k.Variant), Ops: k.Implements, Threads: k.Threads, TGMem: k.TGMem}
		for _, p := range k.Params {
			kk.Params = append(kk.Params, kernels.Param{Name: p.Name, Index: p.Index, Type: p.Type})
		}
		out.Kernels = append(out.Kernels, kk)
	}
	if len(out.Dispatches) != len(f.Ops) {
		return nil, nil, nil, fmt.Errorf("artifact %s: %d dispatches for %d ops", where, len(out.Dispatches), len(f.Ops))
	}
	return p, out, &m, nil
}

// GoPackage renders the artifact's Go package.
func GoPackage(m *Manifest, pkg string) ([]byte, error) {
	f, err := ir.Parse(m.IR)
	if err != nil {
		return nil, fmt.Errorf("BUG: the manifest's IR does not parse: %v", err)
	}
	ks := map[string]*kernels.Kernel{}
	for _, k := range m.Kernels {
		kk := &kernels.Kernel{Name: k.Name, Kind: k.Op, Variant: kernels.Variant(k.Variant), Ops: k.Implements, Threads: k.Threads, TGMem: k.TGMem}
		for _, p := range k.Params {
			kk.Params = append(kk.Params, kernels.Param{Name: p.Name, Index: p.Index, Type: p.Type})
		}
		ks[k.Name] = kk
	}
	gm := &gocode.Model{
		Package: pkg, Name: m.Model, Source: m.Source, Arena: m.Arena, KV: m.KV,
		Input: f.Input.ID, Output: f.Output.ID, Vocab: int(f.Output.Type.Shape.Last()),
		Kernels: ks, Dispatches: m.Dispatches,
	}
	for _, t := range m.Weights {
		gm.Tensors = append(gm.Tensors, gocode.Tensor{Name: t.Name, DType: t.DType, Shape: t.Shape})
	}
	// Weights stored one tensor per expert are bound as the tensor the
	// package assembles from their parts.
	for _, w := range f.Weights {
		st, ok := w.Stacked()
		if !ok {
			continue
		}
		t := gocode.Tensor{Name: w.Checkpoint, DType: w.DType.String(), Shape: []int64(w.Shape)}
		for j := int64(0); j < st.Hi-st.Lo; j++ {
			t.Parts = append(t.Parts, st.Part(j))
		}
		gm.Tensors = append(gm.Tensors, t)
	}
	return gocode.Generate(gm)
}

// PackageName derives a Go package name from a model's name: "gpt-oss"
// gives "gptoss".
func PackageName(model string) string {
	var b []rune
	for _, r := range strings.ToLower(model) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9' && len(b) > 0) {
			b = append(b, r)
		}
	}
	if len(b) == 0 {
		return "model"
	}
	return string(b)
}

// MetallibName is the precompiled library an artifact may carry.
const MetallibName = "kernels.metallib"

// BuildMetallib compiles the artifact's kernels.metal with Xcode's Metal
// compiler into kernels.metallib, which the Metal backend then loads
// instead of compiling the source at start-up. The language version is
// set explicitly, as the run-time compiler's is.
func BuildMetallib(dir, languageStd string) error {
	if _, err := exec.LookPath("xcrun"); err != nil {
		return fmt.Errorf("--metallib needs Xcode's Metal compiler (xcrun metal), which only exists on macOS; omit --metallib and the Metal backend compiles kernels.metal when it starts")
	}
	air := filepath.Join(dir, "kernels.air")
	defer os.Remove(air)
	steps := [][]string{
		{"xcrun", "-sdk", "macosx", "metal", "-std=" + languageStd, "-c", filepath.Join(dir, "kernels.metal"), "-o", air},
		{"xcrun", "-sdk", "macosx", "metallib", air, "-o", filepath.Join(dir, MetallibName)},
	}
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s failed: %v\n%s", strings.Join(s, " "), err, out)
		}
	}
	return nil
}
