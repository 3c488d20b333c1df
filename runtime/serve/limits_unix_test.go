//go:build unix

package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// stalledReader connects to hs with a receive buffer made tiny before the
// connection opens (so the window it offers is tiny from the start), and
// never reads.
func stalledReader(t *testing.T, hs *httptest.Server) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(network, address string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 1)
		})
		return errors.Join(err, serr)
	}}
	c, err := d.Dial("tcp", hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).SetReadBuffer(1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSlowReader: a streaming client that stops reading is dropped after
// the write timeout and its generation cancelled; another client's
// request then runs. Before per-write deadlines it froze every client.
func TestSlowReader(t *testing.T) {
	const writeTimeout = 300 * time.Millisecond
	gens := make(chan Generation, 4)
	s, err := New(fortune, Config{WriteTimeout: writeTimeout, OnGeneration: func(g Generation) { gens <- g }})
	if err != nil {
		t.Fatal(err)
	}
	hs, client := startServer(t, s)
	// About 150 bytes an event, for 500 tokens: far more than the
	// server's buffers and the socket's hold.
	body := `{"prompt":"A computer","max_tokens":500,"ignore_eos":true,"temperature":0,"stream":true}`
	c := stalledReader(t, hs)
	if _, err := fmt.Fprintf(c, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return s.Metrics().Requests == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	res, err := client.Chat.Completions.New(ctx, greedyChat(20))
	if err != nil {
		t.Fatalf("a second client while the first stalls: %v", err)
	}
	if res.Usage.CompletionTokens == 0 {
		t.Errorf("second client got no reply: %+v", res)
	}
	g := <-gens
	// It ends on the write that timed out, or on the cancelled context.
	if !errors.Is(g.Err, os.ErrDeadlineExceeded) && !errors.Is(g.Err, context.Canceled) || g.Stats.GeneratedTokens >= 500 {
		t.Errorf("the stalled generation ended with %v after %d tokens; want a write timeout", g.Err, g.Stats.GeneratedTokens)
	}
	// Generation at full speed is far under a second here; the stalled
	// stream must be dropped a write timeout after it stalls.
	if waited := time.Since(start); waited > writeTimeout+5*time.Second {
		t.Errorf("the second client waited %s with a write timeout of %s", waited, writeTimeout)
	}
	if m := s.Metrics(); m.Cancelled != 1 || m.Completed != 1 {
		t.Errorf("metrics %+v: want 1 cancelled, 1 completed", m)
	}
}
