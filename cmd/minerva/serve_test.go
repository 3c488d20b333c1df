package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
)

// TestServeLimitFlags: limits that would turn the server off are refused
// by name, before the model loads.
func TestServeLimitFlags(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--write-timeout", "0s"}, "--write-timeout must be positive"},
		{[]string{"serve", "--read-timeout=-1s"}, "--read-timeout must be positive"},
		{[]string{"serve", "--read-header-timeout", "0s"}, "--read-header-timeout must be positive"},
		{[]string{"serve", "--max-body", "0"}, "--max-body must be at least 1 byte"},
		{[]string{"serve", "--max-reading", "0"}, "--max-reading must be at least 1"},
		{[]string{"serve", "--max-connections", "0"}, "--max-connections must be at least 1"},
		{[]string{"serve", "--max-decoding=-1"}, "--max-decoding must be 0"},
		{[]string{"serve", "--max-queue", "0"}, "--max-queue must be at least 1"},
		{[]string{"serve", "--parallel", "0"}, "--parallel must be at least 1"},
	}
	for _, c := range cases {
		code, _, stderr := runCLI(t, "", c.args...)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want a failure mentioning %q", c.args, code, stderr, c.want)
		}
	}
}

// TestServeLimitsReachTheServer: the limit flags configure the server: a
// body over --max-body gets the 413 that names it.
func TestServeLimitsReachTheServer(t *testing.T) {
	cmd, addr, _, stop := launchServe(t, "serve", "--addr", "127.0.0.1:0", "--ctx", "256", "--max-body", "64", "--write-timeout", "5s")
	if cmd.MaxBody != 64 || cmd.WriteTimeout != 5*time.Second || cmd.ReadTimeout != 30*time.Second || cmd.MaxReading != 64 || cmd.MaxConnections != 1024 {
		t.Errorf("parsed limits %+v", cmd)
	}
	client := &http.Client{Transport: &http.Transport{}}
	res, err := client.Post("http://"+addr+"/v1/completions", "application/json",
		strings.NewReader(`{"prompt":"`+strings.Repeat("x", 100)+`","max_tokens":1}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	client.CloseIdleConnections()
	if res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "larger than 64 bytes") || !strings.Contains(string(b), "--max-body") {
		t.Errorf("status %d: %s", res.StatusCode, b)
	}
	if err := stop(); err != nil {
		t.Errorf("serve returned %v", err)
	}
}

// launchServe parses `minerva ARGS` (a serve command listening on
// 127.0.0.1:0) as the binary would, starts it and waits until it listens.
// It returns the parsed command, the address, the command's stderr, and
// stop, which shuts the server down and returns what serve returned.
func launchServe(t *testing.T, args ...string) (cmd *ServeCmd, addr string, stderr *bytes.Buffer, stop func() error) {
	t.Helper()
	parser, err := kong.New(&cli, kong.Name("minerva"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parser.Parse(args); err != nil {
		t.Fatal(err)
	}
	cmd = &cli.Serve
	stderr = &bytes.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- cmd.serve(ctx, &Env{Stdout: &bytes.Buffer{}, Stderr: stderr}, func(a net.Addr) { addrs <- a })
	}()
	select {
	case a := <-addrs:
		addr = a.String()
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("serve did not start")
	}
	return cmd, addr, stderr, func() error { cancel(); return <-done }
}
