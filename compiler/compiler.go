// Package compiler runs the compilation pipeline: one ordered table of
// passes (see passes.go) over a Unit that accumulates the syntax tree, the
// configuration, the IR and the plans. Read the pass table first: it is the
// whole pipeline, in order, with the reason each pass exists.
package compiler

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/minerva-ml/minerva/codegen"
	"github.com/minerva-ml/minerva/compiler/config"
	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/compiler/plan"
	"github.com/minerva-ml/minerva/compiler/wcheck"
	"github.com/minerva-ml/minerva/dsl"
	"github.com/minerva-ml/minerva/dsl/budget"
	"github.com/minerva-ml/minerva/dsl/diag"
)

// Options control one compilation.
type Options struct {
	// File names the source in diagnostics; Source is its text.
	File   string
	Source string
	// JSON, when set, specialises the model for a Hugging Face config.json.
	JSON *config.JSON
	// Sets are `name=value` overrides of config parameters.
	Sets []string
	// Verify runs the IR verifier after every pass that changes the IR.
	Verify bool
	// Disable lists optional passes to skip.
	Disable []string
	// DumpAfter lists passes whose output is printed to DumpOut.
	DumpAfter []string
	DumpOut   io.Writer
	// TimePasses prints each pass's duration to TimeOut.
	TimePasses bool
	TimeOut    io.Writer
	// StopAfter ends the pipeline after the named pass ("" runs all).
	StopAfter string
	// Plan holds the settings of the planning passes.
	Plan PlanOptions
	// Checkpoint, when not nil, holds a checkpoint's tensor headers: the
	// lower pass checks every declared weight against them and reports
	// what does not fit at its declaration (compiler/wcheck).
	Checkpoint []wcheck.Header
	// Limits bound what reading and evaluating the source may spend
	// (docs/limits.md); zero fields take the defaults.
	Limits budget.Limits
}

// PlanOptions are the run-time shape of the compiled program.
type PlanOptions struct {
	// Ctx is the number of positions full-attention layers can hold.
	Ctx int
	// KV is the KV-cache format: f16, q8, q4 or f32.
	KV string
	// Batch is the largest number of tokens one call processes (a prefill
	// chunk).
	Batch int
}

// Version is the compiler's version, recorded in artifacts.
const Version = "0.1.0"

// Defaults of the run-time shape.
const (
	DefaultCtx   = 4096
	DefaultBatch = 128
	DefaultKV    = "f16"
)

// Bounds of the run-time shape, whatever the model. A model's config may
// bound the context further (max_positions); the memory the plans take is
// checked when the backend allocates it.
const (
	// MaxCtx is the most positions a KV cache may hold: 16M, 128 times
	// gpt-oss's 131072.
	MaxCtx = 1 << 24
	// MaxBatch is the most tokens one call may process. The arena grows
	// with it (gpt-oss's logits alone are 786 KiB a token), and a batch
	// past a few thousand no longer makes a prefill faster.
	MaxBatch = 1 << 16
)

// Check refuses sizes outside the bounds, naming the command-line flag.
// Zero is refused too: commands pass the flags' values as given, and
// WithDefaults fills zeros for callers of the API.
func (p PlanOptions) Check() error {
	var errs []string
	if p.Ctx < 1 || p.Ctx > MaxCtx {
		errs = append(errs, fmt.Sprintf("--ctx %d: the context must be from 1 to %d positions (and at most the model's max_positions)", p.Ctx, MaxCtx))
	}
	if p.Batch < 1 || p.Batch > MaxBatch {
		errs = append(errs, fmt.Sprintf("--batch %d: a call must process from 1 to %d tokens", p.Batch, MaxBatch))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// checkModelCtx refuses a context longer than the model's max_positions,
// when its configuration declares one: positions past it were never
// trained, and RoPE scaling is specified up to it.
func checkModelCtx(cfg *config.Config, ctx int) error {
	if cfg == nil {
		return nil
	}
	max, ok := cfg.Int("max_positions")
	if !ok || max < 1 || int64(ctx) <= max {
		return nil
	}
	from := ""
	for _, e := range cfg.Entries {
		if e.Name == "max_positions" && e.Source == config.FromJSON && e.Key != "" {
			from = " (config.json " + e.Key + ")"
		}
	}
	return fmt.Errorf("--ctx %d: the model's max_positions%s is %d; use --ctx %d or less", ctx, from, max, max)
}

func (p PlanOptions) withDefaults() PlanOptions { return p.WithDefaults() }

// WithDefaults fills the options left zero with the defaults.
func (p PlanOptions) WithDefaults() PlanOptions {
	if p.Ctx == 0 {
		p.Ctx = DefaultCtx
	}
	if p.Batch == 0 {
		p.Batch = DefaultBatch
	}
	if p.KV == "" {
		p.KV = DefaultKV
	}
	return p
}

// Unit is one compilation in progress. Each pass reads what earlier passes
// left and adds its own part.
type Unit struct {
	Opts   Options
	File   *dsl.File
	Config *config.Config
	Func   *ir.Func
	// Layers is the trip count of the forward pass's outer loop.
	Layers int
	// LoweredOps is the number of ops the forward pass lowered to, before
	// any pass removed, split or fused them.
	LoweredOps int
	Diags      diag.List
	// Fused counts how often each fusion rule fired.
	Fused map[string]int
	// KV and Arena are the memory plans.
	KV    *plan.KV
	Arena *plan.Arena
	// Generated is the back half's output: kernels and dispatches.
	Generated *codegen.Output
	// Timings records each pass that ran, in order.
	Timings []PassTiming
	// Budget is what the front end may still spend, shared by parse,
	// config and lower.
	Budget *budget.Budget
}

// PassTiming is one pass's run time.
type PassTiming struct {
	Pass     string
	Duration time.Duration
}

// Compile runs the pass table over a source file. It returns the unit so
// far and an error holding every diagnostic if compilation failed.
func Compile(opts Options) (*Unit, error) {
	if err := checkOptions(opts); err != nil {
		return nil, err
	}
	u := &Unit{Opts: opts, Budget: budget.New(opts.Limits)}
	u.Diags.Limit = u.Budget.Limits.Errors
	u.Diags.AddSource(opts.File, opts.Source)
	disabled := map[string]bool{}
	for _, d := range opts.Disable {
		disabled[d] = true
	}
	dump := map[string]bool{}
	for _, d := range opts.DumpAfter {
		dump[d] = true
	}
	for _, p := range Passes {
		if disabled[p.Name] {
			continue
		}
		start := time.Now()
		err := p.Run(u)
		u.Timings = append(u.Timings, PassTiming{p.Name, time.Since(start)})
		if err == nil {
			err = u.Diags.Err()
		}
		if err != nil {
			u.printTimes()
			return u, err
		}
		if opts.Verify && p.ChangesIR && u.Func != nil {
			if err := ir.Verify(u.Func); err != nil {
				return u, fmt.Errorf("after pass %s: %w", p.Name, err)
			}
		}
		if dump[p.Name] && opts.DumpOut != nil {
			fmt.Fprint(opts.DumpOut, p.Dump(u))
		}
		if p.Name == opts.StopAfter {
			break
		}
	}
	u.printTimes()
	return u, nil
}

func (u *Unit) printTimes() {
	if !u.Opts.TimePasses || u.Opts.TimeOut == nil {
		return
	}
	var total time.Duration
	for _, t := range u.Timings {
		total += t.Duration
	}
	fmt.Fprintf(u.Opts.TimeOut, "%-16s %12s %6s\n", "pass", "time", "share")
	for _, t := range u.Timings {
		share := 0.0
		if total > 0 {
			share = 100 * float64(t.Duration) / float64(total)
		}
		fmt.Fprintf(u.Opts.TimeOut, "%-16s %12s %5.1f%%\n", t.Pass, t.Duration.Round(time.Microsecond), share)
	}
	fmt.Fprintf(u.Opts.TimeOut, "%-16s %12s\n", "total", total.Round(time.Microsecond))
}

// checkOptions refuses pass names that do not exist, with a hint.
func checkOptions(opts Options) error {
	names := PassNames()
	var bad []string
	check := func(flag, name string, mustBeOptional bool) {
		p, ok := passByName(name)
		switch {
		case !ok:
			hint := diag.DidYouMean(name, names)
			if hint == "" {
				hint = "passes are " + strings.Join(names, ", ")
			}
			bad = append(bad, fmt.Sprintf("%s: there is no pass '%s'; %s", flag, name, hint))
		case mustBeOptional && p.Required:
			bad = append(bad, fmt.Sprintf("%s: pass '%s' is required and cannot be disabled", flag, name))
		}
	}
	for _, d := range opts.Disable {
		check("--disable", d, true)
	}
	for _, d := range opts.DumpAfter {
		check("--dump after:"+d, d, false)
	}
	if opts.StopAfter != "" {
		check("stop after", opts.StopAfter, false)
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("%s", strings.Join(bad, "\n"))
	}
	return nil
}

func passByName(name string) (Pass, bool) {
	for _, p := range Passes {
		if p.Name == name {
			return p, true
		}
	}
	return Pass{}, false
}

// PassNames lists the passes in order.
func PassNames() []string {
	out := make([]string, len(Passes))
	for i, p := range Passes {
		out[i] = p.Name
	}
	return out
}

// Summary is the one-line description `minervac check` prints.
func (u *Unit) Summary() string {
	var params, bytes int64
	tensors := 0
	for _, w := range u.Func.Weights {
		params += w.Shape.Elems()
		bytes += w.Bytes()
		tensors += len(w.Tensors())
	}
	return fmt.Sprintf("%s: ok: %d layers, %s parameters, %d weights (%d tensors, %s), %d ops",
		u.Func.Model, u.Layers, humanCount(params), len(u.Func.Weights), tensors, HumanBytes(bytes), u.LoweredOps)
}

func humanCount(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

// HumanBytes formats a byte count with binary units.
func HumanBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.2f %s", f, units[i])
}

// ReadConfig loads a config.json given as a file or as a model directory
// that holds one.
func ReadConfig(path string) (*config.JSON, error) {
	if path == "" {
		return nil, nil
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, "config.json")
	}
	return config.LoadJSON(path)
}

// SourceOptions reads an .arch file and, optionally, a config.json into
// compiler options.
func SourceOptions(archPath, configPath string, sets []string) (Options, error) {
	src, err := ReadSource(archPath)
	if err != nil {
		return Options{}, err
	}
	js, err := ReadConfig(configPath)
	if err != nil {
		return Options{}, err
	}
	return Options{File: archPath, Source: string(src), JSON: js, Sets: sets}, nil
}

// ReadSource reads an .arch file, but never more than one byte past the
// default limit on its size: a larger file is refused by the parser with a
// diagnostic at the byte where it passes the limit, and is not held in
// memory whole first.
func ReadSource(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot read the architecture: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, budget.DefaultSourceBytes+1))
	if err != nil {
		return "", fmt.Errorf("cannot read the architecture: %w", err)
	}
	return string(b), nil
}
