package diag

import (
	"strings"
	"testing"
)

// A diagnostic quotes at most MaxText bytes of its line, around the
// caret, and its message and hint are cut at MaxText: an input line or
// string may be a megabyte long, and a compilation reports up to 100
// diagnostics.
func TestLongLinesAndMessagesAreCut(t *testing.T) {
	line := strings.Repeat("a", 5000) + "BAD" + strings.Repeat("b", 5000)
	var l List
	l.AddSource("f", line+"\n")
	l.Errorf(Pos{File: "f", Line: 1, Col: 5001, Offset: 5000}, Pos{File: "f", Line: 1, Col: 5004, Offset: 5003},
		strings.Repeat("h", 3000), "unknown name '%s'", strings.Repeat("x", 3000))
	out := l.Err().Error()
	lines := strings.Split(out, "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines:\n%s", len(lines), out)
	}
	head := "f:1:5001: unknown name '" + strings.Repeat("x", MaxText-len("unknown name '")) + "..."
	quoted := "    ..." + strings.Repeat("a", MaxText/2) + "BAD" + strings.Repeat("b", MaxText/2-3) + "..."
	caret := "    " + strings.Repeat(" ", 3+MaxText/2) + "^^^"
	hint := "  hint: " + strings.Repeat("h", MaxText) + "..."
	for i, want := range []string{head, quoted, caret, hint} {
		if lines[i] != want {
			t.Errorf("line %d:\n got %.80q... (%d bytes)\nwant %.80q... (%d bytes)", i, lines[i], len(lines[i]), want, len(want))
		}
	}
	// Short lines are quoted whole, as before.
	var s List
	s.AddSource("g", "  x = rmsnrom(y)\n")
	s.Errorf(Pos{File: "g", Line: 1, Col: 7, Offset: 6}, Pos{File: "g", Line: 1, Col: 14, Offset: 13}, "", "unknown op 'rmsnrom'")
	if got, want := s.Err().Error(), "g:1:7: unknown op 'rmsnrom'\n      x = rmsnrom(y)\n          ^^^^^^^"; got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// The list keeps Limit diagnostics and says that it stopped.
func TestLimit(t *testing.T) {
	l := List{Limit: 2}
	for i := 1; i <= 5; i++ {
		l.Errorf(Pos{File: "f", Line: i, Col: 1}, Pos{}, "", "error %d", i)
	}
	if got, want := l.Err().Error(), "f:1:1: error 1\nf:2:1: error 2\ntoo many errors: only the first 2 are shown"; got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

// Suggest compares names of a plausible length only: the distance of two
// 200 KB names needed 320 GB.
func TestSuggestLongNames(t *testing.T) {
	if got := Suggest("rmsnrom", []string{"rmsnorm", "linear"}); got != "rmsnorm" {
		t.Fatalf("got %q", got)
	}
	long := strings.Repeat("a", 200000)
	if got := Suggest(long+"b", []string{long + "c", "x"}); got != "" {
		t.Fatalf("got a suggestion of %d bytes", len(got))
	}
	if got := Suggest("abc", []string{long}); got != "" {
		t.Fatalf("got %q", got)
	}
}
