// Command minerva runs compiled models.
//
//	minerva run [ARCH_OR_ARTIFACT] [MODEL] [PROMPT] [-m DIR] [-p TEXT] [-n MAX_TOKENS]
//	minerva logits ARCH_OR_ARTIFACT --model DIR --ids 1,2,3 --out FILE.safetensors
//	minerva tokenize --tokenizer FILE [--jsonl] [--decode]
//
// With no model, `minerva run` runs the embedded default (the fortune
// model). Generated text goes to stdout; progress, summaries and errors go
// to stderr.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/alecthomas/kong"
)

// Env carries the process's streams to commands.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Interrupts, when set, stands in for the process's SIGINT (Ctrl-C):
	// tests send os.Interrupt on it. Nil is signal.Notify's.
	Interrupts chan os.Signal
}

var cli struct {
	Run      RunCmd      `cmd:"" help:"Generate text from a prompt, streaming it to stdout."`
	Serve    ServeCmd    `cmd:"" help:"Serve the model over an OpenAI-compatible HTTP API."`
	Logits   LogitsCmd   `cmd:"" help:"Write the logits for token ids to a SafeTensors file, to compare Minerva with another implementation."`
	Tokenize TokenizeCmd `cmd:"" help:"Encode text to token ids, or decode ids to text, with a tokenizer.json."`
	Info     InfoCmd     `cmd:"" help:"Show the Metal device (on a Mac) and the backend --backend auto picks."`
	Export   ExportCmd   `cmd:"" help:"Write a model in another engine's format: --gguf writes llama.cpp's GGUF."`
	Synth    SynthCmd    `cmd:"" help:"Write a checkpoint of random weights in an architecture's exact layout, with its config.json: full-size models for load, memory and speed tests."`
}

func main() {
	os.Exit(run(os.Args[1:], &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}))
}

func run(args []string, env *Env) int {
	exit := -1
	parser, err := kong.New(&cli,
		kong.Name("minerva"),
		kong.Description("Run language models compiled by Minerva: on Metal on a Mac, on the CPU anywhere."),
		kong.Writers(env.Stdout, env.Stderr),
		kong.Exit(func(code int) { exit = code }),
	)
	if err != nil {
		panic("BUG: " + err.Error())
	}
	ctx, err := parser.Parse(args)
	if exit >= 0 {
		return exit
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "minerva: %v\n", err)
		if ctx != nil {
			fmt.Fprintf(env.Stderr, "run 'minerva %s --help' for usage\n", ctx.Command())
		}
		return 2
	}
	if err := ctx.Run(env); err != nil {
		fmt.Fprintf(env.Stderr, "minerva: %v\n", err)
		var ee exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	return 0
}
