// Command minervac compiles .arch model architectures.
//
//	minervac check FILE [--config F] [--set k=v] [--model DIR]
//	minervac compile FILE [-o DIR] [--dump ir|after:PASS] [--time-passes] [--verify]
//	minervac passes
//
// Diagnostics go to stderr and the exit status is non-zero on failure; dumps
// and summaries go to stdout.
package main

import (
	"encoding/json"
	"fmt"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/minerva-ml/minerva/codegen/artifact"
	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/compiler/stats"
	"github.com/minerva-ml/minerva/compiler/wcheck"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// SourceFlags select and specialise an architecture.
type SourceFlags struct {
	File   string `arg:"" help:"The .arch file."`
	Config string `help:"A Hugging Face config.json (or a model directory holding one) that specialises the architecture." placeholder:"FILE"`
	// sep:"none": list values hold commas (--set 'layer_types=["a", "b"]').
	Set []string `help:"Override one config parameter (repeatable; lists as JSON)." placeholder:"NAME=VALUE" sep:"none"`
}

func (s SourceFlags) options() (compiler.Options, error) {
	return compiler.SourceOptions(s.File, s.Config, s.Set)
}

// PlanFlags set the run-time shape the program is planned for.
type PlanFlags struct {
	Ctx   int    `help:"Context length: positions each full-attention layer's KV cache holds." default:"4096"`
	KV    string `name:"kv" help:"KV-cache format and its typical relative error in the logits (docs/arch-language.md): f16 (about 4e-4), q8 (int8, one scale per token and head; about 1e-2), q4 (4-bit, groups of 32; about 1e-1) or f32 (exact)." default:"f16" enum:"f16,q8,q4,f32"`
	Batch int    `help:"Most tokens one call processes (a prefill chunk)." default:"128"`
}

func (p PlanFlags) plan() compiler.PlanOptions {
	return compiler.PlanOptions{Ctx: p.Ctx, KV: p.KV, Batch: p.Batch}
}

// Validate refuses sizes out of bounds (kong calls it after parsing):
// --ctx 0 is an error, not the default.
func (p PlanFlags) Validate() error { return p.plan().Check() }

// CheckCmd is `minervac check`.
type CheckCmd struct {
	SourceFlags
	Model string `help:"A model directory (or .safetensors file): check every declared weight against its checkpoint's tensor headers (names, dtypes, shapes), and use its config.json unless --config is given." placeholder:"DIR"`
}

// Run checks a file and prints a one-line summary.
func (c *CheckCmd) Run(env *Env) error {
	stdout, stderr := env.Stdout, env.Stderr
	_, _ = stdout, stderr
	if c.Model != "" && c.Config == "" {
		if _, err := os.Stat(filepath.Join(c.Model, "config.json")); err == nil {
			c.Config = c.Model
		}
	}
	opts, err := c.options()
	if err != nil {
		return err
	}
	if c.Model != "" {
		ck, err := weights.Open(c.Model)
		if err != nil {
			return err
		}
		opts.Checkpoint = Headers(ck)
		ck.Close()
	}
	// Up to legalize: the source is checked against every limit of the
	// kernels, so that check says ok only when compile will succeed.
	opts.StopAfter = "legalize"
	u, err := compiler.Compile(opts)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, u.Summary())
	return nil
}

// Headers lists a checkpoint's tensor headers for compiler.Options.Checkpoint.
func Headers(ck *weights.Checkpoint) []wcheck.Header {
	out := []wcheck.Header{}
	for _, name := range ck.Names() {
		t, _ := ck.Tensor(name)
		if !t.Stacked {
			out = append(out, wcheck.Header{Name: name, DType: t.DType.String(), Shape: t.Shape})
		}
	}
	return out
}

// CompileCmd is `minervac compile`.
type CompileCmd struct {
	SourceFlags
	PlanFlags
	Dump       []string `help:"Print a stage: 'ir' (the final IR), 'after:PASS' (the unit after a pass), 'config'." placeholder:"WHAT"`
	TimePasses bool     `help:"Print each pass's run time to stderr."`
	Verify     bool     `help:"Run the IR verifier after every pass that changes the IR."`
	Disable    []string `help:"Skip an optional pass (see 'minervac passes')." placeholder:"PASS"`
	Out        string   `short:"o" help:"Write the compiled artifact (manifest.json, kernels.metal, the Go package) to this directory." placeholder:"DIR"`
	GoPackage  string   `help:"Name of the artifact's Go package (default: the model's name)." placeholder:"NAME"`
	Metallib   bool     `help:"Also precompile kernels.metallib with Xcode's Metal compiler (xcrun metal; macOS only)."`
}

// Run compiles a file.
func (c *CompileCmd) Run(env *Env) error {
	stdout, stderr := env.Stdout, env.Stderr
	_, _ = stdout, stderr
	opts, err := c.options()
	if err != nil {
		return err
	}
	opts.Verify, opts.Disable, opts.TimePasses = c.Verify, c.Disable, c.TimePasses
	opts.Plan = c.plan()
	opts.DumpOut, opts.TimeOut = stdout, stderr
	finalIR := false
	for _, d := range c.Dump {
		switch {
		case d == "ir":
			finalIR = true
		case d == "config":
			opts.DumpAfter = append(opts.DumpAfter, "config")
		case strings.HasPrefix(d, "after:"):
			opts.DumpAfter = append(opts.DumpAfter, strings.TrimPrefix(d, "after:"))
		default:
			return fmt.Errorf("--dump %s: write --dump ir, --dump config or --dump after:PASS (passes: %s)", d, strings.Join(compiler.PassNames(), ", "))
		}
	}
	u, err := compiler.Compile(opts)
	if err != nil {
		return err
	}
	if finalIR {
		fmt.Fprint(stdout, compiler.FinalIR(u))
	}
	if c.Metallib && c.Out == "" {
		return fmt.Errorf("--metallib writes into the artifact: give -o DIR too")
	}
	if c.Out != "" {
		pkg := c.GoPackage
		if pkg == "" {
			pkg = artifact.PackageName(u.Func.Model)
		}
		if !token.IsIdentifier(pkg) {
			return fmt.Errorf("--go-package %q is not a Go identifier", pkg)
		}
		m := artifact.Build(u, u.Generated)
		if err := artifact.Write(c.Out, m, u.Generated.Metal, pkg); err != nil {
			return err
		}
		if c.Metallib {
			if err := artifact.BuildMetallib(c.Out, "metal3.1"); err != nil {
				return err
			}
		}
		fmt.Fprintf(stderr, "wrote %s: %d dispatches, %d kernels\n", c.Out, len(m.Dispatches), len(m.Kernels))
	}
	return nil
}

// StatsCmd is `minervac stats`.
type StatsCmd struct {
	SourceFlags
	PlanFlags
	Disable  []string `help:"Skip an optional pass." placeholder:"PASS"`
	Parallel int      `help:"Sequences served at once (minerva serve --parallel): kv_bytes_total is this many KV caches." default:"1"`
}

// Run prints the figures of the compiled program as one JSON object.
func (c *StatsCmd) Run(env *Env) error {
	opts, err := c.options()
	if err != nil {
		return err
	}
	opts.Plan, opts.Disable = c.plan(), c.Disable
	u, err := compiler.Compile(opts)
	if err != nil {
		return err
	}
	if c.Parallel < 1 {
		return fmt.Errorf("--parallel must be at least 1, not %d", c.Parallel)
	}
	st := stats.Compute(u.Func, u.KV, u.Arena, u.Layers)
	st.Parallel, st.KVBytesTotal = c.Parallel, int64(c.Parallel)*st.KVBytes
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(st)
}

// PassesCmd is `minervac passes`.
type PassesCmd struct{}

// Run prints the pass table.
func (PassesCmd) Run(env *Env) error {
	stdout, stderr := env.Stdout, env.Stderr
	_, _ = stdout, stderr
	for _, p := range compiler.Passes {
		req := "optional"
		if p.Required {
			req = "required"
		}
		fmt.Fprintf(stdout, "%-14s %-8s %s\n", p.Name, req, p.Why)
	}
	return nil
}

// Env carries the output streams to commands: data to Stdout, messages
// to Stderr.
type Env struct {
	Stdout, Stderr io.Writer
}

var cli struct {
	Check   CheckCmd   `cmd:"" help:"Check an architecture and print a one-line summary."`
	Compile CompileCmd `cmd:"" help:"Compile an architecture."`
	Stats   StatsCmd   `cmd:"" help:"Print the compiled program's figures (dispatches, kernels, memory, bytes and flops per token) as JSON."`
	Passes  PassesCmd  `cmd:"" help:"List the compiler's passes in order, with the reason each exists."`
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	exit := -1
	parser, err := kong.New(&cli,
		kong.Name("minervac"),
		kong.Description("The Minerva compiler: .arch model architectures to Metal kernels and Go dispatch code."),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { exit = code }),
	)
	if err != nil {
		panic("BUG: " + err.Error())
	}
	ctx, err := parser.Parse(args)
	if exit >= 0 {
		return exit // --help
	}
	if err != nil {
		fmt.Fprintf(stderr, "minervac: %v\n", err)
		if ctx != nil {
			fmt.Fprintf(stderr, "run 'minervac %s --help' for usage\n", ctx.Command())
		}
		return 2
	}
	if err := ctx.Run(&Env{Stdout: stdout, Stderr: stderr}); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
