// Package loader turns what a user names on the command line (an .arch
// file or a compiled artifact, a model directory or Hugging Face id, or
// nothing) into a validated checkpoint, a compiled program and a running
// backend.
package loader

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/minerva-ml/minerva/codegen"
	"github.com/minerva-ml/minerva/codegen/artifact"
	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/compiler/config"
	"github.com/minerva-ml/minerva/compiler/wcheck"
	"github.com/minerva-ml/minerva/models"
	"github.com/minerva-ml/minerva/program"
	"github.com/minerva-ml/minerva/runtime/cpu"
	"github.com/minerva-ml/minerva/runtime/engine"
	"github.com/minerva-ml/minerva/runtime/gpu"
	"github.com/minerva-ml/minerva/runtime/metal"
	"github.com/minerva-ml/minerva/runtime/tokenizer"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// Spec says what to load.
type Spec struct {
	// Arch is an .arch file or a compiled artifact directory; empty picks
	// the shipped architecture named by the model's config.json.
	Arch string
	// Model is a model directory or a Hugging Face id (resolved in the
	// local cache, offline); empty means the embedded default model.
	Model string
	// Plan is the run-time shape when Arch is compiled here.
	Plan compiler.PlanOptions
	// Sets are `name=value` overrides of config parameters (--set), when
	// Arch is compiled here.
	Sets []string
	// Backend is "auto", "cpu", "mslemu", "metal" or "cuda".
	Backend string
	// Workers is the CPU backend's thread count (0: all cores).
	Workers int
	// Spin is how long the CPU backend's idle threads poll for the next
	// parallel loop before sleeping (cpu.Options.Spin; 0: 50 µs).
	Spin time.Duration
	// Sequences is how many sequences the KV cache holds at once
	// (continuous batching: serve --parallel); 0 means 1.
	Sequences int
	// Progress receives the progress display (stderr), or nil.
	Progress io.Writer
	// Tokenizer: parse the model's tokenizer.json too, alongside the
	// weights, so that a model reported ready can take a prompt.
	Tokenizer bool
}

// Model is a loaded, validated model on a backend.
type Model struct {
	Program    *program.Program
	Checkpoint *weights.Checkpoint
	Backend    engine.Backend
	// BackendName is the backend actually chosen.
	BackendName string
	// Dir is the model directory, or "" for the embedded default.
	Dir string
	// Name is what the model is called in reports and the HTTP API.
	Name string
	// HFConfig is the model's config.json, for generation settings.
	HFConfig map[string]any
	// Tokenizer is the model's tokenizer.json, parsed when Spec.Tokenizer
	// is set, or nil when it is not or the model has none.
	Tokenizer *tokenizer.Tokenizer
	// GenerationConfig is generation_config.json, or nil.
	GenerationConfig map[string]any
	// Warnings name optional files that were invalid and ignored
	// (generation_config.json); commands print them on stderr.
	Warnings []string
	// Ready is the time from the start of Load to a validated model.
	Ready time.Duration
}

// Close releases the backend and the checkpoint.
func (m *Model) Close() {
	if m.Backend != nil {
		m.Backend.Close()
	}
	if m.Checkpoint != nil {
		m.Checkpoint.Close()
	}
}

// DefaultName is the embedded model's name.
const DefaultName = "fortune"

// Load resolves, compiles, maps, validates and binds a model.
func Load(spec Spec) (*Model, error) {
	start := time.Now()
	prog := newProgress(spec.Progress)
	m := &Model{}
	var cfgText []byte
	var err error
	// The tokenizer loads on another core while the weights map and the
	// program compiles; it is joined before the model is reported ready.
	var tokDone chan struct{}
	var tokErr error
	loadTokenizer := func(load func() (*tokenizer.Tokenizer, error)) {
		tokDone = make(chan struct{})
		go func() {
			defer close(tokDone)
			m.Tokenizer, tokErr = load()
		}()
	}
	if spec.Model == "" {
		m.Name = DefaultName
		cfgText = models.FortuneFile("config.json")
		if spec.Tokenizer {
			loadTokenizer(func() (*tokenizer.Tokenizer, error) {
				return tokenizer.Parse(models.FortuneFile("tokenizer.json"))
			})
		}
		prog.stage("mapping", 1)
		m.Checkpoint, err = weights.FromBytes("models/fortune/model.safetensors", models.FortuneFile("model.safetensors"))
		if err != nil {
			return nil, fmt.Errorf("BUG: the embedded model does not load: %w", err)
		}
	} else {
		dir, err := ResolveModel(spec.Model)
		if err != nil {
			return nil, err
		}
		m.Dir, m.Name = dir, ModelName(spec.Model)
		if path := filepath.Join(dir, "tokenizer.json"); spec.Tokenizer {
			if _, err := os.Stat(path); err == nil {
				loadTokenizer(func() (*tokenizer.Tokenizer, error) { return tokenizer.Load(path) })
			}
		}
		cfgText, err = os.ReadFile(filepath.Join(dir, "config.json"))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		if g, err := os.ReadFile(filepath.Join(dir, "generation_config.json")); err == nil {
			if err := json.Unmarshal(g, &m.GenerationConfig); err != nil {
				m.GenerationConfig = nil
				m.Warnings = append(m.Warnings, fmt.Sprintf("%s is not a valid JSON object (%v); it is ignored and the default generation settings are used",
					filepath.Join(dir, "generation_config.json"), err))
			}
		}
		prog.stage("mapping", 1)
		m.Checkpoint, err = weights.Open(dir)
		if err != nil {
			return nil, err
		}
	}
	prog.advance(1)
	if cfgText != nil {
		if err := json.Unmarshal(cfgText, &m.HFConfig); err != nil {
			m.Close()
			return nil, fmt.Errorf("config.json: %v", err)
		}
	}
	var archHint string
	m.Program, archHint, err = compileFor(spec, cfgText, m.HFConfig, m.Checkpoint)
	if err != nil {
		m.Close()
		return nil, err
	}
	prog.stage("validating", 1)
	if err := m.Program.Validate(m.Checkpoint, archHint); err != nil {
		m.Close()
		return nil, err
	}
	if err := checkValues(m.Program, m.Checkpoint); err != nil {
		m.Close()
		return nil, err
	}
	if err := checkMemory(m.Program); err != nil {
		m.Close()
		return nil, err
	}
	prog.advance(1)
	prog.stage("binding", 1)
	m.Backend, m.BackendName, err = newBackend(spec, m.Program, m.Checkpoint)
	if err != nil {
		m.Close()
		return nil, err
	}
	prog.advance(1)
	if tokDone != nil {
		<-tokDone
		if tokErr != nil {
			m.Close()
			return nil, tokErr
		}
	}
	m.Ready = time.Since(start)
	prog.done(fmt.Sprintf("%s ready in %s: %d tensors mapped and validated, %s backend",
		m.Name, m.Ready.Round(time.Microsecond), len(m.Program.TensorSpecs()), m.BackendName))
	return m, nil
}

// compileFor compiles the architecture for the model's config.json, or
// reads a compiled artifact. The Metal kernels are generated only for the
// backends that launch them.
//
// The hint says what to recompile when the checkpoint does not fit.
func compileFor(spec Spec, cfgText []byte, hf map[string]any, ck *weights.Checkpoint) (*program.Program, string, error) {
	var file, src string
	switch {
	case spec.Arch != "" && program.IsArtifact(spec.Arch):
		if len(spec.Sets) > 0 {
			return nil, "", fmt.Errorf("--set changes the config an .arch file is compiled for; %s is already compiled: recompile it with minervac compile --set, or pass the .arch file", spec.Arch)
		}
		p, m, err := artifact.Read(spec.Arch)
		if err != nil {
			return nil, "", err
		}
		return p, m.Source + " -o " + spec.Arch, nil
	case spec.Arch == "":
		var names []string
		if a, ok := hf["architectures"].([]any); ok {
			for _, n := range a {
				if s, ok := n.(string); ok {
					names = append(names, s)
				}
			}
		}
		if len(names) == 0 {
			return nil, "", fmt.Errorf("the model's config.json names no architectures; pass an .arch file")
		}
		a, err := models.ForArchitecture(names)
		if err != nil {
			return nil, "", err
		}
		file, src = a.File, a.Source
	case strings.HasSuffix(spec.Arch, ".arch"):
		text, err := compiler.ReadSource(spec.Arch)
		if err != nil {
			return nil, "", err
		}
		file, src = spec.Arch, text
	default:
		return nil, "", fmt.Errorf("%s is neither an .arch file nor a compiled artifact", spec.Arch)
	}
	// The declared weights are checked against the checkpoint's headers
	// as the source compiles, so that a mismatch is reported at its
	// declaration in the .arch file.
	opts := compiler.Options{File: file, Source: src, Plan: spec.Plan, Sets: spec.Sets, Checkpoint: checkpointHeaders(ck)}
	if backendName(spec) == "cpu" {
		opts.StopAfter = "plan_arena"
	}
	if cfgText != nil {
		js, err := config.ParseJSON("config.json", cfgText)
		if err != nil {
			return nil, "", err
		}
		opts.JSON = js
	}
	u, err := compiler.Compile(opts)
	if err != nil {
		return nil, "", err
	}
	return u.Program(), file, nil
}

// checkpointHeaders lists a checkpoint's tensor headers for the compiler.
func checkpointHeaders(ck *weights.Checkpoint) []wcheck.Header {
	out := []wcheck.Header{}
	for _, name := range ck.Names() {
		t, _ := ck.Tensor(name)
		if !t.Stacked {
			out = append(out, wcheck.Header{Name: name, DType: t.DType.String(), Shape: t.Shape})
		}
	}
	return out
}

func backendName(spec Spec) string {
	if spec.Backend == "" || spec.Backend == "auto" {
		return autoBackend()
	}
	return spec.Backend
}

// Backends lists the accepted --backend values.
var Backends = []string{"auto", "cpu", "mslemu", "metal", "cuda"}

func newBackend(spec Spec, p *program.Program, ck *weights.Checkpoint) (engine.Backend, string, error) {
	name := backendName(spec)
	switch name {
	case "cpu":
		// Return a nil interface on error, never a nil *cpu.Model in one:
		// the caller's Close would call through the nil pointer.
		m, err := cpu.Load(p, ck, cpu.Options{Workers: spec.Workers, Spin: spec.Spin, Sequences: spec.Sequences})
		if err != nil {
			return nil, "", err
		}
		return m, "cpu", nil
	case "mslemu", "metal", "cuda":
		if p.Code == nil {
			var err error
			if p.Code, err = codegen.Generate(p.Func, p.KV); err != nil {
				return nil, "", err
			}
		}
		var dev gpu.Device
		var err error
		switch name {
		case "mslemu":
			dev, err = gpu.NewEmulator(p.Code, 1)
		case "cuda":
			dev, err = gpu.NewCUDA(p.Code)
		default:
			lib := ""
			if spec.Arch != "" && program.IsArtifact(spec.Arch) {
				if p := filepath.Join(spec.Arch, program.MetallibName); fileExists(p) {
					lib = p
				}
			}
			dev, err = gpu.NewMetalWith(p.Code, lib)
		}
		if err != nil {
			return nil, "", err
		}
		m, err := gpu.LoadSequences(p, ck, dev, spec.Sequences)
		if err != nil {
			dev.Close()
			return nil, "", err
		}
		return m, name, nil
	}
	return nil, "", fmt.Errorf("unknown backend %q: use %s", name, strings.Join(Backends, ", "))
}

// autoBackend picks Metal when a device exists (macOS on Apple Silicon)
// and the CPU otherwise.
func autoBackend() string {
	if gpu.MetalAvailable() {
		return "metal"
	}
	return "cpu"
}

// AutoBackend is the backend --backend auto picks on this machine, and
// why.
func AutoBackend() (string, string) {
	if gpu.MetalAvailable() {
		return "metal", "a Metal device is present"
	}
	_, err := metal.Open()
	return "cpu", fmt.Sprint(err)
}

// ResolveModel finds a model directory: a path, or a Hugging Face id such
// as openai/gpt-oss-20b found in the local cache (offline).
func ResolveModel(name string) (string, error) {
	if fi, err := os.Stat(name); err == nil {
		if !fi.IsDir() {
			if strings.HasSuffix(name, ".safetensors") {
				return filepath.Dir(name), nil
			}
			return "", fmt.Errorf("%s is a file; --model takes a model directory (config.json, model.safetensors, tokenizer.json)", name)
		}
		return name, nil
	}
	if strings.Count(name, "/") == 1 && !strings.HasPrefix(name, ".") && !strings.HasPrefix(name, "/") {
		dir, err := hfCacheSnapshot(name)
		if err == nil {
			return dir, nil
		}
		return "", err
	}
	return "", fmt.Errorf("model %s: no such directory", name)
}

// ModelName is what a model named on the command line is called in the
// API and in reports: a directory's base name ("./models/gpt-oss-20b/"
// is "gpt-oss-20b"), so that the path as typed never leaks into model
// ids; a Hugging Face id ("openai/gpt-oss-20b") stays as it is.
func ModelName(name string) string {
	if fi, err := os.Stat(name); err == nil {
		dir := name
		if !fi.IsDir() {
			dir = filepath.Dir(name)
		}
		if abs, err := filepath.Abs(dir); err == nil {
			dir = abs
		}
		return filepath.Base(dir)
	}
	return name
}

// hfCacheSnapshot resolves org/name in the Hugging Face hub cache layout:
// HUB/models--org--name/refs/main holds the snapshot hash of
// HUB/models--org--name/snapshots/HASH.
func hfCacheSnapshot(id string) (string, error) {
	hub := os.Getenv("HF_HUB_CACHE")
	if hub == "" {
		if home := os.Getenv("HF_HOME"); home != "" {
			hub = filepath.Join(home, "hub")
		} else if h, err := os.UserHomeDir(); err == nil {
			hub = filepath.Join(h, ".cache", "huggingface", "hub")
		}
	}
	repo := filepath.Join(hub, "models--"+strings.ReplaceAll(id, "/", "--"))
	ref, err := os.ReadFile(filepath.Join(repo, "refs", "main"))
	var dir string
	if err != nil {
		snaps, _ := filepath.Glob(filepath.Join(repo, "snapshots", "*"))
		if len(snaps) != 1 {
			return "", fmt.Errorf("model %s is not a directory and is not in the Hugging Face cache (%s); download it first, e.g. `huggingface-cli download %s`", id, repo, id)
		}
		dir = snaps[0]
	} else {
		// refs/main names a commit: anything else (a path such as
		// ../../../x) could lead outside the cache.
		hash := strings.TrimSpace(string(ref))
		if !isCommitHash(hash) {
			return "", fmt.Errorf("model %s: the cache's %s holds %q, not a commit hash (40 or 64 hex digits); repair the cache, e.g. `huggingface-cli download %s`",
				id, filepath.Join(repo, "refs", "main"), shorten(hash, 80), id)
		}
		dir = filepath.Join(repo, "snapshots", hash)
		if _, err := os.Stat(dir); err != nil {
			return "", fmt.Errorf("model %s: the cache's refs/main names snapshot %s, which is missing", id, hash)
		}
	}
	// The snapshot directory itself must not lead out of the cache
	// through a link (its files are links into the cache's blobs).
	realHub, err1 := filepath.EvalSymlinks(hub)
	realDir, err2 := filepath.EvalSymlinks(dir)
	if err1 != nil || err2 != nil {
		return "", fmt.Errorf("model %s: cannot resolve the snapshot %s in the Hugging Face cache: %v", id, dir, errors.Join(err1, err2))
	}
	if rel, err := filepath.Rel(realHub, realDir); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("model %s: the cache's snapshot %s leads to %s, outside the Hugging Face cache %s; refusing to load it", id, dir, realDir, realHub)
	}
	return dir, nil
}

// isCommitHash reports whether s is a git commit hash as the hub writes
// it: 40 (SHA-1) or 64 (SHA-256) lower-case hex digits.
func isCommitHash(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func shorten(s string, n int) string {
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
