// Package serve is an OpenAI-compatible HTTP server for one model:
// GET /v1/models, POST /v1/chat/completions and POST /v1/completions,
// streaming (server-sent events ending with "data: [DONE]") or not.
//
// The backend's KV cache holds one or more sequences (loader.Spec.Sequences,
// `minerva serve --parallel`); that many requests generate at once,
// batched into shared steps by an engine.Batcher, and the rest wait in a
// bounded FIFO queue (503 when it is full). A request takes the free
// sequence whose cache holds the longest prefix of its prompt that can be
// resumed exactly, so a conversation that grows turn by turn only
// prefills its new tokens. A client that disconnects stops its generation
// and frees its sequence, or leaves the queue.
// What a client can make the server spend (bodies, time, buffered replies)
// is bounded: see limits.go and docs/limits.md.
//
// For harmony models (gpt-oss), a chat completion's content is the final
// channel and the reasoning (the analysis channel) is returned apart as
// reasoning_content, an extension other servers (vLLM, llama.cpp) share.
// Other extensions: top_k, min_p, repeat_penalty (or repetition_penalty)
// and ignore_eos. logprobs, n (choices run one after the other),
// logit_bias, the presence and frequency penalties and response_format
// (structured.go) are OpenAI's; fields.go says which known fields are
// refused or ignored, and cors.go how browsers are let in.
package serve

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minerva-ml/minerva/runtime/chat"
	"github.com/minerva-ml/minerva/runtime/engine"
	"github.com/minerva-ml/minerva/runtime/sample"
	"github.com/minerva-ml/minerva/runtime/tokenizer"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// Model is what the server serves.
type Model struct {
	// Name is the model's id in the API.
	Name      string
	Backend   engine.Backend
	Tokenizer *tokenizer.Tokenizer
	Format    chat.Format
	// EOS are the model's end-of-sequence ids; with the format's stop
	// tokens they end a reply.
	EOS []int32
	// Defaults are the sampling options for fields a request leaves out
	// (Seed is ignored: such requests get a random seed).
	Defaults sample.Options
	// Created is reported by /v1/models.
	Created time.Time
}

// Config tunes the server; the zero value is usable.
type Config struct {
	// APIKey, when set, must come as "Authorization: Bearer KEY".
	APIKey string
	// MaxQueue is how many requests may wait for a free sequence; more
	// get a 503. 0 means DefaultMaxQueue.
	MaxQueue int
	// MaxBodyBytes limits request bodies (413 above it); 0 means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxReading is how many requests may be received and decoded at
	// once (503 beyond it), and MaxDecoding how many of those decode and
	// tokenize at once (the others wait). 0 means DefaultMaxReading, and
	// one decoder per core. See limits.go.
	MaxReading, MaxDecoding int
	// MaxConnections is how many connections may be open at once (a
	// further one gets a 503 and is closed); 0 means
	// DefaultMaxConnections.
	MaxConnections int
	// ReadHeaderTimeout and ReadTimeout bound the time to receive a
	// request's headers, and its headers and body (ListenAndServe and
	// ConfigureHTTP apply them); WriteTimeout bounds each write of a
	// reply. 0 means their defaults.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout time.Duration
	// Chat is passed to the chat format (reasoning effort, date).
	Chat chat.Options
	// CORSOrigins are the origins browsers may call the API from ("*"
	// for any); none turns CORS off (cors.go).
	CORSOrigins []string
	// Log receives one line per request; nil logs nothing.
	Log *log.Logger
	// OnGeneration, if set, is called after each generation, with its
	// sequence still held (keep it short).
	OnGeneration func(Generation)
}

// Defaults of Config.
const (
	DefaultMaxQueue     = 64
	DefaultMaxBodyBytes = 1 << 20
	// DefaultCompletionMaxTokens is /v1/completions' max_tokens default,
	// as OpenAI's; chat completions default to the rest of the context.
	DefaultCompletionMaxTokens = 16
)

// Generation describes one finished generation, for Config.OnGeneration.
type Generation struct {
	Endpoint string
	Stats    engine.Stats
	// Reused is how many prompt tokens came from the KV cache.
	Reused int
	// Err is the error that ended it: context.Canceled when the client
	// went away.
	Err error
}

// Metrics are running totals.
type Metrics struct {
	Requests, Completed, Cancelled, Failed int64
	QueueFull                              int64
	// ReadingFull counts the requests refused because MaxReading were
	// already being received.
	ReadingFull int64
	// ConnectionsFull counts the connections refused because
	// MaxConnections were already open.
	ConnectionsFull            int64
	PromptTokens, CachedTokens int64
	CompletionTokens           int64
	// Waiting is the number of requests in the queue now.
	Waiting int
	// Reading is the number of requests being received or decoded now.
	Reading int
	// Connections is the number of open connections now.
	Connections int
}

// Server is an http.Handler.
type Server struct {
	m        Model
	cfg      Config
	mux      *http.ServeMux
	batcher  *engine.Batcher
	stopIDs  map[int32]bool
	idPrefix string
	seq      atomic.Uint64

	// masker masks the vocabulary for response_format.
	masker vocabMasker

	// Requests being received or decoded hold a slot of reading; those
	// decoding, one of decoding too (limits.go).
	reading, decoding chan struct{}
	conns             atomic.Int64 // open connections

	// degraded, once set, is why the model cannot run any more: its
	// checkpoint changed on disk. /health reports it.
	degraded atomic.Pointer[string]

	mu           sync.Mutex
	metrics      Metrics
	decodingPeak int // the most requests seen decoding at once, for tests
}

// New returns a server for m. The server owns the backend's KV cache:
// nothing else may run the backend until Close.
func New(m Model, cfg Config) (*Server, error) {
	if m.Backend == nil || m.Tokenizer == nil || m.Format == nil || m.Name == "" {
		return nil, fmt.Errorf("serve: the model needs a name, a backend, a tokenizer and a chat format")
	}
	if err := m.Defaults.Validate(); err != nil {
		return nil, fmt.Errorf("serve: default sampling: %w", err)
	}
	if err := cfg.Chat.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = DefaultMaxQueue
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxReading <= 0 {
		cfg.MaxReading = DefaultMaxReading
	}
	if cfg.MaxDecoding <= 0 {
		cfg.MaxDecoding = defaultMaxDecoding()
	}
	cfg.MaxDecoding = min(cfg.MaxDecoding, cfg.MaxReading)
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if m.Created.IsZero() {
		m.Created = time.Now()
	}
	var prefix [6]byte
	rand.Read(prefix[:])
	s := &Server{
		m: m, cfg: cfg,
		batcher:  engine.NewBatcher(m.Backend, engine.BatcherOptions{MaxQueue: cfg.MaxQueue}),
		stopIDs:  map[int32]bool{},
		idPrefix: hex.EncodeToString(prefix[:]),
		reading:  make(chan struct{}, cfg.MaxReading),
		decoding: make(chan struct{}, cfg.MaxDecoding),
	}
	// A generation that fails because the checkpoint changed on disk
	// leaves the model unusable (its KV cache half written, its weights
	// gone): the server refuses further generations and /health says so.
	onGeneration := cfg.OnGeneration
	s.cfg.OnGeneration = func(g Generation) {
		if errors.Is(g.Err, weights.ErrChanged) {
			msg := g.Err.Error()
			s.degraded.CompareAndSwap(nil, &msg)
		}
		if onGeneration != nil {
			onGeneration(g)
		}
	}
	for _, id := range m.Format.StopTokens() {
		s.stopIDs[id] = true
	}
	for _, id := range m.EOS {
		s.stopIDs[id] = true
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/models", s.listModels)
	mux.HandleFunc("GET /v1/models/{id...}", s.getModel)
	mux.HandleFunc("POST /v1/chat/completions", s.chatCompletions)
	mux.HandleFunc("POST /v1/completions", s.completions)
	mux.HandleFunc("POST /v1/responses", s.responses)
	mux.HandleFunc("GET /health", s.health)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allowed, ok := endpoints[r.URL.Path]; ok {
			w.Header().Set("Allow", allowed)
			writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error", Code: str("method_not_allowed"),
				Message: fmt.Sprintf("%s %s is not allowed; use %s", r.Method, r.URL.Path, allowed)})
			return
		}
		writeError(w, &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Code: str("unknown_url"),
			Message: fmt.Sprintf("unknown request URL: %s %s; the API is GET /v1/models, POST /v1/chat/completions, POST /v1/completions and POST /v1/responses", r.Method, r.URL.Path)})
	})
	s.mux = mux
	return s, nil
}

// Close stops the server's batching loop; requests still running fail.
// The backend stays open: its owner closes it.
func (s *Server) Close() { s.batcher.Close() }

// BatchStats are the batcher's totals: steps run and the tokens in them.
func (s *Server) BatchStats() engine.BatcherStats { return s.batcher.Stats() }

// Parallel is how many requests generate at once.
func (s *Server) Parallel() int { return s.batcher.Sequences() }

// endpoints maps the API's paths to their method, for 405s.
var endpoints = map[string]string{
	"/v1/models":           "GET",
	"/v1/chat/completions": "POST",
	"/v1/completions":      "POST",
	"/v1/responses":        "POST",
	"/health":              "GET",
}

// Metrics returns the running totals.
func (s *Server) Metrics() Metrics {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.metrics
	m.Waiting = s.batcher.Waiting()
	m.Reading = len(s.reading)
	m.Connections = int(s.conns.Load())
	return m
}

// health is 200 {"status":"ok"}, or 503 {"status":"degraded","error":...}
// once the model cannot run.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	if msg := s.degraded.Load(); msg != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		b, _ := json.Marshal(map[string]string{"status": "degraded", "error": *msg})
		w.Write(append(b, '\n'))
		return
	}
	writeJSON(w, map[string]string{"status": "ok"})
}

func (s *Server) count(f func(*Metrics)) {
	s.mu.Lock()
	f(&s.metrics)
	s.mu.Unlock()
}

// ServeHTTP checks the API key, then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	r = r.WithContext(ctx)
	rec := &statusRecorder{ResponseWriter: newDeadlineWriter(w, s.cfg.WriteTimeout, cancel), status: http.StatusOK}
	defer func() {
		if s.cfg.Log != nil {
			s.cfg.Log.Printf("%s %s %d %s", r.Method, r.URL.Path, rec.status, time.Since(start).Round(time.Millisecond))
		}
	}()
	if s.cors(rec, r) {
		return // a preflight, answered
	}
	if s.cfg.APIKey != "" && r.URL.Path != "/health" {
		key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(key)), []byte(s.cfg.APIKey)) != 1 {
			msg := "incorrect API key provided; send it as \"Authorization: Bearer KEY\""
			if r.Header.Get("Authorization") == "" {
				msg = "no API key provided; send it as \"Authorization: Bearer KEY\""
			}
			writeError(rec, &apiError{Status: http.StatusUnauthorized, Type: "invalid_request_error", Code: str("invalid_api_key"), Message: msg})
			return
		}
	}
	s.mux.ServeHTTP(rec, r)
}

// statusRecorder remembers the status for the log; it passes Flush on.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

type modelJSON struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func (s *Server) modelObject() modelJSON {
	return modelJSON{ID: s.m.Name, Object: "model", Created: s.m.Created.Unix(), OwnedBy: "minerva"}
}

func (s *Server) listModels(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, map[string]any{"object": "list", "data": []modelJSON{s.modelObject()}})
}

func (s *Server) getModel(w http.ResponseWriter, r *http.Request) {
	if e := s.checkModel(r.PathValue("id")); e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, s.modelObject())
}

// checkModel accepts the served model's name, or none.
func (s *Server) checkModel(name string) *apiError {
	if name == "" || name == s.m.Name {
		return nil
	}
	return &apiError{Status: http.StatusNotFound, Type: "invalid_request_error", Param: str("model"), Code: str("model_not_found"),
		Message: fmt.Sprintf("the model %q does not exist; this server serves %q", name, s.m.Name)}
}

func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) {
	r, body, leave, e := s.intake(w, r)
	if e == nil {
		defer leave()
		var req *request
		if req, e = parseChatRequest(body); e == nil {
			if e = s.checkModel(req.Model); e == nil {
				e = s.runChat(w, r, req)
			}
		}
	}
	if e != nil {
		writeError(w, e)
	}
}

func (s *Server) completions(w http.ResponseWriter, r *http.Request) {
	r, body, leave, e := s.intake(w, r)
	if e == nil {
		defer leave()
		var req *request
		if req, e = parseCompletionRequest(body); e == nil {
			if e = s.checkModel(req.Model); e == nil {
				e = s.runCompletion(w, r, req)
			}
		}
	}
	if e != nil {
		writeError(w, e)
	}
}

func (s *Server) newID(prefix string) string {
	return fmt.Sprintf("%s-%s%06d", prefix, s.idPrefix, s.seq.Add(1))
}

// ListenAndServe serves s on addr until ctx is done, then shuts down
// gracefully: it stops accepting connections and lets running requests
// finish for up to grace, then cancels them (their generations stop) and
// closes what is left. ready, if set, is called with the bound address
// once the server listens.
func ListenAndServe(ctx context.Context, addr string, s *Server, grace time.Duration, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	base, cancelRequests := context.WithCancel(context.Background())
	defer cancelRequests()
	// Handlers are counted so that this returns only once none is left:
	// the caller may then close the model.
	var active sync.WaitGroup
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			active.Add(1)
			defer active.Done()
			s.ServeHTTP(w, r)
		}),
		BaseContext: func(net.Listener) context.Context { return base },
	}
	s.ConfigureHTTP(srv)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if ready != nil {
		ready(ln.Addr())
	}
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err = srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		cancelRequests()
		err = srv.Close()
	}
	<-served // http.ErrServerClosed
	active.Wait()
	return err
}
