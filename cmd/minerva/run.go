package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/minerva-ml/minerva/runtime/chat"
	"github.com/minerva-ml/minerva/runtime/engine"
	"github.com/minerva-ml/minerva/runtime/loader"
	"github.com/minerva-ml/minerva/runtime/sample"
	"github.com/minerva-ml/minerva/runtime/tokenizer"
)

// RunCmd is `minerva run`: one prompt (--prompt, a positional, or stdin
// when it is not a terminal), or an interactive chat on a terminal.
//
// The answer goes to stdout. Reasoning (harmony's analysis channel) goes
// to stderr, dimmed on a terminal, so `minerva run ... > answer.txt` keeps
// only the answer; --hide-reasoning drops it. The summary goes to stderr.
type RunCmd struct {
	// Args are [ARCH_OR_ARTIFACT] [MODEL] [PROMPT], as `ollama run MODEL
	// PROMPT`: each is told apart by what it names (positionals.go).
	Args []string `arg:"" optional:"" help:"[ARCH_OR_ARTIFACT] [MODEL] [PROMPT]: an .arch file or compiled artifact directory, a model directory or cached Hugging Face id, and the prompt. A last argument that is no existing file, directory or cached model id is the prompt: minerva run \"Why is the sky blue?\" asks the embedded model." name:"ARGS"`
	Arch string   `kong:"-"`
	ModelFlags
	ChatFlags
	SamplingFlags
	Prompt        string   `short:"p" help:"The prompt. Without it: an interactive chat when stdin is a terminal, else the prompt is read from stdin (one trailing newline dropped)." placeholder:"TEXT"`
	Chat          bool     `help:"Chat interactively, one message per line of stdin, even when stdin is not a terminal; a prompt given too is the first message."`
	System        string   `help:"Instructions (system prompt): harmony's developer message, Llama 3's system message; for a base model, text put before the prompt." placeholder:"TEXT"`
	Stop          []string `sep:"none" help:"Stop when the answer contains this text (repeatable: one string per flag, commas included); the text is not printed." placeholder:"TEXT"`
	MaxTokens     int      `short:"n" help:"Most tokens to generate per reply." default:"128"`
	Seed          int64    `help:"Random seed for sampling; the same seed, prompt and flags give the same text. -1 picks one (printed in the summary)." default:"-1"`
	HideReasoning bool     `help:"Do not print the model's reasoning (harmony's analysis channel)."`
}

// ChatFlags choose the chat format; run and serve share them.
type ChatFlags struct {
	ChatFormat      string `help:"Chat format: auto (from the model's files), harmony, llama3, or plain (completion, no chat)." default:"auto" enum:"auto,harmony,llama3,plain"`
	ReasoningEffort string `help:"Harmony's reasoning effort: low, medium or high." default:"medium" enum:"low,medium,high"`
}

// SamplingFlags are the sampling settings; run and serve share them
// (serve uses them for what a request leaves out).
type SamplingFlags struct {
	Temperature   float64 `help:"Sampling temperature; 0 is greedy. -1 (default): greedy for base models (plain completion), else the model's generation_config.json temperature, or 1." default:"-1"`
	TopK          int     `name:"top-k" help:"Sample from the K most likely tokens (0: all)." default:"0"`
	TopP          float64 `name:"top-p" help:"Sample from the smallest set of tokens whose probability reaches P (1: all)." default:"1"`
	MinP          float64 `name:"min-p" help:"Drop tokens less likely than P times the most likely one (0: off)." default:"0"`
	RepeatPenalty float64 `help:"Penalise tokens seen in the last --repeat-last-n tokens, like llama.cpp (1: off)." default:"1"`
	RepeatLastN   int     `help:"Window of --repeat-penalty, in tokens." default:"64"`
}

// options resolves the flags for m: a temperature of -1 becomes the
// model's default.
func (f SamplingFlags) options(m *chatModel) (sample.Options, error) {
	o := sample.Options{Temperature: f.Temperature, TopK: f.TopK, TopP: f.TopP, MinP: f.MinP, RepeatPenalty: f.RepeatPenalty, RepeatLastN: f.RepeatLastN}
	if o.Temperature == -1 {
		o.Temperature = m.defaultTemperature()
	}
	if err := o.Validate(); err != nil {
		return o, fmt.Errorf("sampling flags: %w", err)
	}
	return o, nil
}

// chatModel is a loaded model with its tokenizer and chat format.
type chatModel struct {
	*loader.Model
	tok    *tokenizer.Tokenizer
	format chat.Format
	// why says how the format was chosen.
	why string
	eos []int32
}

func loadChatModel(spec loader.Spec, formatName string) (*chatModel, error) {
	spec.Tokenizer = true
	m, err := loader.Load(spec)
	if err != nil {
		return nil, err
	}
	if m.Tokenizer == nil {
		m.Close()
		return nil, fmt.Errorf("the model directory has no tokenizer.json, which text generation needs (use `minerva logits --ids` for token ids)")
	}
	tok := m.Tokenizer
	files, err := chat.ReadModelFiles(m.Dir, tok, m.HFConfig, m.GenerationConfig)
	if err != nil {
		m.Close()
		return nil, err
	}
	if spec.Progress != nil {
		for _, w := range append(m.Warnings, files.Warnings...) {
			fmt.Fprintf(spec.Progress, "minerva: warning: %s\n", w)
		}
	}
	cm := &chatModel{Model: m, tok: tok, eos: files.EOS}
	if formatName == "auto" || formatName == "" {
		d, err := chat.Detect(files)
		if err != nil {
			m.Close()
			return nil, err
		}
		cm.format, cm.why = d.Format, d.Reason
		if d.Warning != "" && spec.Progress != nil {
			fmt.Fprintf(spec.Progress, "minerva: warning: %s\n", d.Warning)
		}
	} else {
		if cm.format, err = chat.New(formatName, tok); err != nil {
			m.Close()
			return nil, err
		}
		cm.why = "--chat-format " + formatName
	}
	return cm, nil
}

func (m *chatModel) plain() bool { return m.format.Name() == "plain" }

// defaultTemperature: greedy for base models, so that a fortune is
// reproducible; chat models sample at their generation_config.json
// temperature, or 1 (OpenAI's recommendation for gpt-oss).
func (m *chatModel) defaultTemperature() float64 {
	if m.plain() {
		return 0
	}
	if t, ok := m.GenerationConfig["temperature"].(float64); ok && t >= 0 {
		return t
	}
	return 1
}

// stopIDs are the format's end-of-reply tokens and the model's EOS ids.
func (m *chatModel) stopIDs() map[int32]bool {
	out := map[int32]bool{}
	for _, id := range m.format.StopTokens() {
		out[id] = true
	}
	for _, id := range m.eos {
		out[id] = true
	}
	return out
}

// Run generates text and streams it to stdout.
func (c *RunCmd) Run(env *Env) error {
	if c.MaxTokens < 1 {
		return fmt.Errorf("--max-tokens must be at least 1, not %d", c.MaxTokens)
	}
	if err := c.resolveArgs(env.Stderr); err != nil {
		return err
	}
	interactive := c.Chat || (c.Prompt == "" && isTerminal(env.Stdin))
	m, err := loadChatModel(c.spec(c.Arch, env), c.ChatFormat)
	if err != nil {
		return err
	}
	defer m.Close()
	prompt := c.Prompt
	if prompt == "" && !interactive {
		if prompt, err = readPrompt(env.Stdin, m); err != nil {
			return err
		}
	}
	opts, err := c.SamplingFlags.options(m)
	if err != nil {
		return err
	}
	seed := c.Seed
	if seed < 0 {
		var b [8]byte
		rand.Read(b[:])
		seed = int64(binary.LittleEndian.Uint64(b[:]) >> 1)
	}
	opts.Seed = uint64(seed)
	smp, err := sample.New(opts)
	if err != nil {
		return err
	}
	r := &runner{cmd: c, env: env, m: m, smp: smp, seed: seed, session: engine.NewSession(m.Backend),
		reasoning: newReasoningWriter(env.Stderr, c.HideReasoning)}
	if interactive {
		// Listen before the banner: once it shows, Ctrl-C is ours.
		sig := env.interrupts()
		defer sig.stop()
		fmt.Fprintf(env.Stderr, "%s: %s chat (%s). One message per line; /help lists the commands; /bye or Ctrl-D exits; Ctrl-C stops a reply, or exits at the prompt.\n", m.Name, m.format.Name(), m.why)
		return r.chatLoop(sig)
	}
	var ids []int32
	if m.plain() {
		// Completion: the prompt as written, special tokens included.
		text := prompt
		if c.System != "" {
			text = c.System + "\n" + prompt
		}
		enc, err := m.tok.EncodeLimit(text, m.Backend.Ctx())
		if err != nil {
			return promptTooLong(m)
		}
		ids = toInt32(enc)
	} else {
		opts := r.chatOptions()
		opts.MaxTokens = m.Backend.Ctx()
		if ids, err = m.format.Render(r.messages(chat.Message{Role: chat.RoleUser, Content: prompt}), opts); errors.Is(err, chat.ErrTooLong) {
			return promptTooLong(m)
		} else if err != nil {
			return err
		}
	}
	if len(ids) == 0 {
		return fmt.Errorf("the prompt encodes to no tokens")
	}
	sig := env.interrupts()
	defer sig.stop()
	ctx, end := sig.during()
	_, err = r.reply(ctx, ids)
	interrupted := ctx.Err() != nil
	end()
	if err != nil {
		return err
	}
	if interrupted {
		return errInterrupted
	}
	return nil
}

// errInterrupted ends a run that Ctrl-C (SIGINT) stopped with the
// shell's status for it, 128+2, as llama.cpp's CLI does.
var errInterrupted = exitError{code: 130, msg: "interrupted"}

// exitError ends the command with its code and message.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

// readPrompt reads the prompt from stdin, but no more bytes than the
// context can hold: the context length times the most bytes one token
// stands for (the tokenizer's longest token). A longer input cannot fit,
// so it is refused after reading that much, not read whole.
func readPrompt(in io.Reader, m *chatModel) (string, error) {
	limit := int64(m.Backend.Ctx()) * int64(m.tok.MaxTokenBytes())
	b, err := io.ReadAll(io.LimitReader(in, limit+1))
	if err != nil {
		return "", err
	}
	if int64(len(b)) > limit {
		return "", fmt.Errorf("the prompt on stdin is more than %d bytes, more than a context of %d tokens can hold (a token is at most %d bytes); shorten it or use a larger --ctx",
			limit, m.Backend.Ctx(), m.tok.MaxTokenBytes())
	}
	// `echo TEXT |` ends the text with a newline the user did not mean
	// as part of the prompt.
	text := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if text == "" {
		return "", fmt.Errorf("no prompt: pass --prompt TEXT, pipe text to stdin, or run on a terminal to chat")
	}
	return text, nil
}

// promptTooLong is the error for a prompt that encodes to more tokens
// than the context holds; encoding stopped there.
func promptTooLong(m *chatModel) error {
	return fmt.Errorf("%w: the prompt is more than %d tokens, the context; shorten it or use a larger --ctx", engine.ErrContextFull, m.Backend.Ctx())
}

// runner holds a run's state across turns.
type runner struct {
	cmd       *RunCmd
	env       *Env
	m         *chatModel
	smp       *sample.Sampler
	seed      int64
	session   *engine.Session
	reasoning *reasoningWriter
	history   []chat.Message
}

func (r *runner) chatOptions() chat.Options {
	return chat.Options{ReasoningEffort: r.cmd.ReasoningEffort}
}

// messages is the conversation so far, after the instructions, with next
// appended.
func (r *runner) messages(next chat.Message) []chat.Message {
	var msgs []chat.Message
	if r.cmd.System != "" {
		msgs = append(msgs, chat.Message{Role: chat.RoleSystem, Content: r.cmd.System})
	}
	msgs = append(msgs, r.history...)
	return append(msgs, next)
}

// reply generates after ids, reusing what the KV cache holds of them,
// streams the answer to stdout, and returns it.
func (r *runner) reply(ctx context.Context, ids []int32) (string, error) {
	out := &replyWriter{out: r.env.Stdout, reasoning: r.reasoning}
	progress := newPrefillProgress(r.env.Stderr, ctx)
	r.session.Progress = progress.update
	defer func() { r.session.Progress = nil }()
	turn := chat.Turn{Prompt: ids, MaxTokens: r.cmd.MaxTokens, StopTokens: r.m.stopIDs(), StopStrings: r.cmd.Stop,
		Sampler: r.smp, Parser: r.m.format.NewParser()}
	res, err := turn.Run(ctx, r.session, &progressSink{replyWriter: out, progress: progress})
	progress.clear()
	r.reasoning.close()
	fmt.Fprintln(r.env.Stdout)
	if err != nil && ctx.Err() == nil {
		return out.answer.String(), err
	}
	if ctx.Err() != nil && res.StoppedBy == "" {
		// Ctrl-C in the prefill, before any token: count the prompt
		// tokens that ran, not those the prefill was given.
		res.StoppedBy = "cancelled"
		res.PromptTokens = r.session.Pos() - res.Reused
	}
	cached := ""
	if res.Reused > 0 {
		cached = fmt.Sprintf(", %d more cached", res.Reused)
	}
	seed := ""
	if r.smp.Options().Temperature > 0 {
		seed = fmt.Sprintf("; seed %d", r.seed)
	}
	st := res.Stats
	fmt.Fprintf(r.env.Stderr, "prefill: %d tokens in %s (%.1f tok/s%s); decode: %d tokens in %s (%.1f tok/s); stopped by %s%s\n",
		st.PromptTokens, st.Prefill.Round(1e5), st.PrefillRate(), cached, st.GeneratedTokens, st.Decode.Round(1e5), st.DecodeRate(), stoppedBy(res), seed)
	return out.answer.String(), nil
}

// stoppedBy says why a reply ended, for the summary.
func stoppedBy(res chat.TurnResult) string {
	switch res.StoppedBy {
	case "stop":
		if res.StopString {
			return "stop string"
		}
		return "eos" // an end-of-reply or end-of-sequence token
	case "length":
		return "max tokens"
	case "context":
		return "the end of the context"
	case "cancelled":
		return "Ctrl-C"
	}
	return res.StoppedBy
}

// prefillShowAfter is how long a prefill runs before its progress shows,
// and prefillEvery how often a line is written when stderr is not a
// terminal (a terminal's line is rewritten in place at every call).
var prefillShowAfter, prefillEvery = time.Second, 5 * time.Second

// prefillProgress shows a long prefill's progress on stderr: tokens
// done, tokens/s and the time left. Ctrl-C stops the prefill.
type prefillProgress struct {
	w           io.Writer
	ctx         context.Context
	tty         bool
	start, last time.Time
	shown       bool
}

func newPrefillProgress(w io.Writer, ctx context.Context) *prefillProgress {
	return &prefillProgress{w: w, ctx: ctx, tty: isTerminal(w), start: time.Now()}
}

func (p *prefillProgress) update(done, total int) error {
	if err := p.ctx.Err(); err != nil {
		return err
	}
	now := time.Now()
	el := now.Sub(p.start)
	if el < prefillShowAfter || (!p.tty && p.shown && now.Sub(p.last) < prefillEvery) {
		return nil
	}
	rate := float64(done) / el.Seconds()
	eta := time.Duration(float64(total-done) / rate * float64(time.Second)).Round(time.Second)
	line := fmt.Sprintf("prefill: %d/%d tokens (%.0f%%), %.1f tok/s, ETA %s", done, total, 100*float64(done)/float64(total), rate, eta)
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
	p.shown, p.last = true, now
	return nil
}

// clear removes a terminal's progress line once generation starts.
func (p *prefillProgress) clear() {
	if p.shown && p.tty {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}

// progressSink clears the progress line before the first text.
type progressSink struct {
	*replyWriter
	progress *prefillProgress
}

func (s *progressSink) Content(text string) error {
	s.progress.clear()
	return s.replyWriter.Content(text)
}

func (s *progressSink) Reasoning(text string) error {
	s.progress.clear()
	return s.replyWriter.Reasoning(text)
}

// replyWriter is a turn's sink for run: the answer to stdout (and kept,
// for the conversation's history), the reasoning to stderr.
type replyWriter struct {
	out       io.Writer
	reasoning *reasoningWriter
	answer    strings.Builder
}

func (w *replyWriter) Content(text string) error {
	if err := w.reasoning.close(); err != nil {
		return err
	}
	w.answer.WriteString(text)
	_, err := io.WriteString(w.out, text)
	return err
}

func (w *replyWriter) Reasoning(text string) error { return w.reasoning.write(text) }

// chatLoop reads one message per line until end of input, keeping the
// conversation and the KV cache between turns. Ctrl-C stops a reply and
// comes back to the prompt; at the prompt it ends the chat (exit 130).
func (r *runner) chatLoop(sig *interrupts) error {
	lines, quit := readLines(r.env.Stdin)
	defer close(quit)
	tty := isTerminal(r.env.Stdin)
	// --chat with a prompt: the prompt is the first message, as
	// llama.cpp's -i -p does (it used to be dropped without a word).
	first := r.cmd.Prompt
	for {
		var next inputLine
		if first != "" {
			next, first = inputLine{text: first}, ""
			if tty {
				fmt.Fprintf(r.env.Stderr, ">>> %s\n", next.text)
			}
		} else {
			if tty {
				fmt.Fprint(r.env.Stderr, ">>> ")
			}
			select {
			case next = <-lines:
			case <-sig.C:
				fmt.Fprintln(r.env.Stderr)
				return errInterrupted
			}
		}
		if next.eof {
			if tty {
				fmt.Fprintln(r.env.Stderr)
			}
			return next.err
		}
		line := strings.TrimSpace(next.text)
		switch line {
		case "":
			continue
		case "/reset":
			r.history = nil
			fmt.Fprintln(r.env.Stderr, "(conversation cleared)")
			continue
		case "/bye", "/exit", "/quit":
			return nil
		case "/help", "/?":
			fmt.Fprint(r.env.Stderr, chatHelp)
			continue
		}
		if strings.HasPrefix(line, "/") && !strings.Contains(line, " ") {
			fmt.Fprintf(r.env.Stderr, "unknown command %s; /help lists the commands (start a message with a space to send a slash)\n", line)
			continue
		}
		user := chat.Message{Role: chat.RoleUser, Content: line}
		opts := r.chatOptions()
		opts.MaxTokens = r.m.Backend.Ctx() - 1 // leave a position to reply in
		ids, err := r.m.format.Render(r.messages(user), opts)
		if errors.Is(err, chat.ErrTooLong) {
			fmt.Fprintf(r.env.Stderr, "minerva: the conversation is more than %d tokens and no longer fits the context of %d; /reset starts over (or use a larger --ctx)\n", opts.MaxTokens, r.m.Backend.Ctx())
			continue
		}
		if err != nil {
			return err
		}
		if len(ids) >= r.m.Backend.Ctx() { // a context of 1 leaves MaxTokens 0: no limit
			fmt.Fprintf(r.env.Stderr, "minerva: the conversation is %d tokens and no longer fits the context of %d; /reset starts over (or use a larger --ctx)\n", len(ids), r.m.Backend.Ctx())
			continue
		}
		ctx, end := sig.during()
		answer, err := r.reply(ctx, ids)
		end()
		if err != nil {
			return err
		}
		r.history = append(r.history, user, chat.Message{Role: chat.RoleAssistant, Content: answer})
	}
}

// inputLine is one line of a chat's input, or its end (eof, with the
// read error if any).
type inputLine struct {
	text string
	eof  bool
	err  error
}

// readLines reads in line by line on its own goroutine, so that the chat
// can wait for a line and for Ctrl-C at once. It reads at most one line
// ahead; closing quit ends it once its read returns (a read from a
// terminal cannot be interrupted, but the process is ending then).
func readLines(in io.Reader) (<-chan inputLine, chan<- struct{}) {
	lines, quit := make(chan inputLine), make(chan struct{})
	go func() {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
		for sc.Scan() {
			select {
			case lines <- inputLine{text: sc.Text()}:
			case <-quit:
				return
			}
		}
		select {
		case lines <- inputLine{eof: true, err: sc.Err()}:
		case <-quit:
		}
	}()
	return lines, quit
}

const chatHelp = `Commands:
  /help     this list
  /reset    start the conversation over
  /bye      exit (also Ctrl-D)
Ctrl-C stops a reply; at an empty prompt it exits.
`

// reasoningWriter shows reasoning on stderr: dimmed on a terminal,
// between "[reasoning]" and "[/reasoning]" lines elsewhere.
type reasoningWriter struct {
	w      io.Writer
	hide   bool
	tty    bool
	inside bool
}

func newReasoningWriter(w io.Writer, hide bool) *reasoningWriter {
	return &reasoningWriter{w: w, hide: hide, tty: isTerminal(w)}
}

func (r *reasoningWriter) write(text string) error {
	if r.hide {
		return nil
	}
	if !r.inside {
		r.inside = true
		open := "[reasoning]\n"
		if r.tty {
			open = "\033[2m"
		}
		if _, err := io.WriteString(r.w, open); err != nil {
			return err
		}
	}
	_, err := io.WriteString(r.w, text)
	return err
}

func (r *reasoningWriter) close() error {
	if !r.inside {
		return nil
	}
	r.inside = false
	end := "\n[/reasoning]\n"
	if r.tty {
		end = "\033[0m\n"
	}
	_, err := io.WriteString(r.w, end)
	return err
}

// isTerminal reports whether f is a terminal: a character device other
// than the null device (stdin from /dev/null is no conversation).
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	if !ok {
		return false
	}
	fi, err := file.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}

func toInt32(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, v := range ids {
		out[i] = int32(v)
	}
	return out
}
