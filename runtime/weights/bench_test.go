package weights

import (
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var fortuneDir = flag.String("fortune", "../../models/fortune",
	"directory of the fortune checkpoint (model.safetensors and config.json)")

func fortune(t testing.TB) (string, []TensorSpec) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(*fortuneDir, "model.safetensors")); err != nil {
		t.Skipf("the fortune checkpoint is not in %s (it belongs in models/fortune; or pass -fortune DIR): %v", *fortuneDir, err)
	}
	return *fortuneDir, gptOssManifest(readGptOssConfig(t, filepath.Join(*fortuneDir, "config.json")))
}

func TestOpenValidateFortune(t *testing.T) {
	dir, manifest := fortune(t)
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Validate(manifest, hint); err != nil {
		t.Fatal(err)
	}
	if got := c.Files()[0]; len(got.Data) != 8931168 {
		t.Errorf("fortune has %d bytes, want 8931168", len(got.Data))
	}
}

func BenchmarkOpenValidateFortune(b *testing.B) {
	dir, manifest := fortune(b)
	for b.Loop() {
		c, err := Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Validate(manifest, hint); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// BenchmarkDequantMXFP4Row decodes rows of 2880 values, the hidden size of
// gpt-oss-20b and -120b; bytes/s counts the MXFP4 input.
func BenchmarkDequantMXFP4Row(b *testing.B) {
	const n = 2880
	rng := rand.New(rand.NewPCG(7, 8))
	blocks := make([]byte, n/2)
	scales := make([]byte, n/32)
	for i := range blocks {
		blocks[i] = byte(rng.UintN(256))
	}
	for i := range scales {
		scales[i] = byte(118 + rng.UintN(10))
	}
	dst := make([]float32, n)
	b.SetBytes(int64(len(blocks) + len(scales)))
	for b.Loop() {
		DequantMXFP4Row(dst, blocks, scales)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gvalues/s")
}

// benchmarkHalfToF32 decodes 2^20 values that look like weights (normal,
// σ 0.02, some small enough to be f16 subnormals); bytes/s counts the
// 16-bit input.
func benchmarkHalfToF32(b *testing.B, encode func([]byte, []float32), decode func([]float32, []byte)) {
	const n = 1 << 20
	rng := rand.New(rand.NewPCG(9, 10))
	values := make([]float32, n)
	for i := range values {
		values[i] = float32(rng.NormFloat64() * 0.02)
	}
	src := make([]byte, 2*n)
	encode(src, values)
	dst := make([]float32, n)
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		decode(dst, src)
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gvalues/s")
}

func BenchmarkBF16ToF32(b *testing.B) { benchmarkHalfToF32(b, F32ToBF16, BF16ToF32) }
func BenchmarkF16ToF32(b *testing.B)  { benchmarkHalfToF32(b, F32ToF16, F16ToF32) }

// BenchmarkOpenMaxTensors opens a header at the bound: MaxTensorsPerFile
// one-byte tensors. Compare it with BenchmarkOpenValidateFortune in the
// same run (docs/limits.md).
func BenchmarkOpenMaxTensors(b *testing.B) {
	data := craft(manyTensors(MaxTensorsPerFile), MaxTensorsPerFile)
	b.ReportAllocs()
	for b.Loop() {
		c, err := FromBytes("x.safetensors", data)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// BenchmarkCheckValuesFortune is the load-time check of the fortune
// model's vectors and MXFP4 scales (runtime/loader's choice, restated: the
// tensors that are not matrices or MXFP4 codes).
func BenchmarkCheckValuesFortune(b *testing.B) {
	dir, manifest := fortune(b)
	c, err := Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var values, scales []string
	var n int64
	for _, s := range manifest {
		t, _ := c.Tensor(s.Name)
		switch {
		case strings.HasSuffix(s.Name, "_scales"):
			scales = append(scales, s.Name)
		case len(s.Shape) == 1 || strings.HasSuffix(s.Name, "_bias"):
			values = append(values, s.Name)
		default:
			continue
		}
		n += int64(len(t.Data))
	}
	b.SetBytes(n)
	for b.Loop() {
		if err := c.CheckValues(values, scales, ""); err != nil {
			b.Fatal(err)
		}
	}
}
