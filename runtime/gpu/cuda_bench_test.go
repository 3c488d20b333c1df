//go:build linux || darwin

package gpu

import (
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/internal/fixtures"
	"github.com/minerva-ml/minerva/program"
	"github.com/minerva-ml/minerva/runtime/cuda"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// TestCUDASpeed measures a full-size model on the GPU: the device-to-device
// copy bandwidth and the decode floor it sets, prefill and decode speed
// with f16 and q8 caches, and a per-kernel table of one decode step. It
// runs only when MINERVA_CUDA_BENCH names a model directory (a
// `minerva synth gpt-oss --out DIR` checkpoint); docs/gpu.md gives the
// command. The report goes to stdout.
func TestCUDASpeed(t *testing.T) {
	dir := os.Getenv("MINERVA_CUDA_BENCH")
	if dir == "" {
		t.Skip("set MINERVA_CUDA_BENCH=DIR (a minerva synth checkpoint) on a machine with an NVIDIA GPU; docs/gpu.md")
	}
	needCUDA(t)
	arch := os.Getenv("MINERVA_CUDA_BENCH_ARCH")
	if arch == "" {
		arch = "../../models/gpt-oss.arch"
	}
	dev, err := cuda.Open()
	if err != nil {
		t.Fatal(err)
	}
	bw := copyBandwidth(t, dev)
	fmt.Printf("device: %s, %.1f GiB\n", dev.Name(), float64(dev.TotalMemory())/(1<<30))
	fmt.Printf("device-to-device copy bandwidth (read + write): %.0f GB/s\n", bw/1e9)
	ck, err := weights.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	ctxs := []int{4096, 32768}
	kvs := []string{"f16", "q8"}
	// MINERVA_CUDA_BENCH_QUICK=1: f16 only, no prefill, a few decode steps
	// at 4K (for a profiler such as ncu, which replays each kernel).
	quick := os.Getenv("MINERVA_CUDA_BENCH_QUICK") == "1"
	if quick {
		ctxs, kvs = []int{4096}, []string{"f16"}
	}
	// MINERVA_CUDA_BENCH_DECODE=1: the f16 cache's decode figures and
	// kernel table only (no prefill, no q8 pass), to compare two builds'
	// kernels in one device session.
	decodeOnly := os.Getenv("MINERVA_CUDA_BENCH_DECODE") == "1"
	if decodeOnly {
		kvs = []string{"f16"}
	}
	for _, kv := range kvs {
		opts, err := compiler.SourceOptions(arch, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		opts.Plan = compiler.PlanOptions{KV: kv, Ctx: ctxs[len(ctxs)-1] + 256, Batch: 512}
		u, err := compiler.Compile(opts)
		if err != nil {
			t.Fatal(err)
		}
		p := u.Program()
		if err := p.Validate(ck, arch); err != nil {
			t.Fatal(err)
		}
		perTok := weightBytesPerToken(p, ck)
		if kv == "f16" {
			fmt.Printf("weights read per decoded token: %.3f GB; decode floor at the copy bandwidth: %.0f tok/s (%.3f ms/token)\n",
				perTok/1e9, bw/perTok, 1e3*perTok/bw)
		}
		t0 := time.Now()
		gd, err := NewCUDA(p.Code)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("[%s] NVRTC compile + load of %d kernels: %.1f s\n", kv, len(u.Generated.Kernels), time.Since(t0).Seconds())
		res := CUDAKernelResources(gd)
		var rn []string
		for k := range res {
			rn = append(rn, k)
		}
		sort.Strings(rn)
		for _, k := range rn {
			fmt.Printf("[%s]   %s: %d registers, %d local bytes per thread\n", kv, k, res[k][0], res[k][1])
		}
		t0 = time.Now()
		m, err := Load(p, ck, gd)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("[%s] weights copied to the GPU in %.1f s\n", kv, time.Since(t0).Seconds())
		rng := rand.New(rand.NewSource(1))
		tokens := func(n int) []int32 {
			ids := make([]int32, n)
			for i := range ids {
				ids[i] = int32(rng.Intn(p.Vocab()))
			}
			return ids
		}
		// Prefill: one warm-up call, then a 512-token prompt in one call and
		// a 4096-token prompt in eight.
		prompts := []int{512, 4096}
		if os.Getenv("MINERVA_CUDA_BENCH_SHORT") == "1" {
			prompts = prompts[:1] // the 4096-token prompt alone takes ~45 s
		}
		if quick || decodeOnly {
			prompts = nil
		} else if _, err := m.Forward(tokens(512), 0); err != nil {
			t.Fatal(err)
		}
		for _, n := range prompts {
			ids := tokens(n)
			t0 := time.Now()
			for pos := 0; pos < n; pos += 512 {
				if _, err := m.Forward(ids[pos:pos+512], pos); err != nil {
					t.Fatal(err)
				}
			}
			s := time.Since(t0).Seconds()
			fmt.Printf("[%s] prefill %d tokens (calls of 512): %.0f tok/s (%.3f s)\n", kv, n, float64(n)/s, s)
		}
		// Decode at each context: the cache holds random values (finite,
		// |x| < 2) at every position, then steps run at positions ctx...
		fillKV(m.KVBuffer(), rng)
		var decode4K float64
		for _, c := range ctxs {
			steps := 32
			if quick {
				steps = 2
			}
			ids := tokens(steps + 2)
			if _, err := m.Forward(ids[:1], c-2); err != nil { // warm-up
				t.Fatal(err)
			}
			t0 := time.Now()
			for i := 0; i < steps; i++ {
				if _, err := m.Forward(ids[i+1:i+2], c+i); err != nil {
					t.Fatal(err)
				}
			}
			s := time.Since(t0).Seconds() / float64(steps)
			if c == 4096 {
				decode4K = s
			}
			fmt.Printf("[%s] decode at context %d: %.1f tok/s (%.3f ms/token) = %.0f%% of the floor\n", kv, c, 1/s, 1e3*s, 100*(perTok/bw)/s)
		}
		if kv == "f16" && !quick {
			kernelTable(t, m, gd, p, ck, bw, 4096, 1)
			// MINERVA_CUDA_BENCH_CALLS=2,8: calls of that many tokens at
			// position 4096 and their kernel tables. A batched step of n
			// sequences runs these kernels (the decode kernels of the
			// dispatches whose decode_up_to reaches n, the prefill kernels
			// of the rest), so they show what a step of n costs.
			for _, f := range strings.Split(os.Getenv("MINERVA_CUDA_BENCH_CALLS"), ",") {
				n, err := strconv.Atoi(f)
				if err != nil || n < 2 {
					continue
				}
				ids := tokens(4 * n)
				t0 := time.Now()
				for i := 0; i < 4; i++ {
					if _, err := m.Forward(ids[i*n:(i+1)*n], 4096+i*n); err != nil {
						t.Fatal(err)
					}
				}
				s := time.Since(t0).Seconds() / 4
				fmt.Printf("[%s] a call of %d tokens at context 4096: %.3f ms (%.3f ms/token; a decode step %.2f× as long)\n", kv, n, 1e3*s, 1e3*s/float64(n), s/decode4K)
				kernelTable(t, m, gd, p, ck, bw, 4096, n)
			}
		}
		m.Close()
	}
}

// copyBandwidth is bytes read plus bytes written per second by
// device-to-device copies of 2 GiB, the median of 10.
func copyBandwidth(t *testing.T, dev *cuda.Device) float64 {
	const n = 2 << 30
	a, err := dev.Alloc(n)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Free()
	b, err := dev.Alloc(n)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Free()
	noise := make([]byte, 64<<20)
	rand.New(rand.NewSource(2)).Read(noise)
	for off := 0; off < n; off += len(noise) {
		a.Write(off, noise)
	}
	var times []float64
	for i := 0; i < 11; i++ {
		s, err := dev.Begin()
		if err != nil {
			t.Fatal(err)
		}
		e0, _ := s.Record()
		if err := s.CopyDtoD(b, a, n); err != nil {
			t.Fatal(err)
		}
		e1, _ := s.Record()
		ms, err := s.Elapsed(e0, e1)
		if err != nil {
			t.Fatal(err)
		}
		s.End()
		if i > 0 {
			times = append(times, ms)
		}
	}
	sort.Float64s(times)
	return 2 * n / (times[len(times)/2] / 1e3)
}

// weightBytesPerToken counts the checkpoint bytes one decoded token reads:
// every tensor once, except the experts' (only experts_per_tok of experts
// are read) and the embedding table (one row).
func weightBytesPerToken(p *program.Program, ck *weights.Checkpoint) float64 {
	cfg := map[string]float64{}
	for _, c := range p.Config {
		switch v := c.Value.(type) {
		case int64:
			cfg[c.Name] = float64(v)
		case float64:
			cfg[c.Name] = v
		}
	}
	var total float64
	for _, name := range ck.Names() {
		t, _ := ck.Tensor(name)
		b := float64(len(t.Data))
		switch {
		case strings.Contains(name, ".experts."):
			b *= cfg["experts_per_tok"] / cfg["experts"]
		case strings.Contains(name, "embed_tokens"):
			b /= float64(t.Shape[0])
		}
		total += b
	}
	return total
}

// fillKV writes random finite values over the whole cache: 16-bit words
// with the top exponent bit clear (f16 below 2 in magnitude; for q8 the
// int8 values are random and the f16 scales finite).
func fillKV(kv []byte, rng *rand.Rand) {
	rng.Read(kv)
	for i := 0; i+1 < len(kv); i += 2 {
		kv[i+1] &^= 0x40
	}
}

// kernelTable times every launch of decode steps at position pos and
// prints, per kernel, its share of the step's GPU time, the bytes it
// reads (weights as bound, experts scaled to the routes a token takes,
// KV-cache rows up to pos), its GB/s, the fraction of the copy bandwidth
// and its dispatches per token. With n > 1 it times calls of n tokens
// instead, and prints each kernel's share and time a call.
func kernelTable(t *testing.T, m *Model, dev Device, p *program.Program, ck *weights.Checkpoint, bw float64, pos, n int) {
	type row struct {
		ms    float64
		n     int
		bytes float64
	}
	rows := map[string]*row{}
	SetProfile(dev, func(k string, ms float64) {
		r := rows[k]
		if r == nil {
			r = &row{}
			rows[k] = r
		}
		r.ms += ms
		r.n++
	})
	const steps = 8
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32(1 + i)
	}
	for i := 0; i < steps; i++ {
		if _, err := m.Forward(ids, pos+i*n); err != nil {
			t.Fatal(err)
		}
	}
	SetProfile(dev, nil)
	// The kernels by their share of the GPU time, largest first.
	var total float64
	var names []string
	for k, r := range rows {
		total += r.ms
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return rows[names[i]].ms > rows[names[j]].ms })
	if n > 1 {
		fmt.Printf("\nper-kernel calls of %d tokens at position %d, f16 cache (%d calls, one event pair per launch): GPU time %.3f ms/call\n", n, pos, steps, total/steps)
		fmt.Printf("| kernel | share | ms/call | ms/token | dispatches/call |\n|---|---|---|---|---|\n")
		for _, k := range names {
			r := rows[k]
			fmt.Printf("| %s | %.1f%% | %.3f | %.3f | %d |\n", k, 100*r.ms/total, r.ms/steps, r.ms/steps/float64(n), r.n/steps)
		}
		return
	}
	// Bytes per dispatch, from the bindings.
	cfg := map[string]float64{}
	for _, c := range p.Config {
		if v, ok := c.Value.(int64); ok {
			cfg[c.Name] = float64(v)
		}
	}
	for _, d := range m.code.Dispatches {
		name, _ := d.KernelFor(1)
		r := rows[name]
		if r == nil {
			continue
		}
		for _, b := range d.Bindings {
			switch b.Kind {
			case program.BindWeight:
				tt, _ := ck.Tensor(b.Tensor)
				sz := float64(len(tt.Data))
				if strings.Contains(b.Tensor, ".experts.") {
					sz *= cfg["experts_per_tok"] / cfg["experts"]
				}
				if strings.Contains(b.Tensor, "embed_tokens") {
					sz /= float64(p.Vocab())
				}
				r.bytes += sz * steps
			case program.BindKV:
				l := p.KV.Layer(b.Cache)
				n := float64(min(int64(pos+1), l.Capacity))
				if l.Window > 0 {
					n = float64(min(int64(pos+1), l.Window))
				}
				per := l.KBytes
				if b.Part == "v" {
					per = l.VBytes
				}
				if strings.HasPrefix(name, "attend") {
					r.bytes += float64(per) / float64(l.Capacity) * n * steps
				}
			}
		}
	}
	fmt.Printf("\nper-kernel decode at position %d, f16 cache (%d steps, one event pair per launch): GPU time %.3f ms/token\n", pos, steps, total/steps)
	fmt.Printf("| kernel | share | ms/token | MB/token | GB/s | %% of copy bw | dispatches/token |\n|---|---|---|---|---|---|---|\n")
	for _, k := range names {
		r := rows[k]
		gbs := r.bytes / (r.ms / 1e3) / 1e9
		fmt.Printf("| %s | %.1f%% | %.3f | %.1f | %.0f | %.0f%% | %d |\n", k, 100*r.ms/total, r.ms/steps, r.bytes/steps/1e6, gbs, 100*gbs*1e9/bw, r.n/steps)
	}
}

// TestCUDASourceFile writes the CUDA C++ that the backend compiles for
// gpt-oss-20b (the plan TestCUDASpeed uses: f16 cache, 4K context) to the
// file MINERVA_CUDA_SOURCE names, prelude included, so that its machine
// code can be read on a GPU machine (scripts/gpu/sass.py counts each
// kernel's loads by width; docs/gpu.md). It needs no GPU.
func TestCUDASourceFile(t *testing.T) {
	out := os.Getenv("MINERVA_CUDA_SOURCE")
	if out == "" {
		t.Skip("set MINERVA_CUDA_SOURCE=FILE to write gpt-oss-20b's CUDA source (docs/gpu.md)")
	}
	p := fixtures.CompileArch(t, fixtures.Path(t, "models/gpt-oss.arch"), fixtures.Path(t, "testdata/configs/gpt-oss-20b.json"),
		compiler.PlanOptions{KV: "f16", Ctx: 4352, Batch: 512})
	src, kernels, err := CUDASource(p.Code)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s: %d kernels, %d bytes", out, len(kernels), len(src))
}
