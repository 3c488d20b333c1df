package engine

import (
	"errors"
	"testing"
)

// TestPrefillProgress: a prefill of several calls reports after each; an
// error from the callback stops it there.
func TestPrefillProgress(t *testing.T) {
	f := &fake{batch: 4, ctx: 100, vocab: 10}
	s := NewSession(f)
	var got [][2]int
	s.Progress = func(done, total int) error {
		got = append(got, [2]int{done, total})
		return nil
	}
	if _, err := s.Prefill(make([]int32, 10)); err != nil {
		t.Fatal(err)
	}
	want := [][2]int{{4, 10}, {8, 10}, {10, 10}}
	if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("progress %v, want %v", got, want)
	}
	// One call: no progress to show.
	got = nil
	if _, err := s.Prefill(make([]int32, 3)); err != nil || got != nil {
		t.Errorf("a one-call prefill reported %v (%v)", got, err)
	}
	stop := errors.New("interrupted")
	s = NewSession(f)
	f.calls = nil
	s.Progress = func(done, total int) error { return stop }
	if _, err := s.Prefill(make([]int32, 10)); !errors.Is(err, stop) || len(f.calls) != 1 || s.Pos() != 4 {
		t.Errorf("stopped prefill: err %v, %d calls, position %d", err, len(f.calls), s.Pos())
	}
}
