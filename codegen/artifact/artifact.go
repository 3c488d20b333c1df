// Package artifact writes a compiled model as a directory:
//
//	manifest.json   format and compiler versions, a hash of the source and
//	                config, the weight manifest, the KV and arena plans, the
//	                kernel table, the dispatch program and the program's IR
//	kernels.metal   every kernel, specialised for the model
//	go/             a Go package (package NAME) that embeds both and runs
//	                the dispatch sequence: the way an app ships one model
//
// Writing is deterministic: the same source, config and options give
// byte-identical directories. program.ReadArtifact reads one without the
// compiler; Read here also recomputes what the manifest derives from its
// IR, so an edited figure is refused before a backend indexes by it.
// `minerva run DIR` and `minerva logits DIR` run an artifact without a Go
// toolchain.
package artifact

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/minerva-ml/minerva/codegen/gocode"
	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/program"
)

// Manifest is manifest.json; program defines it, with the reader.
type Manifest = program.Manifest

// CompilerVersion names this compiler in manifests.
func CompilerVersion() string { return "minervac " + compiler.Version + " (" + runtime.Version() + ")" }

// Build makes the manifest of a compiled unit.
func Build(u *compiler.Unit, out *program.Code) *Manifest {
	m := &Manifest{
		Format:     program.FormatVersion,
		Compiler:   CompilerVersion(),
		Model:      u.Func.Model,
		Source:     u.Opts.File,
		SourceHash: SourceHash(u.Opts),
		KV:         u.KV,
		Arena:      u.Arena,
		Dispatches: out.Dispatches,
		IR:         ir.Print(u.Func),
	}
	m.Plan = program.PlanOptions{Ctx: int(u.KV.Ctx), KV: string(u.KV.Format), Batch: int(u.Arena.Batch)}
	for _, e := range u.Config.Entries {
		m.Config = append(m.Config, program.ConfigValue{Name: e.Name, Value: e.Value})
	}
	for _, w := range u.Func.Weights {
		for _, t := range w.Tensors() {
			m.Weights = append(m.Weights, program.Tensor{Name: t.Name, DType: t.DType.String(), Shape: []int64(t.Shape)})
		}
	}
	m.Kernels = out.Kernels
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

// Read loads an artifact directory as program.ReadArtifact does, then
// checks every figure the manifest derives from its IR (checkDerived).
func Read(dir string) (*program.Program, *Manifest, error) {
	p, m, err := program.ReadArtifact(dir)
	if err != nil {
		return nil, nil, err
	}
	return checked(p, m, dir)
}

// Decode reads a manifest and its kernels.metal from bytes as
// program.DecodeArtifact does, then checks every figure the manifest
// derives from its IR. where names the artifact in errors.
func Decode(manifest []byte, metal string, where string) (*program.Program, *Manifest, error) {
	p, m, err := program.DecodeArtifact(manifest, metal, where)
	if err != nil {
		return nil, nil, err
	}
	return checked(p, m, where)
}

func checked(p *program.Program, m *Manifest, where string) (*program.Program, *Manifest, error) {
	if err := checkDerived(p.Func, m); err != nil {
		return nil, nil, fmt.Errorf("artifact %s: manifest.json: %v: it was edited or is damaged; recompile with minervac compile %s -o %s",
			where, err, m.Source, where)
	}
	return p, m, nil
}

// GoPackage renders the artifact's Go package.
func GoPackage(m *Manifest, pkg string) ([]byte, error) {
	f, err := ir.Parse(m.IR)
	if err != nil {
		return nil, fmt.Errorf("BUG: the manifest's IR does not parse: %v", err)
	}
	ks := map[string]*program.Kernel{}
	for _, k := range m.Kernels {
		ks[k.Name] = k
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
		{"xcrun", "-sdk", "macosx", "metallib", air, "-o", filepath.Join(dir, program.MetallibName)},
	}
	for _, s := range steps {
		if out, err := exec.Command(s[0], s[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s failed: %v\n%s", strings.Join(s, " "), err, out)
		}
	}
	return nil
}
