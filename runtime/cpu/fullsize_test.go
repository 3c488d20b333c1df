package cpu

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/compiler/stats"
	"github.com/minerva-ml/minerva/program"
	"github.com/minerva-ml/minerva/runtime/engine"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// Full-size benchmarks. They run only when MINERVA_SYNTH_DIR names a
// checkpoint written by `minerva synth` (any architecture the directory's
// config.json names; docs/benchmarks.md uses gpt-oss-20b):
//
//	go run ./cmd/minerva synth gpt-oss --out /tmp/gpt-oss-20b
//	cat /tmp/gpt-oss-20b/*.safetensors > /dev/null   # warm the page cache
//	MINERVA_SYNTH_DIR=/tmp/gpt-oss-20b go test ./runtime/cpu/ -run '^$' \
//	    -bench 'FullSize|MemoryBandwidth' -benchtime 10x -timeout 60m
//
// The decode benchmark measures the machine's memory read bandwidth in the
// same run and reports the floor it sets: weight bytes read per token
// (minervac stats' weight_bytes_per_token) over bandwidth.

const synthDirEnv = "MINERVA_SYNTH_DIR"

// fullSize compiles the architecture the directory's config.json names
// and binds it to the checkpoint.
type fullSize struct {
	unit  *compiler.Unit
	prog  *program.Program
	ck    *weights.Checkpoint
	model *Model
	stats stats.Stats
}

func openFullSize(b testing.TB, po compiler.PlanOptions, opts Options) *fullSize {
	b.Helper()
	dir := os.Getenv(synthDirEnv)
	if dir == "" {
		b.Skipf("set %s to a checkpoint directory written by `minerva synth` to run the full-size benchmarks", synthDirEnv)
	}
	u := compileDir(b, dir, po)
	fs := &fullSize{unit: u, prog: u.Program()}
	var err error
	if fs.ck, err = weights.Open(dir); err != nil {
		b.Fatal(err)
	}
	if err := fs.prog.Validate(fs.ck, "ARCH"); err != nil {
		fs.ck.Close()
		b.Fatal(err)
	}
	if fs.model, err = Load(fs.prog, fs.ck, withBenchSpin(b, opts)); err != nil {
		fs.ck.Close()
		b.Fatal(err)
	}
	fs.stats = stats.Compute(u.Func, u.KV, u.Arena, u.Layers)
	b.Cleanup(func() { fs.model.Close(); fs.ck.Close() })
	return fs
}

// compileDir compiles the shipped architecture for dir/config.json.
func compileDir(b testing.TB, dir string, po compiler.PlanOptions) *compiler.Unit {
	b.Helper()
	js, err := compiler.ReadConfig(dir)
	if err != nil {
		b.Fatal(err)
	}
	if js == nil {
		b.Fatalf("%s has no config.json", dir)
	}
	arch := "../../models/gpt-oss.arch"
	if names, ok := js.Data["architectures"].([]any); ok && len(names) > 0 && names[0] == "LlamaForCausalLM" {
		arch = "../../models/llama.arch"
	}
	src, err := os.ReadFile(arch)
	if err != nil {
		b.Fatal(err)
	}
	u, err := compiler.Compile(compiler.Options{File: arch, Source: string(src), JSON: js, Plan: po})
	if err != nil {
		b.Fatal(err)
	}
	return u
}

// bandwidthBytes is the buffer memoryBandwidth reads: far larger than any
// cache.
var bandwidthBytes = 2 << 30

// memoryBandwidth reads a buffer far larger than any cache on every core
// at once and returns the best rate of a few passes, in bytes per second.
func memoryBandwidth(workers int) float64 {
	buf := make([]uint64, bandwidthBytes/8)
	for i := range buf {
		buf[i] = uint64(i)
	}
	return readBandwidth(workers, [][]uint64{buf}, 5)
}

// mappedBandwidth reads every file of a checkpoint through its mapping:
// the pages decoding reads. The first pass maps the pages; the best of
// the passes counts.
func mappedBandwidth(workers int, ck *weights.Checkpoint) float64 {
	var parts [][]uint64
	for _, f := range ck.Files() {
		if len(f.Data) >= 8 {
			parts = append(parts, unsafe.Slice((*uint64)(unsafe.Pointer(&f.Data[0])), len(f.Data)/8))
		}
	}
	return readBandwidth(workers, parts, 3)
}

// readBandwidth reads the buffers with every worker, in 64 KiB chunks
// dealt out in turn. Chunks, rather than one contiguous share per worker,
// are how the kernels read, and on this project's VM two workers reading
// two contiguous halves of one fresh allocation get no more than one.
func readBandwidth(workers int, parts [][]uint64, passes int) float64 {
	const chunk = 64 << 10 / 8
	total := 0
	for _, p := range parts {
		total += len(p) / chunk * chunk
	}
	best := 0.0
	sums := make([]uint64, workers)
	for pass := 0; pass < passes; pass++ {
		var wg sync.WaitGroup
		start := time.Now()
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				i := 0
				for _, p := range parts {
					for c := 0; c+chunk <= len(p); c += chunk {
						if i%workers == w {
							sums[w] += readSum(p[c : c+chunk])
						}
						i++
					}
				}
			}(w)
		}
		wg.Wait()
		best = max(best, float64(8*total)/time.Since(start).Seconds())
	}
	runtime.KeepAlive(sums)
	return best
}

// BenchmarkMemoryBandwidth reports the memory read bandwidth on all cores
// and on one, from an anonymous buffer (and from the checkpoint's mapping
// when MINERVA_SYNTH_DIR is set).
func BenchmarkMemoryBandwidth(b *testing.B) {
	if dir := os.Getenv(synthDirEnv); dir != "" {
		ck, err := weights.Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		defer ck.Close()
		for _, workers := range []int{runtime.GOMAXPROCS(0), 1} {
			b.Run(fmt.Sprintf("mapped/threads=%d", workers), func(b *testing.B) {
				var bw float64
				for b.Loop() {
					bw = mappedBandwidth(workers, ck)
				}
				b.ReportMetric(bw/1e9, "GB/s")
			})
		}
	}
	for _, workers := range []int{runtime.GOMAXPROCS(0), 1} {
		b.Run(fmt.Sprintf("anon/threads=%d", workers), func(b *testing.B) {
			var bw float64
			for b.Loop() {
				bw = memoryBandwidth(workers)
			}
			b.ReportMetric(bw/1e9, "GB/s")
		})
	}
}

// BenchmarkFMAPeak reports the machine's FMA throughput on all cores and
// on one: the peak prefill's GFLOP/s is compared with.
func BenchmarkFMAPeak(b *testing.B) {
	for _, workers := range []int{runtime.GOMAXPROCS(0), 1} {
		b.Run(fmt.Sprintf("threads=%d", workers), func(b *testing.B) {
			var peak float64
			for b.Loop() {
				peak = fmaThroughput(workers)
			}
			b.ReportMetric(peak/1e9, "GFLOP/s")
		})
	}
}

// procStatus reads the kB figures of /proc/self/status (Linux only).
func procStatus() map[string]float64 {
	out := map[string]float64{}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 2 && fields[1] == "kB" {
			if n, err := strconv.ParseFloat(fields[0], 64); err == nil {
				out[k] = n * 1024
			}
		}
	}
	return out
}

// prompt makes n token ids spread over the vocabulary.
func prompt(n, vocab int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32((1000 + 37*i) % vocab)
	}
	return out
}

func checkFinite(b testing.TB, logits []float32) {
	for i, v := range logits {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			b.Fatalf("logit %d is %g", i, v)
		}
	}
}

// decodeResult is one decode measurement.
type decodeResult struct {
	tokPerSec, bandwidth, floor float64
	bytesPerToken               int64
	rss                         map[string]float64 // /proc/self/status after the last step
	// minorFaults and majorFaults are page faults per timed step: minor
	// ones map a page already in the page cache, major ones read it from
	// disk (the checkpoint does not fit in the page cache).
	minorFaults, majorFaults float64
	// waitPerStep is how long the calling goroutine waited, per step, at
	// the ends of parallel loops for the other workers (pool.waited).
	waitPerStep time.Duration
	// cpuShare is the process's CPU time over the timed steps divided by
	// their wall time and the worker count: 1 when every worker ran the
	// whole time. On a shared machine it says how much of the cores the
	// run got (the floor's probe runs in the same conditions, but only
	// for a fraction of a second).
	cpuShare float64
}

// timer is the part of testing.B that runDecode and runPrefill use to
// keep their setup out of ns/op; tests pass nil.
type timer interface {
	StartTimer()
	StopTimer()
}

// faults reads this process's minor and major page-fault counts
// (/proc/self/stat; zero where there is none).
func faults() (minor, major float64) {
	f := procStat()
	if len(f) < 10 {
		return 0, 0
	}
	minor, _ = strconv.ParseFloat(f[7], 64)
	major, _ = strconv.ParseFloat(f[9], 64)
	return minor, major
}

// cpuSeconds is the process's user and system time so far, from
// /proc/self/stat in clock ticks of 1/100 s (Linux's USER_HZ); 0 where
// there is no /proc.
func cpuSeconds() float64 {
	f := procStat()
	if len(f) < 13 {
		return 0
	}
	user, _ := strconv.ParseFloat(f[11], 64)
	sys, _ := strconv.ParseFloat(f[12], 64)
	return (user + sys) / 100
}

// procStat is /proc/self/stat's fields after the command name.
func procStat() []string {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return nil
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
}

// fmaThroughput runs the FMA-throughput loop on every core at once and
// returns the best of three rates in flop/s: the machine's peak for the
// widest vectors its kernels use (0 without vector kernels).
func fmaThroughput(workers int) float64 {
	const iters = 2_000_000
	best := 0.0
	for pass := 0; pass < 3; pass++ {
		var wg sync.WaitGroup
		flops := make([]float64, workers)
		start := time.Now()
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				flops[w] = fmaPeak(iters)
			}(w)
		}
		wg.Wait()
		el := time.Since(start).Seconds()
		var sum float64
		for _, f := range flops {
			sum += f
		}
		best = max(best, sum/el)
	}
	return best
}

// runDecode prefills 16 tokens, then times steps decode steps, counting
// the page faults they take, then measures the memory bandwidth.
func runDecode(tb testing.TB, fs *fullSize, steps int, tm timer) decodeResult {
	p := prompt(16, fs.model.Vocab())
	if _, err := fs.model.Forward(p, 0); err != nil {
		tb.Fatal(err)
	}
	pos := len(p)
	// One untimed step first: the timed ones find their pages mapped.
	if _, err := fs.model.Forward([]int32{7}, pos); err != nil {
		tb.Fatal(err)
	}
	pos++
	var logits []float32
	if tm != nil {
		tm.StartTimer()
	}
	minor0, major0 := faults()
	cpu0 := cpuSeconds()
	wait0 := fs.model.pool.waitedSoFar()
	start := time.Now()
	// The timed steps carry a profile label, so that a -cpuprofile of the
	// benchmark can be cut to them (go tool pprof -tagfocus phase=decode):
	// the untimed prompt and the bandwidth probe are most of its samples.
	// Only this goroutine's share is labelled; the pool's workers run the
	// same loops.
	pprof.Do(context.Background(), pprof.Labels("phase", "decode"), func(context.Context) {
		for i := 0; i < steps; i++ {
			if pos == fs.model.Ctx() {
				pos = len(p)
			}
			var err error
			if logits, err = fs.model.Forward([]int32{int32((100 + i) % fs.model.Vocab())}, pos); err != nil {
				tb.Fatal(err)
			}
			pos++
		}
	})
	elapsed := time.Since(start)
	if tm != nil {
		tm.StopTimer()
	}
	minor1, major1 := faults()
	cpu1 := cpuSeconds()
	wait1 := fs.model.pool.waitedSoFar()
	checkFinite(tb, logits)
	rss := procStatus()
	// The bandwidth is measured after decoding, so that its buffer is not
	// in the resident figures. The floor is set by anonymous memory: the
	// checkpoint's mapping reads as fast once its pages are mapped and in
	// the page cache (docs/benchmarks.md), and where they are not, the
	// fault counts say so; reading all of a 13.7 GB mapping to measure it
	// on a machine that cannot cache it all would measure the disk.
	workers := runtime.GOMAXPROCS(0)
	bw := memoryBandwidth(workers)
	r := decodeResult{
		tokPerSec:     float64(steps) / elapsed.Seconds(),
		bandwidth:     bw,
		bytesPerToken: fs.stats.WeightBytesPerToken,
		rss:           rss,
		minorFaults:   (minor1 - minor0) / float64(steps),
		majorFaults:   (major1 - major0) / float64(steps),
		cpuShare:      (cpu1 - cpu0) / elapsed.Seconds() / float64(runtime.GOMAXPROCS(0)),
		waitPerStep:   (wait1 - wait0) / time.Duration(steps),
	}
	r.floor = bw / float64(r.bytesPerToken)
	return r
}

// BenchmarkFullSizeDecode decodes one token at a time after a 16-token
// prompt, next to the bandwidth floor measured in the same run, and reads
// the resident memory after the last step, under each kernel set.
func BenchmarkFullSizeDecode(b *testing.B) {
	for _, set := range kernelSets() {
		b.Run("kernels="+set, func(b *testing.B) {
			def := kernelSet
			defer useKernels(def)
			useKernels(set)
			b.StopTimer()
			fs := openFullSize(b, compiler.PlanOptions{Ctx: 4096, Batch: 128}, Options{})
			r := runDecode(b, fs, b.N, b)
			b.ReportMetric(r.tokPerSec, "tok/s")
			b.ReportMetric(r.bandwidth/1e9, "GB/s")
			b.ReportMetric(float64(r.bytesPerToken)/1e9, "GB/token")
			b.ReportMetric(r.floor, "floor-tok/s")
			b.ReportMetric(100*r.tokPerSec/r.floor, "%floor")
			b.ReportMetric(r.rss["VmRSS"]/1e9, "RSS-GB")
			b.ReportMetric(r.rss["RssAnon"]/1e9, "RssAnon-GB")
			b.ReportMetric(r.rss["RssFile"]/1e9, "RssFile-GB")
			b.ReportMetric(r.minorFaults, "minflt/token")
			b.ReportMetric(r.majorFaults, "majflt/token")
			b.ReportMetric(100*r.cpuShare, "%cpu")
			b.ReportMetric(1e3*r.cpuShare*float64(runtime.GOMAXPROCS(0))/r.tokPerSec, "cpu-ms/token")
			b.ReportMetric(float64(r.waitPerStep)/1e6, "wait-ms/token")
		})
	}
}

// runPrefill times steps prefills of a full batch from position 0.
func runPrefill(tb testing.TB, fs *fullSize, steps int, tm timer) float64 {
	p := prompt(fs.model.Batch(), fs.model.Vocab())
	if tm != nil {
		tm.StartTimer()
		defer tm.StopTimer()
	}
	start := time.Now()
	for i := 0; i < steps; i++ {
		logits, err := fs.model.Forward(p, 0)
		if err != nil {
			tb.Fatal(err)
		}
		if i == 0 {
			checkFinite(tb, logits)
		}
	}
	return float64(len(p)*steps) / time.Since(start).Seconds()
}

// BenchmarkFullSizePrefill runs a 128-token prompt (one batch) from
// position 0.
func BenchmarkFullSizePrefill(b *testing.B) {
	for _, set := range kernelSets() {
		b.Run("kernels="+set, func(b *testing.B) {
			def := kernelSet
			defer useKernels(def)
			useKernels(set)
			b.StopTimer()
			fs := openFullSize(b, compiler.PlanOptions{Ctx: 4096, Batch: 128}, Options{})
			tps := runPrefill(b, fs, b.N, b)
			b.ReportMetric(tps, "tok/s")
			// Flops per token of a program whose cache holds the batch:
			// attention over at most 128 positions, an upper bound for
			// positions 0 to 127.
			u := compileDir(b, os.Getenv(synthDirEnv), compiler.PlanOptions{Ctx: fs.model.Batch(), Batch: fs.model.Batch()})
			st := stats.Compute(u.Func, u.KV, u.Arena, u.Layers)
			gflops := tps * float64(st.FlopsPerToken) / 1e9
			b.ReportMetric(gflops, "GFLOP/s")
			if peak := fmaThroughput(runtime.GOMAXPROCS(0)); peak > 0 {
				b.ReportMetric(peak/1e9, "peak-GFLOP/s")
				b.ReportMetric(100*gflops*1e9/peak, "%peak")
			}
		})
	}
}

// BenchmarkFullSizeKV compiles the model for 8K, 32K and 128K contexts in
// each cache format and reports the KV cache the backend allocates beside
// the plan's figure, and how much resident memory grows when every
// position of the cache is written (the buffer's pages are committed only
// then). One iteration is enough: -benchtime 1x.
func BenchmarkFullSizeKV(b *testing.B) {
	dir := os.Getenv(synthDirEnv)
	if dir == "" {
		b.Skipf("set %s to a checkpoint directory written by `minerva synth`", synthDirEnv)
	}
	ck, err := weights.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer ck.Close()
	for _, ctx := range []int{8192, 32768, 131072} {
		for _, kv := range []string{"f16", "q8", "q4"} {
			b.Run(fmt.Sprintf("ctx=%dK/kv=%s", ctx/1024, kv), func(b *testing.B) {
				u := compileDir(b, dir, compiler.PlanOptions{Ctx: ctx, KV: kv, Batch: 128})
				p := u.Program()
				planned := stats.Compute(u.Func, u.KV, u.Arena, u.Layers).KVBytes
				var allocated int
				var grew float64
				for b.Loop() {
					debug.FreeOSMemory()
					before := procStatus()["RssAnon"]
					m, err := Load(p, ck, Options{})
					if err != nil {
						b.Fatal(err)
					}
					allocated = len(m.kv)
					// Fill the cache as a full context would: every byte of
					// every layer's keys and values is written.
					for i := 0; i < len(m.kv); i += 4096 {
						m.kv[i] = 1
					}
					grew = procStatus()["RssAnon"] - before
					m.Close()
					runtime.KeepAlive(m)
				}
				b.ReportMetric(float64(planned)/1e9, "plan-GB")
				b.ReportMetric(float64(allocated)/1e9, "alloc-GB")
				b.ReportMetric(grew/1e9, "rss-growth-GB")
			})
		}
	}
}

// TestFullSizeSmoke runs the full-size benchmark code on the tiny-random
// fixture's checkpoint, so that CI keeps it working without 13 GB.
func TestFullSizeSmoke(t *testing.T) {
	defer func(n int) { bandwidthBytes = n }(bandwidthBytes)
	bandwidthBytes = 1 << 20
	dir := "../../testdata/gpt-oss/tiny-random"
	u := compileDir(t, dir, compiler.PlanOptions{Ctx: 64, Batch: 16})
	fs := &fullSize{unit: u, prog: u.Program(), stats: stats.Compute(u.Func, u.KV, u.Arena, u.Layers)}
	var err error
	if fs.ck, err = weights.Open(dir); err != nil {
		t.Fatal(err)
	}
	defer fs.ck.Close()
	if fs.model, err = Load(fs.prog, fs.ck, Options{}); err != nil {
		t.Fatal(err)
	}
	defer fs.model.Close()
	r := runDecode(t, fs, 60, nil) // wraps around the 64-position context
	if !(r.tokPerSec > 0 && r.bandwidth > 0 && r.floor > 0 && r.bytesPerToken > 0) {
		t.Errorf("decode figures: %+v", r)
	}
	if runtime.GOOS == "linux" && r.rss["VmRSS"] <= 0 {
		t.Errorf("no VmRSS in /proc/self/status: %v", r.rss)
	}
	if tps := runPrefill(t, fs, 2, nil); !(tps > 0) {
		t.Errorf("prefill: %g tok/s", tps)
	}
}

// BenchmarkFullSizeStep decodes one token in each of N sequences in one
// batched step (continuous batching), each sequence 16 tokens in: tok/s
// over N=1 is what batching gains on the full-size model.
func BenchmarkFullSizeStep(b *testing.B) {
	for _, n := range []int{1, 2, 4, 8, 16} {
		b.Run(fmt.Sprintf("seqs=%d", n), func(b *testing.B) {
			fs := openFullSize(b, compiler.PlanOptions{Ctx: 256, Batch: 128}, Options{Sequences: n})
			p := prompt(16, fs.model.Vocab())
			var step []engine.Token
			for s := range n {
				var toks []engine.Token
				for i, id := range p {
					toks = append(toks, engine.Token{ID: id, Seq: s, Pos: i})
				}
				if _, err := fs.model.Step(toks); err != nil {
					b.Fatal(err)
				}
				step = append(step, engine.Token{ID: p[s%len(p)], Seq: s, Pos: len(p)})
			}
			b.ResetTimer()
			// Labelled, so that a profile can be cut to the timed steps
			// (-tagfocus phase=step; the caller's share of the work).
			pprof.Do(context.Background(), pprof.Labels("phase", "step"), func(context.Context) {
				for range b.N {
					if _, err := fs.model.Step(step); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}
