package tokenizer

import (
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Pre-tokenization splits text into the pieces BPE runs on. Hugging Face
// tokenizers runs its split patterns on Oniguruma; Go's regexp has an
// ASCII-only \s and no lookahead, so the patterns real tokenizers use are
// implemented here as hand-written scanners that follow Oniguruma's
// semantics: leftmost-first alternation with backtracking, \s as Unicode
// White_Space, and case-insensitive contractions under Unicode simple case
// folding. Each scanner names its alternatives A1, A2, … in pattern order
// and notes where backtracking changes the result. testdata/onig-splits.jsonl
// checks them against Oniguruma itself.
//
// Other patterns are refused at load time rather than run on a general
// regex engine, because a near-miss engine silently changes token ids. Go's
// regexp lacks the lookahead and has an ASCII \s. github.com/dlclark/regexp2
// has both right (its \s is unicode.IsSpace, exactly White_Space), but its
// (?i) lower-cases instead of case-folding, so (?i:'s) misses "'ſ", which
// Oniguruma matches; it is also a backtracking engine, far slower than
// these scanners. A new pattern is best added as another scanner.

// Known split patterns, exactly as they appear in tokenizer.json files.
const (
	// PatternO200k is the gpt-oss / o200k_base pattern.
	PatternO200k = `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// PatternLlama3 is the Llama 3 pattern, identical to cl100k_base's.
	PatternLlama3 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// PatternQwen2 is Llama 3's pattern with single digits (Qwen2, Qwen2.5, Qwen3).
	PatternQwen2 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// PatternGPT2 is the pattern of the ByteLevel pre-tokenizer with use_regex.
	PatternGPT2 = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
)

// scanner reports the end of the match of a split pattern that starts at
// byte i of s, or -1 when the pattern does not match there.
type scanner func(s string, i int) int

var knownPatterns = map[string]scanner{
	PatternO200k:  scanO200k,
	PatternLlama3: func(s string, i int) int { return scanLlama3(s, i, 3) },
	PatternQwen2:  func(s string, i int) int { return scanLlama3(s, i, 1) },
	PatternGPT2:   scanGPT2,
}

// Character classes, one bit each. Unicode general categories are
// exclusive, so a rune has at most one of the letter/mark/number bits;
// classSpace (White_Space) never overlaps them.
const (
	classLu uint8 = 1 << iota
	classLl
	classLt
	classLm
	classLo
	classM
	classN
	classSpace

	classL = classLu | classLl | classLt | classLm | classLo
	// o200k's "upper" and "lower" letter sets; Lm, Lo and M are in both.
	classO200kUpper = classLu | classLt | classLm | classLo | classM
	classO200kLower = classLl | classLm | classLo | classM
)

var (
	asciiClass [utf8.RuneSelf]uint8
	// bmpClass is built on first use: 64 KiB that most programs never need.
	bmpClass     *[0x10000]uint8
	bmpClassOnce sync.Once
)

func init() {
	for r := range asciiClass {
		asciiClass[r] = computeClass(rune(r))
	}
}

func computeClass(r rune) uint8 {
	var c uint8
	switch {
	case unicode.Is(unicode.Ll, r):
		c = classLl
	case unicode.Is(unicode.Lu, r):
		c = classLu
	case unicode.Is(unicode.Lo, r):
		c = classLo
	case unicode.Is(unicode.Lm, r):
		c = classLm
	case unicode.Is(unicode.Lt, r):
		c = classLt
	case unicode.Is(unicode.M, r):
		c = classM
	case unicode.Is(unicode.N, r):
		c = classN
	}
	// unicode.IsSpace is exactly the White_Space property, which is what
	// Oniguruma's \s matches for UTF-8 text.
	if unicode.IsSpace(r) {
		c |= classSpace
	}
	return c
}

func classOf(r rune) uint8 {
	if r < utf8.RuneSelf {
		return asciiClass[r]
	}
	if r < 0x10000 {
		bmpClassOnce.Do(func() {
			t := new([0x10000]uint8)
			for i := range t {
				t[i] = computeClass(rune(i))
			}
			bmpClass = t
		})
		return bmpClass[r]
	}
	return computeClass(r)
}

// decodeAt decodes the character at byte i. An invalid UTF-8 byte decodes
// as U+FFFD of width 1; its class is that of a symbol, so it splits like
// punctuation and byte-level BPE still encodes the original byte.
func decodeAt(s string, i int) (rune, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// classAt returns the class and width of the character at byte i, or
// (0, 0) at the end of s.
func classAt(s string, i int) (r rune, class uint8, width int) {
	if i >= len(s) {
		return 0, 0, 0
	}
	r, width = decodeAt(s, i)
	return r, classOf(r), width
}

// runOf returns the end of the run of characters from i whose class
// intersects mask.
func runOf(s string, i int, mask uint8) int {
	for i < len(s) {
		_, c, n := classAt(s, i)
		if c&mask == 0 {
			break
		}
		i += n
	}
	return i
}

// runOfOther returns the end of the run of [^\s\p{L}\p{N}] from i.
func runOfOther(s string, i int) int {
	for i < len(s) {
		_, c, n := classAt(s, i)
		if c&(classSpace|classL|classN) != 0 {
			break
		}
		i += n
	}
	return i
}

// runOfDigits returns the end of \p{N}{1,max} from i.
func runOfDigits(s string, i, max int) int {
	for k := 0; k < max && i < len(s); k++ {
		_, c, n := classAt(s, i)
		if c&classN == 0 {
			break
		}
		i += n
	}
	return i
}

// contraction returns the end of 's|'t|'re|'ve|'m|'ll|'d at i, or -1.
// With foldCase the letters match case-insensitively under Unicode simple
// case folding, as (?i:...) does in Oniguruma; the only non-ASCII character
// folding to one of these letters is U+017F LATIN SMALL LETTER LONG S.
func contraction(s string, i int, foldCase bool) int {
	if i+1 >= len(s) || s[i] != '\'' {
		return -1
	}
	lower := func(j int) (byte, int) {
		c := s[j]
		if foldCase {
			if 'A' <= c && c <= 'Z' {
				return c + ('a' - 'A'), 1
			}
			if strings.HasPrefix(s[j:], "\u017F") {
				return 's', 2
			}
		}
		return c, 1
	}
	c, n := lower(i + 1)
	switch c {
	case 's', 't', 'm', 'd':
		return i + 1 + n
	case 'r', 'v', 'l':
		want := byte('e')
		if c == 'l' {
			want = 'l'
		}
		if j := i + 1 + n; j < len(s) {
			if c2, n2 := lower(j); c2 == want {
				return j + n2
			}
		}
	}
	return -1
}

// whitespace matches the three whitespace alternatives every pattern here
// ends with: `\s*[\r\n]+` (only when newlines allows it), `\s+(?!\S)` and
// `\s+`. Backtracking makes `\s*[\r\n]+` end just after the last \r or \n
// of the whitespace run, and `\s+(?!\S)` give back the run's last
// character when a non-space follows, so that it can join the next piece.
func whitespace(s string, i int, newlines bool) int {
	end, lastNL, last := i, -1, i
	for end < len(s) {
		r, c, n := classAt(s, end)
		if c&classSpace == 0 {
			break
		}
		if r == '\r' || r == '\n' {
			lastNL = end + n
		}
		last = end
		end += n
	}
	switch {
	case end == i:
		return -1
	case newlines && lastNL >= 0:
		return lastNL
	case end == len(s) || last == i:
		return end
	default:
		return last
	}
}

func isPrefixClass(r rune, c uint8) bool { // [^\r\n\p{L}\p{N}]
	return c&(classL|classN) == 0 && r != '\r' && r != '\n'
}

// scanO200k implements PatternO200k:
//
//	A1 [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//	A2 [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//	A3 \p{N}{1,3}
//	A4  ?[^\s\p{L}\p{N}]+[\r\n/]*
//	A5 \s*[\r\n]+
//	A6 \s+(?!\S)
//	A7 \s+
func scanO200k(s string, i int) int {
	r, c, n := classAt(s, i)
	// A1 and A2 each try with the optional prefix character first.
	prefix := isPrefixClass(r, c)
	if prefix {
		if e := o200kA1(s, i+n); e >= 0 {
			return e
		}
	}
	if e := o200kA1(s, i); e >= 0 {
		return e
	}
	if prefix {
		if e := o200kA2(s, i+n); e >= 0 {
			return e
		}
	}
	if e := o200kA2(s, i); e >= 0 {
		return e
	}
	if c&classN != 0 {
		return runOfDigits(s, i, 3)
	}
	if e := spacedOther(s, i, r); e >= 0 {
		for e < len(s) && (s[e] == '\r' || s[e] == '\n' || s[e] == '/') {
			e++
		}
		return e
	}
	return whitespace(s, i, true)
}

// o200kA1 matches A1 after its prefix: upper* lower+ contraction?.
// The upper and lower sets overlap (Lm, Lo, M), so when no lower-only
// character follows the greedy upper run, the engine backtracks to the last
// overlapping character of that run and lets lower+ take just it.
func o200kA1(s string, k int) int {
	j, lastLowerEnd := k, -1
	for j < len(s) {
		_, c, n := classAt(s, j)
		if c&classO200kUpper == 0 {
			break
		}
		j += n
		if c&classO200kLower != 0 {
			lastLowerEnd = j
		}
	}
	end := runOf(s, j, classO200kLower)
	if end == j {
		if lastLowerEnd < 0 {
			return -1
		}
		end = lastLowerEnd
	}
	if e := contraction(s, end, true); e >= 0 {
		return e
	}
	return end
}

// o200kA2 matches A2 after its prefix: upper+ lower* contraction?.
func o200kA2(s string, k int) int {
	j := runOf(s, k, classO200kUpper)
	if j == k {
		return -1
	}
	end := runOf(s, j, classO200kLower)
	if e := contraction(s, end, true); e >= 0 {
		return e
	}
	return end
}

// spacedOther matches ` ?[^\s\p{L}\p{N}]+` at i (r is the character at i).
// Without the space the match cannot start at a space, so one try suffices.
func spacedOther(s string, i int, r rune) int {
	j := i
	if r == ' ' {
		j++
	}
	if e := runOfOther(s, j); e > j {
		return e
	}
	return -1
}

// scanLlama3 implements PatternLlama3 (maxDigits 3) and PatternQwen2
// (maxDigits 1):
//
//	B1 (?i:'s|'t|'re|'ve|'m|'ll|'d)
//	B2 [^\r\n\p{L}\p{N}]?\p{L}+
//	B3 \p{N}{1,3}    (\p{N} for Qwen2)
//	B4  ?[^\s\p{L}\p{N}]+[\r\n]*
//	B5 \s*[\r\n]+
//	B6 \s+(?!\S)
//	B7 \s+
func scanLlama3(s string, i, maxDigits int) int {
	r, c, n := classAt(s, i)
	if e := contraction(s, i, true); e >= 0 {
		return e
	}
	if c&classL != 0 {
		return runOf(s, i, classL)
	}
	if isPrefixClass(r, c) {
		if _, c2, _ := classAt(s, i+n); c2&classL != 0 {
			return runOf(s, i+n, classL)
		}
	}
	if c&classN != 0 {
		return runOfDigits(s, i, maxDigits)
	}
	if e := spacedOther(s, i, r); e >= 0 {
		for e < len(s) && (s[e] == '\r' || s[e] == '\n') {
			e++
		}
		return e
	}
	return whitespace(s, i, true)
}

// scanGPT2 implements PatternGPT2:
//
//	C1 's|'t|'re|'ve|'m|'ll|'d   (case-sensitive)
//	C2  ?\p{L}+
//	C3  ?\p{N}+
//	C4  ?[^\s\p{L}\p{N}]+
//	C5 \s+(?!\S)
//	C6 \s+
func scanGPT2(s string, i int) int {
	r, c, n := classAt(s, i)
	if e := contraction(s, i, false); e >= 0 {
		return e
	}
	// C2-C4 start at i, or at i+1 after a space; a space is in none of
	// their classes, so the space-less tries cannot succeed after it.
	j := i
	if r == ' ' {
		j = i + n
		_, c, _ = classAt(s, j)
	}
	switch {
	case c&classL != 0:
		return runOf(s, j, classL)
	case c&classN != 0:
		return runOf(s, j, classN)
	}
	if e := runOfOther(s, j); e > j {
		return e
	}
	return whitespace(s, i, false)
}

// splitter turns one piece of text into smaller non-empty pieces,
// appending them to dst.
type splitter interface {
	split(dst []string, s string) []string
}

// Split behaviours, as in tokenizers' SplitDelimiterBehavior.
type splitBehavior int

const (
	behaviorIsolated splitBehavior = iota
	behaviorRemoved
	behaviorMergedWithPrevious
	behaviorMergedWithNext
	behaviorContiguous
)

var splitBehaviors = map[string]splitBehavior{
	"Isolated":           behaviorIsolated,
	"Removed":            behaviorRemoved,
	"MergedWithPrevious": behaviorMergedWithPrevious,
	"MergedWithNext":     behaviorMergedWithNext,
	"Contiguous":         behaviorContiguous,
}

// splitStep is the Split pre-tokenizer: either a known regex (scan) or a
// literal string (literal).
type splitStep struct {
	scan     scanner
	literal  string
	behavior splitBehavior
	invert   bool
}

// find returns the first match at or after from, or (-1, -1).
func (sp *splitStep) find(s string, from int) (start, end int) {
	if sp.scan == nil {
		k := strings.Index(s[from:], sp.literal)
		if k < 0 {
			return -1, -1
		}
		return from + k, from + k + len(sp.literal)
	}
	for j := from; j < len(s); {
		if e := sp.scan(s, j); e > j {
			return j, e
		}
		_, n := decodeAt(s, j)
		j += n
	}
	return -1, -1
}

type span struct {
	start, end int
	match      bool
}

func (sp *splitStep) split(dst []string, s string) []string {
	if sp.behavior == behaviorIsolated {
		// Every match and every gap between matches is a piece.
		pos := 0
		for pos < len(s) {
			start, end := sp.find(s, pos)
			if start < 0 {
				break
			}
			if start > pos {
				dst = append(dst, s[pos:start])
			}
			dst = append(dst, s[start:end])
			pos = end
		}
		if pos < len(s) {
			dst = append(dst, s[pos:])
		}
		return dst
	}
	var spans []span
	pos := 0
	for pos < len(s) {
		start, end := sp.find(s, pos)
		if start < 0 {
			break
		}
		if start > pos {
			spans = append(spans, span{pos, start, sp.invert})
		}
		spans = append(spans, span{start, end, !sp.invert})
		pos = end
	}
	if pos < len(s) {
		spans = append(spans, span{pos, len(s), sp.invert})
	}
	for _, p := range applyBehavior(spans, sp.behavior) {
		if !p.match && p.end > p.start { // here match means "remove"
			dst = append(dst, s[p.start:p.end])
		}
	}
	return dst
}

// applyBehavior follows tokenizers' NormalizedString::split: the returned
// spans' match field says whether to drop the span.
func applyBehavior(spans []span, b splitBehavior) []span {
	var out []span
	switch b {
	case behaviorRemoved:
		return spans
	case behaviorContiguous:
		prev := false
		for _, p := range spans {
			if p.match == prev && len(out) > 0 {
				out[len(out)-1].end = p.end
			} else {
				out = append(out, span{p.start, p.end, false})
			}
			prev = p.match
		}
	case behaviorMergedWithPrevious:
		prev := false
		for _, p := range spans {
			if p.match && !prev && len(out) > 0 {
				out[len(out)-1].end = p.end
			} else {
				out = append(out, span{p.start, p.end, false})
			}
			prev = p.match
		}
	case behaviorMergedWithNext:
		prev := false
		for k := len(spans) - 1; k >= 0; k-- {
			p := spans[k]
			if p.match && !prev && len(out) > 0 {
				out[len(out)-1].start = p.start
			} else {
				out = append(out, span{p.start, p.end, false})
			}
			prev = p.match
		}
		for l, r := 0, len(out)-1; l < r; l, r = l+1, r-1 {
			out[l], out[r] = out[r], out[l]
		}
	default:
		for _, p := range spans {
			out = append(out, span{p.start, p.end, false})
		}
	}
	return out
}

// byteLevelStep is the ByteLevel pre-tokenizer's splitting part: an
// optional leading space and the GPT-2 pattern. Its byte-to-character
// mapping needs no step, because encoding works on raw bytes.
type byteLevelStep struct {
	addPrefixSpace bool
	useRegex       bool
}

var gpt2Split = &splitStep{scan: scanGPT2}

func (b *byteLevelStep) split(dst []string, s string) []string {
	if b.addPrefixSpace && !strings.HasPrefix(s, " ") {
		s = " " + s
	}
	if b.useRegex {
		return gpt2Split.split(dst, s)
	}
	return append(dst, s)
}

// pipeline runs pre-tokenizer steps in order, each on every piece the
// previous one produced (a Sequence).
type pipeline []splitter

func (p pipeline) split(dst []string, s string) []string {
	switch len(p) {
	case 0:
		return append(dst, s)
	case 1:
		return p[0].split(dst, s)
	}
	cur := []string{s}
	for _, step := range p {
		var next []string
		for _, piece := range cur {
			next = step.split(next, piece)
		}
		cur = next
	}
	return append(dst, cur...)
}
