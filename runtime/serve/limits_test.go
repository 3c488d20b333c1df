package serve

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/models"
	"github.com/minerva-ml/minerva/runtime/chat"
	"github.com/minerva-ml/minerva/runtime/loader"
)

// startServer serves s with its own timeouts (ConfigureHTTP), as
// ListenAndServe does, on a loopback test server.
func startServer(t *testing.T, s *Server) (*httptest.Server, openai.Client) {
	t.Helper()
	hs := httptest.NewUnstartedServer(s)
	s.ConfigureHTTP(hs.Config)
	hs.Start()
	transport := &http.Transport{}
	t.Cleanup(func() {
		transport.CloseIdleConnections()
		hs.Close()
	})
	client := openai.NewClient(option.WithBaseURL(hs.URL+"/v1/"), option.WithAPIKey("x"),
		option.WithHTTPClient(&http.Client{Transport: transport}), option.WithMaxRetries(0))
	return hs, client
}

// rawRequest opens a connection that sends a request's headers and the
// first part of its body, and nothing more unless the caller writes it.
// The connection reads nothing: its receive buffer is made tiny.
func rawRequest(t *testing.T, hs *httptest.Server, path, body string, sendBytes int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.(*net.TCPConn).SetReadBuffer(1); err != nil {
		t.Fatal(err)
	}
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, len(body))
	if _, err := io.WriteString(c, head+body[:sendBytes]); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestBodyTooLarge: a body over --max-body gets a 413 naming the limit and
// the flag, whether it declares its length or not.
func TestBodyTooLarge(t *testing.T) {
	s, err := New(fortune, Config{MaxBodyBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	hs, _ := startServer(t, s)
	big := `{"prompt":"` + strings.Repeat("x", 2000) + `"}`
	for _, chunked := range []bool{false, true} {
		var r io.Reader = strings.NewReader(big)
		if chunked {
			r = io.MultiReader(r) // no length: sent chunked
		}
		res, err := http.Post(hs.URL+"/v1/completions", "application/json", r)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("chunked %v: status %d, want 413", chunked, res.StatusCode)
		}
		checkError(t, string(b), "invalid_request_error", "", "request_too_large", "larger than 1000 bytes")
		if !strings.Contains(string(b), "--max-body") {
			t.Errorf("the 413 does not name the flag: %s", b)
		}
	}
	http.DefaultClient.CloseIdleConnections()
}

// TestHalfSentBodies: requests whose bodies stop arriving hold a reading
// slot only until the read timeout; with every slot held, more requests
// get a 503 at once, naming the limit; afterwards the server takes
// requests again.
func TestHalfSentBodies(t *testing.T) {
	const readTimeout = 500 * time.Millisecond
	s, err := New(fortune, Config{MaxReading: 2, ReadTimeout: readTimeout})
	if err != nil {
		t.Fatal(err)
	}
	hs, _ := startServer(t, s)
	body := `{"prompt":"A computer","max_tokens":1}`
	var stalled []net.Conn
	for range 2 {
		stalled = append(stalled, rawRequest(t, hs, "/v1/completions", body, 10))
	}
	sent := time.Now()
	waitFor(t, func() bool { return s.Metrics().Reading == 2 })
	// Every reading slot is held: refused at once.
	got := post(t, hs.URL+"/v1/completions", body, http.StatusServiceUnavailable)
	checkError(t, got, "server_error", "", "server_busy", "--max-reading")
	// The half-sent requests are dropped with a 408 after the timeout.
	for i, c := range stalled {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("half-sent request %d: %v", i, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), "--read-timeout") {
			t.Errorf("half-sent request %d: status %d, %s", i, res.StatusCode, b)
		}
	}
	if held := time.Since(sent); held > readTimeout+5*time.Second {
		t.Errorf("half-sent bodies held for %s with a read timeout of %s", held, readTimeout)
	}
	waitFor(t, func() bool { return s.Metrics().Reading == 0 })
	// A new connection: the server closes idle ones after the (short)
	// read timeout, which a reused one could race.
	http.DefaultClient.CloseIdleConnections()
	post(t, hs.URL+"/v1/completions", body, http.StatusOK)
	if m := s.Metrics(); m.ReadingFull != 1 {
		t.Errorf("metrics %+v: want 1 refused for --max-reading", m)
	}
	http.DefaultClient.CloseIdleConnections()
}

// countingFormat records how many prompts render (and tokenize) at once:
// the costly part of decoding a request.
type countingFormat struct {
	chat.Format
	now, peak atomic.Int32
}

func (f *countingFormat) Render(msgs []chat.Message, opts chat.Options) ([]int32, error) {
	n := f.now.Add(1)
	defer f.now.Add(-1)
	for p := f.peak.Load(); n > p && !f.peak.CompareAndSwap(p, n); p = f.peak.Load() {
	}
	time.Sleep(5 * time.Millisecond) // let others come in, were they allowed
	return f.Format.Render(msgs, opts)
}

// TestDecodingCap: many large bodies at once are decoded and tokenized
// at most MaxDecoding at a time, so the memory that takes (tens of times
// the body) is bounded; each still gets its answer.
func TestDecodingCap(t *testing.T) {
	format := &countingFormat{Format: fortune.Format}
	m := fortune
	m.Format = format
	s, err := New(m, Config{MaxDecoding: 2, MaxReading: 64})
	if err != nil {
		t.Fatal(err)
	}
	hs, _ := startServer(t, s)
	// 100 KB prompts: tokenized, then refused as longer than the context.
	body := `{"messages":[{"role":"user","content":"` + strings.Repeat("word ", 20000) + `"}]}`
	const clients = 24
	transport := &http.Transport{MaxIdleConnsPerHost: clients}
	defer transport.CloseIdleConnections()
	hc := &http.Client{Transport: transport}
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			res, err := hc.Post(hs.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "context_length_exceeded") {
				t.Errorf("status %d: %s", res.StatusCode, b)
			}
		})
	}
	wg.Wait()
	if p := format.peak.Load(); p > 2 || p < 1 {
		t.Errorf("%d prompts rendered at once with MaxDecoding 2", p)
	}
}

// TestQueuedRequestsLeaveIntake: a request waiting for the model holds no
// reading slot, so with one slot a further request is still read (and
// refused for its own fault, not for a busy intake).
func TestQueuedRequestsLeaveIntake(t *testing.T) {
	s, err := New(fortune, Config{MaxReading: 1})
	if err != nil {
		t.Fatal(err)
	}
	hs, client := startServer(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream := client.Chat.Completions.NewStreaming(ctx, greedyChat(400), option.WithJSONSet("ignore_eos", true))
	defer stream.Close()
	if !stream.Next() {
		t.Fatal(stream.Err())
	}
	waited := make(chan error, 1)
	go func() {
		_, err := client.Chat.Completions.New(ctx, greedyChat(2))
		waited <- err
	}()
	waitFor(t, func() bool { return s.Metrics().Waiting == 1 })
	got := post(t, hs.URL+"/v1/chat/completions", `{`, http.StatusBadRequest)
	checkError(t, got, "invalid_request_error", "", "invalid_json", "not valid JSON")
	cancel()
	<-waited
	waitFor(t, func() bool { return s.Metrics().Cancelled == 2 })
	http.DefaultClient.CloseIdleConnections()
}

// TestTruncatedCheckpoint: a checkpoint cut short while served makes the
// request that reads it fail with an error saying so, instead of killing
// the process (SIGBUS); the server stays up, /health reports it degraded
// and generations are refused.
func TestTruncatedCheckpoint(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"config.json", "tokenizer.json", "model.safetensors"} {
		if err := os.WriteFile(filepath.Join(dir, name), models.FortuneFile(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lm, err := loader.Load(loader.Spec{Model: dir, Plan: compiler.PlanOptions{Ctx: testCtx, KV: "f32", Batch: 64}, Backend: "cpu", Workers: 2, Tokenizer: true})
	if err != nil {
		t.Fatal(err)
	}
	defer lm.Close()
	tok := lm.Tokenizer
	files, _ := chat.ReadModelFiles(lm.Dir, tok, lm.HFConfig, lm.GenerationConfig)
	det, err := chat.Detect(files)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Model{Name: "fortune", Backend: lm.Backend, Tokenizer: tok, Format: det.Format, EOS: files.EOS}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	hs, _ := startServer(t, s)
	body := `{"prompt":"A computer","max_tokens":4,"temperature":0}`
	post(t, hs.URL+"/v1/completions", body, http.StatusOK)
	post(t, hs.URL+"/health", "", http.StatusMethodNotAllowed) // the server answers
	if err := os.Truncate(filepath.Join(dir, "model.safetensors"), 0); err != nil {
		t.Fatal(err)
	}
	// A different prompt, so that the model runs (the cache holds none
	// of it).
	got := post(t, hs.URL+"/v1/completions", `{"prompt":"Q: Why","max_tokens":4,"temperature":0}`, http.StatusInternalServerError)
	checkError(t, got, "server_error", "", "", "the checkpoint changed on disk: model.safetensors is now 0 bytes")

	res, err := http.Get(hs.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), `"status":"degraded"`) || !strings.Contains(string(b), "the checkpoint changed on disk") {
		t.Errorf("/health after the fault: %d %s", res.StatusCode, b)
	}
	got = post(t, hs.URL+"/v1/completions", body, http.StatusServiceUnavailable)
	checkError(t, got, "server_error", "", "model_unavailable", "cannot run the model until it is restarted: the checkpoint changed on disk")
	post(t, hs.URL+"/v1/models", "", http.StatusMethodNotAllowed)
	res, err = http.Get(hs.URL + "/v1/models")
	if err != nil || res.StatusCode != http.StatusOK {
		t.Errorf("/v1/models after the fault: %v %v", res, err)
	}
	res.Body.Close()
	http.DefaultClient.CloseIdleConnections()
}

// TestMaxConnections: past MaxConnections open connections a new one gets
// a 503 naming the flag and is closed; once one closes, requests are
// served again.
func TestMaxConnections(t *testing.T) {
	s, err := New(fortune, Config{MaxConnections: 2})
	if err != nil {
		t.Fatal(err)
	}
	hs, _ := startServer(t, s)
	var open []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", hs.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		open = append(open, c)
	}
	waitFor(t, func() bool { return s.Metrics().Connections == 2 })
	c, err := net.Dial("tcp", hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("connection past the limit: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("connection past the limit: status %d", res.StatusCode)
	}
	checkError(t, string(b), "server_error", "", "server_busy", "--max-connections")
	open[0].Close()
	waitFor(t, func() bool { return s.Metrics().Connections == 1 })
	post(t, hs.URL+"/v1/completions", `{"prompt":"A computer","max_tokens":1}`, http.StatusOK)
	http.DefaultClient.CloseIdleConnections()
	if m := s.Metrics(); m.ConnectionsFull != 1 {
		t.Errorf("metrics %+v: want 1 connection refused", m)
	}
}

// TestStreamOutlivesReadTimeout: the read timeout bounds receiving a
// request, not the reply: a stream that lasts longer goes on.
func TestStreamOutlivesReadTimeout(t *testing.T) {
	const readTimeout = 100 * time.Millisecond
	s, err := New(fortune, Config{ReadTimeout: readTimeout})
	if err != nil {
		t.Fatal(err)
	}
	_, client := startServer(t, s)
	start := time.Now()
	stream := client.Completions.NewStreaming(context.Background(), openai.CompletionNewParams{
		Model:       "fortune",
		Prompt:      openai.CompletionNewParamsPromptUnion{OfString: openai.String(prompt)},
		MaxTokens:   openai.Int(60),
		Temperature: openai.Float(0),
	}, option.WithJSONSet("ignore_eos", true))
	defer stream.Close()
	finish := ""
	for stream.Next() {
		for _, c := range stream.Current().Choices {
			if c.FinishReason != "" {
				finish = string(c.FinishReason)
			}
		}
		time.Sleep(readTimeout / 20) // a slow but live client
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if finish != "length" {
		t.Errorf("the stream ended with finish reason %q, want length (all 60 tokens)", finish)
	}
	if d := time.Since(start); d < 2*readTimeout {
		t.Errorf("the stream took %s: the test needs it to outlast the read timeout (%s)", d, readTimeout)
	}
}
