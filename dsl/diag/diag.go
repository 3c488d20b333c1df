// Package diag is the one way Minerva reports mistakes in a user's input.
//
// A diagnostic names a position in a source file and prints as
//
//	FILE:LINE:COL: message
//	    the source line
//	    ^^^^ (a caret under the span)
//	  hint: what to change
//
// Every stage of the compiler reports through a List, so that all problems in
// a file come out together, sorted by position, and a caller can compare the
// exact text in tests.
package diag

import (
	"fmt"
	"sort"
	"strings"
)

// Pos is a position in a source file. Line and Col count from 1; Col counts
// bytes, which is what an editor's column is for the ASCII files we expect.
type Pos struct {
	File   string
	Line   int
	Col    int
	Offset int
}

// IsValid reports whether the position points into a file.
func (p Pos) IsValid() bool { return p.Line > 0 }

func (p Pos) String() string {
	if !p.IsValid() {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Diagnostic is one problem found in the input.
type Diagnostic struct {
	Pos     Pos
	End     Pos // exclusive end of the span; zero means a single caret
	Message string
	Hint    string
}

// List collects diagnostics. The zero value is ready to use.
type List struct {
	Diags []Diagnostic
	// Limit, when positive, is the most diagnostics the list keeps; later
	// ones are counted, not kept. Each costs work (quoting its line means
	// finding it in the file), so a file with thousands of mistakes must
	// not cost thousands of them.
	Limit int
	// dropped counts the diagnostics past Limit.
	dropped int
	// sources maps a file name to its text, for quoting the source line.
	sources map[string]string
}

// Full reports whether the list holds Limit diagnostics: callers may stop
// looking for more.
func (l *List) Full() bool { return l.Limit > 0 && len(l.Diags) >= l.Limit }

// AddSource registers the text of a file so that its diagnostics can quote it.
func (l *List) AddSource(file, src string) {
	if l.sources == nil {
		l.sources = map[string]string{}
	}
	l.sources[file] = src
}

// Errorf records a diagnostic at a span.
func (l *List) Errorf(pos, end Pos, hint string, format string, args ...any) {
	l.Add(Diagnostic{Pos: pos, End: end, Message: fmt.Sprintf(format, args...), Hint: hint})
}

// Add records a diagnostic. A message or hint longer than MaxText bytes
// is cut there: one can quote a name or a string of the input, and the
// input may be a megabyte long.
func (l *List) Add(d Diagnostic) {
	if l.Full() {
		l.dropped++
		return
	}
	d.Message, d.Hint = clip(d.Message, MaxText), clip(d.Hint, MaxText)
	l.Diags = append(l.Diags, d)
}

// MaxText bounds a diagnostic's message and hint, and the part of a
// source line it quotes.
const MaxText = 1024

// clip cuts s to at most n bytes (and "...").
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Merge appends the diagnostics and sources of another list.
func (l *List) Merge(o *List) {
	if o == nil {
		return
	}
	for _, d := range o.Diags {
		l.Add(d)
	}
	l.dropped += o.dropped
	for f, s := range o.sources {
		l.AddSource(f, s)
	}
}

// Len is the number of diagnostics recorded.
func (l *List) Len() int { return len(l.Diags) }

// Err returns the list as an error, or nil when it is empty. The returned
// error is sorted and free of duplicates.
func (l *List) Err() error {
	if l == nil || len(l.Diags) == 0 {
		return nil
	}
	l.normalize()
	return &Error{List: l}
}

// normalize sorts by position and drops exact duplicates. Duplicates arise
// naturally: a mistake inside a loop body is found once per layer.
func (l *List) normalize() {
	sort.SliceStable(l.Diags, func(i, j int) bool {
		a, b := l.Diags[i], l.Diags[j]
		if a.Pos.File != b.Pos.File {
			return a.Pos.File < b.Pos.File
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		if a.Pos.Col != b.Pos.Col {
			return a.Pos.Col < b.Pos.Col
		}
		return a.Message < b.Message
	})
	out := l.Diags[:0]
	for i, d := range l.Diags {
		if i > 0 {
			p := out[len(out)-1]
			if p.Pos == d.Pos && p.Message == d.Message {
				continue
			}
		}
		out = append(out, d)
	}
	l.Diags = out
}

// Error is a non-empty, sorted list of diagnostics.
type Error struct{ List *List }

func (e *Error) Error() string {
	var b strings.Builder
	for i, d := range e.List.Diags {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.List.Format(d))
	}
	if e.List.Full() {
		fmt.Fprintf(&b, "\ntoo many errors: only the first %d are shown", e.List.Limit)
	}
	return b.String()
}

// Format renders one diagnostic with its source line and caret.
func (l *List) Format(d Diagnostic) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", d.Pos, d.Message)
	if line, ok := l.sourceLine(d.Pos); ok {
		width := 1
		if d.End.IsValid() && d.End.Line == d.Pos.Line && d.End.Col > d.Pos.Col {
			width = d.End.Col - d.Pos.Col
		}
		// A long line is quoted around the caret only.
		if full := line; len(full) > MaxText {
			start := max(0, min(d.Pos.Col-1, len(full))-MaxText/2)
			end := min(len(full), start+MaxText)
			col := d.Pos.Col - start // in full[start:end]
			width = max(1, min(width, end-start-(col-1)))
			line = full[start:end]
			if start > 0 {
				line = "..." + line
				col += 3
			}
			if end < len(full) {
				line += "..."
			}
			d.Pos.Col = col
		}
		// Tabs in the prefix stay tabs so the caret lines up in any editor.
		prefix := []byte(line)
		if d.Pos.Col-1 <= len(prefix) {
			prefix = prefix[:d.Pos.Col-1]
		}
		pad := make([]byte, len(prefix))
		for i, c := range prefix {
			if c == '\t' {
				pad[i] = '\t'
			} else {
				pad[i] = ' '
			}
		}
		fmt.Fprintf(&b, "\n    %s\n    %s%s", line, pad, strings.Repeat("^", width))
	}
	if d.Hint != "" {
		fmt.Fprintf(&b, "\n  hint: %s", d.Hint)
	}
	return b.String()
}

func (l *List) sourceLine(p Pos) (string, bool) {
	src, ok := l.sources[p.File]
	if !ok || !p.IsValid() {
		return "", false
	}
	line := 1
	start := 0
	for i := 0; i < len(src) && line < p.Line; i++ {
		if src[i] == '\n' {
			line++
			start = i + 1
		}
	}
	if line != p.Line {
		return "", false
	}
	end := strings.IndexByte(src[start:], '\n')
	if end < 0 {
		end = len(src) - start
	}
	return strings.TrimRight(src[start:start+end], "\r"), true
}

// Suggest returns the candidate closest to name by edit distance, or "" when
// none is close enough to be a plausible typo.
func Suggest(name string, candidates []string) string {
	// The distance takes len(name) * len(c) steps and as many ints: past
	// a plausible name's length there is no suggestion (two names of
	// 200 KB took 320 GB). A candidate whose length differs by more than
	// the limit below cannot be close enough.
	if len(name) > maxSuggest {
		return ""
	}
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if len(c) > maxSuggest || len(c) > len(name)+3 || len(name) > len(c)+3 {
			continue
		}
		d := distance(name, c)
		if d < bestD || (d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	// Allow roughly one edit per three characters: "rmsnrom" -> "rmsnorm"
	// (a transposition is two edits) but not "x" -> "eps".
	limit := len(name) / 3
	if limit < 1 {
		limit = 1
	}
	if limit > 3 {
		limit = 3
	}
	if bestD <= limit {
		return best
	}
	return ""
}

// maxSuggest is the longest name Suggest compares.
const maxSuggest = 64

// DidYouMean formats a hint from Suggest, or returns "".
func DidYouMean(name string, candidates []string) string {
	if s := Suggest(name, candidates); s != "" {
		return fmt.Sprintf("did you mean '%s'?", s)
	}
	return ""
}

// distance is the Levenshtein distance with adjacent transpositions counted
// as one edit (optimal string alignment), the commonest typo.
func distance(a, b string) int {
	n, m := len(a), len(b)
	d := make([][]int, n+1)
	for i := range d {
		d[i] = make([]int, m+1)
		d[i][0] = i
	}
	for j := 0; j <= m; j++ {
		d[0][j] = j
	}
	for i := 1; i <= n; i++ {
		for j := 1; j <= m; j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[n][m]
}
