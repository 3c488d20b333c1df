//go:build !(darwin && arm64)

package metal

import (
	"errors"
	"strings"
	"testing"
)

func TestOpenIsUnsupportedHere(t *testing.T) {
	d, err := Open()
	if d != nil {
		t.Fatalf("Open returned a device on a platform without Metal")
	}
	const want = "the Metal backend needs macOS on Apple Silicon; use --backend cpu"
	if err == nil || err.Error() != want {
		t.Fatalf("Open() error = %v, want %q", err, want)
	}
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("Open() error does not match ErrUnsupported")
	}
}

// The encoder's argument checks run before any Objective-C call, so they can
// be exercised here with stand-in handles. Only failing calls are made: a
// call that passed its checks would reach metal_other.go and panic.

func fakeEncoder() (*CommandBuffer, *Encoder) {
	dev := &Device{device: 1, queue: 1, info: Info{MaxThreadgroupMemoryLength: 32768, MaxBufferLength: 1 << 30}}
	cb := &CommandBuffer{dev: dev, id: 1, label: "step"}
	e := &Encoder{cb: cb, id: 1, label: "layer0"}
	cb.open = e
	return cb, e
}

func TestEncoderChecksArguments(t *testing.T) {
	buf := &Buffer{id: 1, contents: make([]byte, 64), length: 64}
	pipe := &Pipeline{id: 1, name: "vadd", maxThreads: 256}
	for _, c := range []struct {
		name string
		do   func(e *Encoder)
		want string
	}{
		{"dispatch without pipeline", func(e *Encoder) { e.Dispatch([3]int{1, 1, 1}, [3]int{32, 1, 1}) },
			`metal: encoder "layer0": Dispatch before SetPipeline`},
		{"too many threads", func(e *Encoder) { e.pipeline = pipe; e.Dispatch([3]int{1, 1, 1}, [3]int{512, 1, 1}) },
			`metal: encoder "layer0" (kernel vadd): Dispatch: 512 threads per threadgroup ([512 1 1]) exceed the pipeline's maxTotalThreadsPerThreadgroup of 256; use smaller threadgroups`},
		{"buffer index", func(e *Encoder) { e.SetBuffer(buf, 0, 31) },
			`metal: encoder "layer0": SetBuffer index 31 is outside 0..30`},
		{"buffer offset", func(e *Encoder) { e.SetBuffer(buf, 64, 0) },
			`metal: encoder "layer0": SetBuffer(index 0) offset 64 is outside the buffer's 64 bytes`},
		{"released buffer", func(e *Encoder) { e.SetBuffer(&Buffer{}, 0, 2) },
			`metal: encoder "layer0": SetBuffer(index 2) of a nil or released buffer`},
		{"bytes too long", func(e *Encoder) { e.SetBytes(make([]byte, 4097), 3) },
			`metal: encoder "layer0": SetBytes(index 3) of 4097 bytes; it takes 1 to 4096 bytes, use a Buffer for more`},
		{"threadgroup memory not multiple of 16", func(e *Encoder) { e.SetThreadgroupMemoryLength(40, 0) },
			`metal: encoder "layer0": SetThreadgroupMemoryLength(40, index 0): the length must be a positive multiple of 16`},
		{"threadgroup memory too large", func(e *Encoder) { e.SetThreadgroupMemoryLength(65536, 0) },
			`metal: encoder "layer0": SetThreadgroupMemoryLength(65536, index 0) exceeds the device's maxThreadgroupMemoryLength of 32768 bytes`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, e := fakeEncoder()
			c.do(e)
			if e.Err() == nil || e.Err().Error() != c.want {
				t.Fatalf("error = %v\nwant    %s", e.Err(), c.want)
			}
			// The first error sticks; later calls are no-ops and keep it.
			first := e.Err()
			e.SetBuffer(nil, 0, 99)
			e.MemoryBarrier()
			if e.Err() != first {
				t.Errorf("a later call replaced the first error with %v", e.Err())
			}
		})
	}
}

func TestCommandBufferRefusesMisuse(t *testing.T) {
	cb, _ := fakeEncoder()
	cb.Commit()
	want := `metal: Commit of command buffer "step" while encoder "layer0" is open; call End first`
	if err := cb.Error(); err == nil || err.Error() != want {
		t.Fatalf("Commit with an open encoder: %v\nwant %s", err, want)
	}
	if cb.committed {
		t.Errorf("the command buffer was committed")
	}
	cb.WaitUntilCompleted() // must return at once, not wait forever
	if cb.Error().Error() != want {
		t.Errorf("the first error was replaced by %v", cb.Error())
	}

	// A new command buffer: waiting without a commit is an error, not a hang.
	cb2 := &CommandBuffer{dev: cb.dev, id: 1, label: "other"}
	cb2.WaitUntilCompleted()
	if err := cb2.Error(); err == nil || !strings.Contains(err.Error(), `WaitUntilCompleted on command buffer "other" before Commit`) {
		t.Errorf("WaitUntilCompleted before Commit: %v", err)
	}

	// An encoder that failed taints its command buffer, which is not committed.
	cb3, e3 := fakeEncoder()
	e3.SetBytes(nil, 0)
	e3.id = 0 // stands in for encEnd, which has no Metal to call here
	if err := e3.End(); err == nil {
		t.Fatal("End returned nil after a failed SetBytes")
	}
	cb3.Commit()
	if cb3.committed || cb3.Error() != e3.Err() {
		t.Errorf("committed = %v, Error = %v; want no commit and the encoder's error", cb3.committed, cb3.Error())
	}
}
