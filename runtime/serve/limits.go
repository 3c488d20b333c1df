package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/minerva-ml/minerva/compiler"
)

// What a client can make the server spend before its request reaches the
// model's queue, and while its reply is written.
//
//   - Connections: MaxConnections open at once; a further one gets a 503
//     and is closed. Each costs a goroutine and a 4 KiB read buffer.
//   - Headers: ReadHeaderTimeout and maxHeaderBytes.
//   - The body: MaxBodyBytes (413 above it) and ReadTimeout, which covers
//     the headers and the whole body; a half-sent body is dropped with a
//     408 when it runs out.
//   - Requests being received or decoded at once: MaxReading (503 beyond
//     it). Each holds at most its body, so the bodies in memory are at
//     most MaxReading × MaxBodyBytes (read twice over while they grow).
//   - Of those, MaxDecoding at a time decode their JSON and tokenize their
//     prompt, which takes tens of times the body's size for a moment; the
//     others wait for their turn with their body read.
//   - Requests waiting for the model: MaxQueue (503 beyond it). A request
//     gives its intake slots back when it joins that queue, holding only
//     its prompt's token ids.
//   - Replies: each write to a client must finish within WriteTimeout, so a
//     client that stops reading holds the model for at most that long.
//     A stream buffers what the server's connection buffers (4 KiB) and the
//     socket's send buffer, set to sendBuffer: nothing more is queued, and
//     generation waits for the client.

// Defaults of Config's limits.
const (
	DefaultWriteTimeout      = 30 * time.Second
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultMaxReading        = 64
	DefaultMaxConnections    = 1024
	// maxHeaderBytes bounds a request's headers (Go's default is 1 MiB).
	maxHeaderBytes = 64 << 10
	// sendBuffer is each connection's socket send buffer. Left to itself
	// Linux grows it up to 4 MiB (tcp_wmem), which a client that stops
	// reading fills before a write blocks and its deadline counts; 16 KiB
	// (Linux doubles it) is ample for a stream of tokens.
	sendBuffer = 16 << 10
)

// defaultMaxDecoding is one decoder per core: decoding is CPU work, and
// more at a time would not finish sooner.
func defaultMaxDecoding() int { return max(1, runtime.GOMAXPROCS(0)) }

// ConfigureHTTP sets hs's timeouts and header limit from the server's
// Config; ListenAndServe calls it. Tests that start their own http.Server
// call it too.
func (s *Server) ConfigureHTTP(hs *http.Server) {
	hs.ReadHeaderTimeout = s.cfg.ReadHeaderTimeout
	hs.ReadTimeout = s.cfg.ReadTimeout
	// Idle keep-alive connections are closed after ReadTimeout
	// (IdleTimeout 0 means that).
	hs.IdleTimeout = 0
	hs.MaxHeaderBytes = maxHeaderBytes
	// WriteTimeout stays 0: it would bound a whole reply, and a stream may
	// rightly last long. Each write has its own deadline (deadlineWriter).
	hs.WriteTimeout = 0
	hs.ConnState = s.trackConn
	hs.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if b, ok := c.(interface{ SetWriteBuffer(int) error }); ok {
			_ = b.SetWriteBuffer(sendBuffer) // best effort: the deadline still holds
		}
		return ctx
	}
}

// trackConn counts open connections, and closes a new one past
// MaxConnections with a 503. It runs on the server's accept loop.
func (s *Server) trackConn(c net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		if s.conns.Add(1) <= int64(s.cfg.MaxConnections) {
			return
		}
		s.count(func(m *Metrics) { m.ConnectionsFull++ })
		body := fmt.Sprintf(`{"error":{"message":"the server is busy: %d connections are open (the server's limit, minerva serve --max-connections); retry later","type":"server_error","param":null,"code":"server_busy"}}`+"\n", s.cfg.MaxConnections)
		// A new socket's send buffer is empty: this does not block, and
		// the deadline makes sure of it.
		c.SetWriteDeadline(time.Now().Add(time.Second))
		fmt.Fprintf(c, "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		c.Close() // the server then reports it closed
	case http.StateClosed, http.StateHijacked:
		s.conns.Add(-1)
	}
}

// deadlineWriter gives every write to the client WriteTimeout to finish.
// A write that fails (the deadline passed, or the client went away)
// cancels the request's context, which stops its generation.
type deadlineWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	cancel  context.CancelFunc
}

func newDeadlineWriter(w http.ResponseWriter, timeout time.Duration, cancel context.CancelFunc) *deadlineWriter {
	d := &deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), timeout: timeout, cancel: cancel}
	// Also for what the server writes on its own before the handler's
	// first write (100 Continue).
	d.extend()
	return d
}

func (d *deadlineWriter) extend() {
	// ErrNotSupported (a recorder in tests) leaves writes unbounded.
	_ = d.rc.SetWriteDeadline(time.Now().Add(d.timeout))
}

func (d *deadlineWriter) Write(b []byte) (int, error) {
	d.extend()
	n, err := d.ResponseWriter.Write(b)
	if err != nil {
		d.cancel()
	}
	return n, err
}

// FlushError is what http.ResponseController.Flush calls.
func (d *deadlineWriter) FlushError() error {
	d.extend()
	err := d.rc.Flush()
	if err != nil {
		d.cancel()
	}
	return err
}

func (d *deadlineWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }

// admission is a request's hold on the intake: a reading slot, then also
// a decoding slot. It is given back when the request joins the model's
// queue (generate calls leaveIntake before it waits for a sequence) or ends.
type admission struct {
	s                 *Server
	mu                sync.Mutex
	reading, decoding bool
}

type admissionKey struct{}

func (a *admission) leave() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.decoding {
		<-a.s.decoding
		a.decoding = false
	}
	if a.reading {
		<-a.s.reading
		a.reading = false
	}
}

// leaveIntake gives back the intake slots of the request of ctx, if any.
func leaveIntake(ctx context.Context) {
	if a, ok := ctx.Value(admissionKey{}).(*admission); ok {
		a.leave()
	}
}

// intake admits a request to be read and decoded: it checks that the
// model can run, takes a reading slot (503 when none is free), reads the
// body within MaxBodyBytes, then waits for a decoding slot. On success the
// caller must call leave when done; the returned request carries the
// admission in its context.
func (s *Server) intake(w http.ResponseWriter, r *http.Request) (*http.Request, []byte, func(), *apiError) {
	if msg := s.degraded.Load(); msg != nil {
		return nil, nil, nil, &apiError{Status: http.StatusServiceUnavailable, Type: "server_error", Code: str("model_unavailable"),
			Message: "the server cannot run the model until it is restarted: " + *msg}
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, nil, nil, s.tooLarge()
	}
	select {
	case s.reading <- struct{}{}:
	default:
		s.count(func(m *Metrics) { m.ReadingFull++ })
		return nil, nil, nil, &apiError{Status: http.StatusServiceUnavailable, Type: "server_error", Code: str("server_busy"),
			Message: fmt.Sprintf("the server is busy: %d requests are already being received (the server's limit, minerva serve --max-reading); retry later", s.cfg.MaxReading)}
	}
	a := &admission{s: s, reading: true}
	r = r.WithContext(context.WithValue(r.Context(), admissionKey{}, a))
	body, e := s.readBody(w, r)
	if e != nil {
		a.leave()
		return nil, nil, nil, e
	}
	select {
	case s.decoding <- struct{}{}:
	case <-r.Context().Done():
		a.leave()
		return nil, nil, nil, &apiError{Status: http.StatusServiceUnavailable, Type: "server_error", Message: "the request was cancelled"}
	}
	a.mu.Lock()
	a.decoding = true
	a.mu.Unlock()
	s.notePeak(len(s.decoding))
	return r, body, a.leave, nil
}

func (s *Server) notePeak(n int) {
	s.mu.Lock()
	s.decodingPeak = max(s.decodingPeak, n)
	s.mu.Unlock()
}

func (s *Server) tooLarge() *apiError {
	return &apiError{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error", Code: str("request_too_large"),
		Message: fmt.Sprintf("the request body is larger than %d bytes (%s), the server's limit; send less, or start the server with a larger --max-body",
			s.cfg.MaxBodyBytes, compiler.HumanBytes(s.cfg.MaxBodyBytes))}
}

// readBody reads a request body within the size limit.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *apiError) {
	in := http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	var body []byte
	var err error
	if n := r.ContentLength; n >= 0 && n <= s.cfg.MaxBodyBytes {
		// The declared size, exactly: io.ReadAll's growth would hold up
		// to twice the body while it waits for a decoding slot. The
		// server ends the body at the declared length.
		body = make([]byte, n)
		_, err = io.ReadFull(in, body)
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("the body ended before its Content-Length (%d bytes)", n)
		}
	} else {
		body, err = io.ReadAll(in)
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return nil, s.tooLarge()
		case errors.Is(err, os.ErrDeadlineExceeded):
			return nil, &apiError{Status: http.StatusRequestTimeout, Type: "invalid_request_error", Code: str("request_timeout"),
				Message: fmt.Sprintf("the request did not arrive within %s, the server's limit (minerva serve --read-timeout)", s.cfg.ReadTimeout)}
		}
		return nil, invalid("", "invalid_body", "reading the request body: %v", err)
	}
	return body, nil
}
