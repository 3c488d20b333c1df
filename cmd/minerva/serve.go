package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/minerva-ml/minerva/runtime/chat"
	"github.com/minerva-ml/minerva/runtime/serve"
)

// ServeCmd is `minerva serve`: an OpenAI-compatible HTTP server.
type ServeCmd struct {
	Arch string `arg:"" optional:"" help:"An .arch file or a compiled artifact directory. Default: the shipped architecture named by the model's config.json." name:"ARCH_OR_ARTIFACT"`
	ModelFlags
	ChatFlags
	SamplingFlags
	Addr     string        `help:"Address to listen on. The default accepts connections from this machine only; use 0.0.0.0:8080 (with --api-key) to serve others." default:"127.0.0.1:8080" placeholder:"HOST:PORT"`
	APIKey   string        `name:"api-key" env:"MINERVA_API_KEY" help:"Require this key as \"Authorization: Bearer KEY\" (also from $MINERVA_API_KEY)." placeholder:"KEY"`
	Parallel int           `help:"Requests that generate at once, batched together; each has its own KV cache (--ctx positions each)." default:"4"`
	MaxQueue int           `help:"Most requests waiting for a free sequence (beyond --parallel); more get 503." default:"64"`
	Grace    time.Duration `help:"On SIGINT or SIGTERM, how long running requests may finish before they are cancelled." default:"30s"`
	Alias    string        `help:"The model's id in the API (/v1/models, the model field). Default: the model directory's base name, the Hugging Face id, or fortune." placeholder:"NAME"`
	// sep:"none": an origin is one value per flag, never split on commas.
	CORSOrigin []string `name:"cors-origin" sep:"none" help:"Let browser pages from ORIGIN (e.g. http://localhost:3000, or * for any) call the API: answer CORS preflights and set Access-Control-Allow-Origin. Repeatable. Off by default." placeholder:"ORIGIN"`

	// Limits on what clients can make the server spend (docs/limits.md).
	MaxBody           int64         `help:"Largest request body in bytes; larger ones get 413." default:"1048576" placeholder:"BYTES"`
	MaxConnections    int           `help:"Most connections open at once; a further one gets 503 and is closed." default:"1024"`
	MaxReading        int           `help:"Most requests being received and decoded at once; more get 503." default:"64"`
	MaxDecoding       int           `help:"Most requests decoding their JSON and tokenizing their prompt at once; the others wait. 0: one per core." default:"0"`
	ReadHeaderTimeout time.Duration `help:"Time a client has to send a request's headers." default:"10s"`
	ReadTimeout       time.Duration `help:"Time a client has to send a whole request, headers and body; a request still arriving then gets 408." default:"30s"`
	WriteTimeout      time.Duration `help:"Time each write of a reply may take; a client that stops reading for longer is dropped and its generation cancelled." default:"30s"`
}

// checkLimits refuses limits that would turn the server off.
func (c *ServeCmd) checkLimits() error {
	switch {
	case c.MaxQueue < 1:
		return fmt.Errorf("--max-queue must be at least 1, not %d", c.MaxQueue)
	case c.MaxBody < 1:
		return fmt.Errorf("--max-body must be at least 1 byte, not %d", c.MaxBody)
	case c.MaxConnections < 1:
		return fmt.Errorf("--max-connections must be at least 1, not %d", c.MaxConnections)
	case c.MaxReading < 1:
		return fmt.Errorf("--max-reading must be at least 1, not %d", c.MaxReading)
	case c.Alias != "" && strings.TrimSpace(c.Alias) != c.Alias:
		return fmt.Errorf("--alias %q has spaces around it; give the id as clients will send it", c.Alias)
	case c.MaxDecoding < 0:
		return fmt.Errorf("--max-decoding must be 0 (one per core) or more, not %d", c.MaxDecoding)
	}
	for _, t := range []struct {
		flag string
		d    time.Duration
	}{{"--read-header-timeout", c.ReadHeaderTimeout}, {"--read-timeout", c.ReadTimeout}, {"--write-timeout", c.WriteTimeout}} {
		if t.d <= 0 {
			return fmt.Errorf("%s must be positive, not %s", t.flag, t.d)
		}
	}
	return nil
}

// Run serves until SIGINT or SIGTERM.
func (c *ServeCmd) Run(env *Env) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return c.serve(ctx, env, nil)
}

// serve serves until ctx is done; ready gets the bound address.
func (c *ServeCmd) serve(ctx context.Context, env *Env, ready func(net.Addr)) error {
	if err := c.checkLimits(); err != nil {
		return err
	}
	if c.Parallel < 1 {
		return fmt.Errorf("--parallel must be at least 1, not %d", c.Parallel)
	}
	spec := c.spec(c.Arch, env)
	spec.Sequences = c.Parallel
	m, err := loadChatModel(spec, c.ChatFormat)
	if err != nil {
		return err
	}
	defer m.Close()
	opts, err := c.SamplingFlags.options(m)
	if err != nil {
		return err
	}
	name := m.Name
	if c.Alias != "" {
		name = c.Alias
	}
	srv, err := serve.New(serve.Model{
		Name: name, Backend: m.Backend, Tokenizer: m.tok, Format: m.format, EOS: m.eos, Defaults: opts,
	}, serve.Config{
		APIKey:            c.APIKey,
		MaxQueue:          c.MaxQueue,
		MaxBodyBytes:      c.MaxBody,
		MaxConnections:    c.MaxConnections,
		MaxReading:        c.MaxReading,
		MaxDecoding:       c.MaxDecoding,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      c.WriteTimeout,
		Chat:              chat.Options{ReasoningEffort: c.ReasoningEffort},
		CORSOrigins:       c.CORSOrigin,
		Log:               log.New(env.Stderr, "", log.LstdFlags),
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	if srv.Parallel() < c.Parallel {
		fmt.Fprintf(env.Stderr, "warning: the %s backend runs one sequence at a time so far: --parallel %d is served as 1\n", m.BackendName, c.Parallel)
	}
	return serve.ListenAndServe(ctx, c.Addr, srv, c.Grace, func(a net.Addr) {
		fmt.Fprintf(env.Stderr, "serving %s (%s: %s) at http://%s/v1; %d requests at once, the rest queued; Ctrl-C stops\n", name, m.format.Name(), m.why, a, srv.Parallel())
		if host, _, err := net.SplitHostPort(a.String()); err == nil && c.APIKey == "" {
			if ip := net.ParseIP(host); ip != nil && !ip.IsLoopback() {
				fmt.Fprintf(env.Stderr, "warning: %s is reachable from other machines and --api-key is not set\n", a)
			}
		}
		if ready != nil {
			ready(a)
		}
	})
}
