package main

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/minerva-ml/minerva/codegen/artifact"
	"github.com/minerva-ml/minerva/compiler"
	fortunemodel "github.com/minerva-ml/minerva/examples/fortune/artifact/go"
	"github.com/minerva-ml/minerva/models"
	"github.com/minerva-ml/minerva/program"
	"github.com/minerva-ml/minerva/runtime/engine"
	"github.com/minerva-ml/minerva/runtime/gpu"
	"github.com/minerva-ml/minerva/runtime/loader"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// TestGeneratedPackageIsCurrent regenerates the artifact in memory and
// fails when the checked-in files differ: run `go generate
// ./examples/fortune` after changing the compiler.
func TestGeneratedPackageIsCurrent(t *testing.T) {
	opts, err := compiler.SourceOptions("../../models/gpt-oss.arch", "../../models/fortune/config.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	opts.Plan = compiler.PlanOptions{Ctx: 512}
	u, err := compiler.Compile(opts)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := artifact.Write(dir, artifact.Build(u, u.Generated), u.Generated.Metal, "fortunemodel"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"manifest.json", "kernels.metal", "go/model.go", "go/manifest.json", "go/kernels.metal"} {
		want, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("artifact", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("examples/fortune/artifact/%s is stale: run go generate ./examples/fortune", name)
		}
	}
}

// TestGeneratedPackageMatchesLogits runs the generated package (the
// dispatch sequence it issues, on mslemu) and compares its logits with
// what `minerva logits` computes for the same ids on the CPU backend.
func TestGeneratedPackageMatchesLogits(t *testing.T) {
	if _, err := exec.LookPath("g++"); err != nil {
		t.Skip("mslemu needs a C++17 compiler (apt-get install g++); .ci/run installs it")
	}
	ids := []int32{325, 2910, 298, 681, 309, 290, 316, 386, 262, 1110, 287, 257, 1700, 318, 340, 13, 198, 464, 2004, 77, 1303, 262, 981, 13}
	// minerva logits: the first half as a prefill, the rest one at a time.
	lm, err := loader.Load(loader.Spec{Arch: "../../models/gpt-oss.arch", Model: "../../models/fortune", Plan: compiler.PlanOptions{Ctx: 512}, Backend: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	defer lm.Close()
	want, err := engine.NewSession(lm.Backend).AllLogits(ids, len(ids)/2)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := weights.FromBytes("fortune", models.FortuneFile("model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	p, _, err := program.DecodeArtifact(fortunemodel.Manifest, fortunemodel.KernelsMetal, "fortunemodel")
	if err != nil {
		t.Fatal(err)
	}
	dev, err := gpu.NewEmulator(p.Code, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	m, err := fortunemodel.New(dev, ck)
	if err != nil {
		t.Fatal(err)
	}
	// Forward's logits are valid until the next call: keep copies. The
	// calls cover the package's three kinds of table: 17 tokens (the
	// prefill kernels), 3 (a few tokens: the decode kernels of the dense
	// matmuls, fewTable16) and 1 (stepTable). The CPU's logits do not
	// depend on how the calls split the ids.
	var got []float32
	for _, c := range [][2]int{{0, 17}, {17, 20}, {20, 21}, {21, 22}, {22, 23}, {23, 24}} {
		l, err := m.Forward(ids[c[0]:c[1]], c[0])
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, l...)
	}
	var num, den float64
	for i := range want {
		d := float64(got[i] - want[i])
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	if e := math.Sqrt(num / den); e > 1e-3 {
		t.Fatalf("the generated package's logits differ from minerva logits: relative error %.3e", e)
	}
}
