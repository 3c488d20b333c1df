package tokenizer

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
)

func splitWith(pattern, text string) []string {
	sp := &splitStep{scan: knownPatterns[pattern]}
	return sp.split(nil, text)
}

// No Llama 3 tokenizer fixture exists, so these expected splits are worked
// out by hand from the pattern
//
//	B1 (?i:'s|'t|'re|'ve|'m|'ll|'d) | B2 [^\r\n\p{L}\p{N}]?\p{L}+ | B3 \p{N}{1,3} |
//	B4  ?[^\s\p{L}\p{N}]+[\r\n]* | B5 \s*[\r\n]+ | B6 \s+(?!\S) | B7 \s+
//
// under Oniguruma's rules: at each position the first alternative that
// matches wins (not the longest), quantifiers are greedy but backtrack,
// and \s is Unicode White_Space. The reason is given for each case.
func TestLlama3Split(t *testing.T) {
	cases := []struct {
		text string
		want []string
		why  string
	}{
		{"I'm here", []string{"I", "'m", " here"},
			"B2 stops at the apostrophe; B1 takes 'm; B2 takes the space as its optional prefix"},
		{"DON'T they'll've", []string{"DON", "'T", " they", "'ll", "'ve"},
			"B1 is case-insensitive; contractions chain"},
		{"'sup", []string{"'s", "up"},
			"B1 comes first and matches 's even when letters follow"},
		{"1234567", []string{"123", "456", "7"},
			"B3 takes at most three digits, counted from the left"},
		{"abc  \n\n  def", []string{"abc", "  \n\n", " ", " def"},
			"B5 backtracks \\s* to end after the last newline; B6 then gives back the last space, which B2 takes as the prefix of ' def'"},
		{"hello world  ", []string{"hello", " world", "  "},
			"at the end of the text B6's lookahead succeeds, so the whole run is one piece"},
		{"x = 'abc'", []string{"x", " =", " '", "abc", "'"},
			"B4 takes an optional space and a run of symbols; a lone apostrophe is no contraction"},
		{"$100", []string{"$", "100"},
			"B2's prefix needs a letter after it; B4 stops at the digit"},
		{"?!\n\nx", []string{"?!\n\n", "x"},
			"B4's trailing [\\r\\n]* takes the newlines"},
		{"foo(): \n", []string{"foo", "():", " \n"},
			"B4 stops at the space (\\s); B5 takes space and newline"},
		{"ab\r\n\r\ncd", []string{"ab", "\r\n\r\n", "cd"},
			"B5 takes the whole \\r\\n run"},
		{"a\u00a0b", []string{"a", "\u00a0b"},
			"NBSP is not \\r, \\n, a letter or a number, so it is B2's prefix"},
		{"a\u3000\u3000b", []string{"a", "\u3000", "\u3000b"},
			"U+3000 is White_Space: B6 gives back the last one, which becomes B2's prefix"},
		{"\ufeffx", []string{"\ufeffx"},
			"U+FEFF is not White_Space (it is a format character), so it is B2's prefix"},
		{"e\u0301", []string{"e", "\u0301"},
			"a combining mark is not \\p{L}: B2 stops before it and B4 takes it"},
		{"\t\tx", []string{"\t", "\tx"},
			"B6 gives back the last tab, which becomes B2's prefix"},
	}
	for _, c := range cases {
		if got := splitWith(PatternLlama3, c.text); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Llama 3 split of %q = %q, want %q (%s)", c.text, got, c.want, c.why)
		}
	}
}

// Qwen2's pattern differs from Llama 3's only in \p{N} (one digit at a time).
func TestQwen2Split(t *testing.T) {
	got := splitWith(PatternQwen2, "x1234 I'M")
	want := []string{"x", "1", "2", "3", "4", " I", "'M"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Qwen2 split = %q, want %q", got, want)
	}
}

// Expected values from the tests of tokenizers' ByteLevel pre-tokenizer
// (tokenizers/src/pre_tokenizers/byte_level.rs), with Ġ written as a space.
func TestGPT2Split(t *testing.T) {
	cases := []struct {
		text string
		want []string
	}{
		{"Hello my friend, how is your day going?",
			[]string{"Hello", " my", " friend", ",", " how", " is", " your", " day", " going", "?"}},
		{"Hello there\nHello there", []string{"Hello", " there", "\n", "Hello", " there"}},
		{"Hello there       dear", []string{"Hello", " there", "      ", " dear"}},
		// Worked out by hand: contractions are case-sensitive here, and
		// digits are not limited to three.
		{"I'M 12345 it's", []string{"I", "'", "M", " 12345", " it", "'s"}},
	}
	for _, c := range cases {
		if got := splitWith(PatternGPT2, c.text); !reflect.DeepEqual(got, c.want) {
			t.Errorf("GPT-2 split of %q = %q, want %q", c.text, got, c.want)
		}
	}
}

// o200k cases beyond the vectors, worked out by hand from the pattern
// (A1-A7 as in scanO200k's comment).
func TestO200kSplit(t *testing.T) {
	cases := []struct {
		text string
		want []string
		why  string
	}{
		{"e\u0301", []string{"e\u0301"},
			"marks are in A1's lower set, unlike Llama 3's \\p{L}+"},
		{"\u02b0\u02b0A", []string{"\u02b0\u02b0", "A"},
			"U+02B0 is Lm, in both sets: the greedy upper run ends at 'A' with no lower letter after it, so A1 backtracks to the last Lm"},
		{"ABCdef'S x", []string{"ABCdef'S", " x"},
			"A1: upper run, lower run, then a case-insensitive contraction"},
		{"HTTPServer", []string{"HTTPServer"},
			"A1's greedy upper run takes HTTPS, then the lower run takes erver"},
		{"don\u2019t", []string{"don", "\u2019t"},
			"U+2019 is not an apostrophe for the contraction, but is A1's prefix"},
		{"don'\u017f", []string{"don'\u017f"},
			"U+017F (long s) folds to s under Unicode case folding, which (?i) uses"},
		{"a/b\n/", []string{"a", "/b", "\n", "/"},
			"A1's prefix takes the slash; A4 does not start at a newline"},
		{"x ++/\n\ny", []string{"x", " ++/\n\n", "y"},
			"A4: optional space, symbols, then [\\r\\n/]*"},
	}
	for _, c := range cases {
		if got := splitWith(PatternO200k, c.text); !reflect.DeepEqual(got, c.want) {
			t.Errorf("o200k split of %q = %q, want %q (%s)", c.text, got, c.want, c.why)
		}
	}
}

// The split behaviours, with the examples from the documentation of
// tokenizers' NormalizedString::split (the-final--countdown split on '-');
// the empty pieces of Removed are dropped, as PreTokenizedString does.
func TestSplitBehaviors(t *testing.T) {
	cases := []struct {
		behavior splitBehavior
		want     []string
	}{
		{behaviorRemoved, []string{"the", "final", "countdown"}},
		{behaviorIsolated, []string{"the", "-", "final", "-", "-", "countdown"}},
		{behaviorMergedWithPrevious, []string{"the-", "final-", "-", "countdown"}},
		{behaviorMergedWithNext, []string{"the", "-final", "-", "-countdown"}},
		{behaviorContiguous, []string{"the", "-", "final", "--", "countdown"}},
	}
	for _, c := range cases {
		sp := &splitStep{literal: "-", behavior: c.behavior}
		if got := sp.split(nil, "the-final--countdown"); !reflect.DeepEqual(got, c.want) {
			t.Errorf("behavior %d: %q, want %q", c.behavior, got, c.want)
		}
	}
	// invert swaps matches and the text between them.
	sp := &splitStep{literal: "-", behavior: behaviorRemoved, invert: true}
	if got, want := sp.split(nil, "the-final--countdown"), []string{"-", "-", "-"}; !reflect.DeepEqual(got, want) {
		t.Errorf("inverted Removed: %q, want %q", got, want)
	}
}

// Every piece boundary falls on a character boundary and the pieces
// cover the text, for all patterns, on text mixing scripts and spaces.
func TestSplitCoversText(t *testing.T) {
	texts := []string{
		"Hello, 世界! 123456 don't\r\n\t  x\u00a0y\u2028z \U0001F600\u200d\U0001F600 e\u0301\u0301 \xff\xfe",
		"", " ", "\n", "''", "'", "a'", "\u017f'S",
	}
	for pattern := range knownPatterns {
		for _, text := range texts {
			joined := ""
			for _, p := range splitWith(pattern, text) {
				if p == "" {
					t.Errorf("empty piece in %q", text)
				}
				joined += p
			}
			if joined != text {
				t.Errorf("pieces of %q join to %q", text, joined)
			}
		}
	}
}

// The scanners against Oniguruma itself: testdata/onig-splits.jsonl holds
// how Oniguruma 6.9.8 (the engine tokenizers uses) splits random texts
// built from characters of every class the patterns distinguish; see
// testdata/onigsplit/gen.go. TOKENIZER_ONIG_SPLITS names another such file.
func TestSplitMatchesOniguruma(t *testing.T) {
	path := "testdata/onig-splits.jsonl"
	if p := os.Getenv("TOKENIZER_ONIG_SPLITS"); p != "" {
		path = p
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{"o200k": PatternO200k, "llama3": PatternLlama3, "qwen2": PatternQwen2, "gpt2": PatternGPT2}
	count := map[string]int{}
	failures := 0
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var c struct {
			Pattern string   `json:"pattern"`
			Text    string   `json:"text"`
			Pieces  []string `json:"pieces"`
		}
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatal(err)
		}
		count[c.Pattern]++
		if got := splitWith(names[c.Pattern], c.Text); !reflect.DeepEqual(got, c.Pieces) {
			t.Errorf("%s split of %+q:\n got %+q\nwant %+q", c.Pattern, c.Text, got, c.Pieces)
			if failures++; failures > 20 {
				t.FailNow()
			}
		}
	}
	for name := range names {
		if count[name] == 0 {
			t.Errorf("no %s cases in %s", name, path)
		}
	}
}
