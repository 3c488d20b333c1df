package main

import (
	"context"
	"os"
	"os/signal"
)

// interrupts delivers Ctrl-C (SIGINT) to `minerva run` from one place.
// A run listens from the time it starts to generate (a one-shot run) or
// to chat, to its end, so that a Ctrl-C between two replies is not lost
// to Go's default, which ends the process without a word. While a reply
// runs, Ctrl-C cancels it (during); at the chat's prompt the chat loop
// reads it from C and exits. Before that (loading the model, reading a
// prompt from stdin), nothing listens and SIGINT ends the process, as
// the shell expects: those steps cannot be stopped any other way.
type interrupts struct {
	C    <-chan os.Signal
	stop func()
}

// interrupts starts listening for SIGINT, or takes the test's channel.
func (e *Env) interrupts() *interrupts {
	if e.Interrupts != nil {
		return &interrupts{C: e.Interrupts, stop: func() {}}
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt)
	return &interrupts{C: c, stop: func() { signal.Stop(c) }}
}

// during returns a context that the next Ctrl-C cancels, and end, which
// stops watching for it: after end returns, a Ctrl-C goes to C again. A
// Ctrl-C already waiting cancels ctx before during returns.
func (i *interrupts) during() (ctx context.Context, end func()) {
	ctx, cancel := context.WithCancel(context.Background())
	select {
	case <-i.C:
		cancel()
		return ctx, func() {}
	default:
	}
	done, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-i.C:
			cancel()
		case <-done:
		}
	}()
	return ctx, func() {
		close(done)
		<-watched
		cancel()
	}
}
