package tokenizer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// Test data (see testdata/):
//   gpt-oss-tokenizer.json.gz  the published gpt-oss tokenizer.json, gzipped
//   vectors.jsonl              212 texts with the ids Hugging Face tokenizers
//                              0.23.2 gives them, cross-checked with tiktoken
//   fortune-tokenizer.json     the small trained fortune model's tokenizer
//   fortune-reference.json     its prompts and greedy continuations, from
//                              transformers
// All of them come from /work/shared/fixtures; none was produced by this package.

var (
	gptOSSOnce sync.Once
	gptOSSData []byte
	gptOSSTok  *Tokenizer
	gptOSSErr  error
)

func gptOSSJSON(tb testing.TB) []byte {
	tb.Helper()
	gptOSSOnce.Do(func() {
		f, err := os.Open("testdata/gpt-oss-tokenizer.json.gz")
		if err != nil {
			gptOSSErr = err
			return
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			gptOSSErr = err
			return
		}
		if gptOSSData, err = io.ReadAll(zr); err != nil {
			gptOSSErr = err
			return
		}
		gptOSSTok, gptOSSErr = Parse(gptOSSData)
	})
	if gptOSSErr != nil {
		tb.Fatal(gptOSSErr)
	}
	return gptOSSData
}

func gptOSS(tb testing.TB) *Tokenizer {
	tb.Helper()
	gptOSSJSON(tb)
	return gptOSSTok
}

func fortune(tb testing.TB) *Tokenizer {
	tb.Helper()
	tok, err := Load("testdata/fortune-tokenizer.json")
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

type vector struct {
	Name     string `json:"name"`
	Category string `json:"category"`
	Text     string `json:"text"`
	IDs      []int  `json:"ids"`
}

func vectors(tb testing.TB) []vector {
	tb.Helper()
	f, err := os.Open("testdata/vectors.jsonl")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []vector
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var v vector
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			tb.Fatal(err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

func TestVectors(t *testing.T) {
	tok := gptOSS(t)
	vs := vectors(t)
	if len(vs) != 212 {
		t.Fatalf("read %d vectors, want 212", len(vs))
	}
	for _, v := range vs {
		got := tok.Encode(v.Text)
		if !reflect.DeepEqual(got, v.IDs) && !(len(got) == 0 && len(v.IDs) == 0) {
			t.Errorf("%s: Encode(%q)\n got %v\nwant %v", v.Name, v.Text, got, v.IDs)
		}
		text, err := tok.Decode(v.IDs)
		if err != nil {
			t.Errorf("%s: Decode: %v", v.Name, err)
		} else if string(text) != v.Text {
			t.Errorf("%s: Decode = %q, want %q", v.Name, text, v.Text)
		}
	}
}

func TestEmptyText(t *testing.T) {
	if got := gptOSS(t).Encode(""); len(got) != 0 {
		t.Errorf(`Encode("") = %v, want []`, got)
	}
}

func TestFortuneReference(t *testing.T) {
	tok := fortune(t)
	data, err := os.ReadFile("testdata/fortune-reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Prompts []struct {
			Prompt     string `json:"prompt"`
			PromptIDs  []int  `json:"prompt_ids"`
			GreedyIDs  []int  `json:"greedy_ids"`
			GreedyText string `json:"greedy_text"`
		} `json:"prompts"`
	}
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Prompts) != 3 {
		t.Fatalf("%d prompts, want 3", len(ref.Prompts))
	}
	for _, p := range ref.Prompts {
		if got := tok.Encode(p.Prompt); !reflect.DeepEqual(got, p.PromptIDs) {
			t.Errorf("Encode(%q) = %v, want %v", p.Prompt, got, p.PromptIDs)
		}
		// transformers wrote greedy_text with skip_special_tokens=True; the
		// continuations contain <|endoftext|> (id 1) between fortunes.
		var plain []int
		for _, id := range p.GreedyIDs {
			if !tok.IsSpecial(id) {
				plain = append(plain, id)
			}
		}
		if len(plain) == len(p.GreedyIDs) {
			t.Errorf("greedy_ids %v contain no special token", p.GreedyIDs)
		}
		text, err := tok.Decode(plain)
		if err != nil {
			t.Fatal(err)
		}
		if string(text) != p.GreedyText {
			t.Errorf("Decode(%v) = %q, want %q", plain, text, p.GreedyText)
		}
	}
}

// The special tokens and lookups, against the table in the fixture README.
func TestSpecialTokens(t *testing.T) {
	tok := gptOSS(t)
	if got := tok.VocabSize(); got != 200019 {
		t.Errorf("VocabSize = %d, want 200019", got)
	}
	specials := tok.SpecialTokens()
	if len(specials) != 21 {
		t.Errorf("%d special tokens, want 21", len(specials))
	}
	want := map[string]int{
		"<|startoftext|>": 199998, "<|endoftext|>": 199999, "<|return|>": 200002,
		"<|constrain|>": 200003, "<|channel|>": 200005, "<|start|>": 200006, "<|end|>": 200007,
		"<|message|>": 200008, "<|call|>": 200012, "<|endofprompt|>": 200018,
		"<|reserved_200000|>": 200000, "<|reserved_200017|>": 200017,
	}
	for text, id := range want {
		if got, ok := tok.TokenID(text); !ok || got != id {
			t.Errorf("TokenID(%q) = %d, %v, want %d", text, got, ok, id)
		}
		if got := tok.TokenText(id); got != text {
			t.Errorf("TokenText(%d) = %q, want %q", id, got, text)
		}
		if !tok.IsSpecial(id) {
			t.Errorf("IsSpecial(%d) = false", id)
		}
	}
	// Ordinary vocabulary entries use the byte-level spelling: "Hello" is
	// id 13225 and " world" id 2375 (vector prose_01).
	if got, ok := tok.TokenID("Ġworld"); !ok || got != 2375 {
		t.Errorf(`TokenID("Ġworld") = %d, %v, want 2375`, got, ok)
	}
	if got := tok.TokenText(2375); got != "Ġworld" {
		t.Errorf("TokenText(2375) = %q, want Ġworld", got)
	}
	if b, ok := tok.TokenBytes(2375); !ok || string(b) != " world" {
		t.Errorf("TokenBytes(2375) = %q, %v", b, ok)
	}
	if tok.IsSpecial(2375) || tok.IsSpecial(-1) || tok.IsSpecial(1<<30) {
		t.Error("IsSpecial true for a non-special id")
	}
	if _, ok := tok.TokenID("<|reserved_200500|>"); ok {
		t.Error("<|reserved_200500|> is not a token of this file")
	}
	if got := tok.TokenText(300000); got != "" {
		t.Errorf("TokenText(300000) = %q", got)
	}
}

// Cases from the fixture README's notes, beyond the vectors.
func TestReadmeCases(t *testing.T) {
	tok := gptOSS(t)
	cases := []struct {
		text string
		want []int
	}{
		// Special tokens are cut out first and the rest is encoded alone.
		{" <|end|> ", []int{220, 200007, 220}},
		// Not in this file's added tokens, so ordinary text.
		{"<|reserved_200500|>", []int{27, 91, 116758, 62, 1179, 3234, 91, 29}},
	}
	for _, c := range cases {
		if got := tok.Encode(c.text); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Encode(%q) = %v, want %v", c.text, got, c.want)
		}
	}
	// Near-misses are plain text: their ids contain no special token.
	for _, text := range []string{"<|start|", "<|START|>", "<|start |>", "|start|>"} {
		for _, id := range tok.Encode(text) {
			if tok.IsSpecial(id) {
				t.Errorf("Encode(%q) contains special token %d", text, id)
			}
		}
	}
	// EncodeOrdinary never produces special tokens, and decodes back.
	text := "<|start|>user<|message|>hi<|end|>"
	ids := tok.EncodeOrdinary(text)
	for _, id := range ids {
		if tok.IsSpecial(id) {
			t.Errorf("EncodeOrdinary produced special token %d", id)
		}
	}
	if got, _ := tok.Decode(ids); string(got) != text {
		t.Errorf("Decode(EncodeOrdinary(%q)) = %q", text, got)
	}
}

func TestDecodeErrors(t *testing.T) {
	tok := gptOSS(t)
	for _, ids := range [][]int{{-1}, {200019}, {13225, 1 << 40}} {
		_, err := tok.Decode(ids)
		if err == nil || !strings.Contains(err.Error(), "outside the vocabulary") {
			t.Errorf("Decode(%v) error = %v, want one naming the id outside the vocabulary", ids, err)
		}
	}
	d := tok.NewStreamDecoder()
	if _, err := d.Next(999999); err == nil {
		t.Error("StreamDecoder.Next(999999) gave no error")
	}
}

// Invalid UTF-8 input is encoded byte by byte and decodes back unchanged.
func TestInvalidUTF8RoundTrip(t *testing.T) {
	tok := gptOSS(t)
	for _, s := range []string{"\xff", "a\xffb", "\xe2\x82", "caf\xc3", "\xed\xa0\x80 x"} {
		got, err := tok.Decode(tok.Encode(s))
		if err != nil || string(got) != s {
			t.Errorf("Decode(Encode(%q)) = %q, %v", s, got, err)
		}
	}
}

func TestStreamDecoder(t *testing.T) {
	tok := gptOSS(t)
	split := 0
	for _, v := range vectors(t) {
		d := tok.NewStreamDecoder()
		var sb strings.Builder
		for _, id := range v.IDs {
			b, _ := tok.TokenBytes(id)
			if !utf8.Valid(b) {
				split++ // this token holds part of a character
			}
			s, err := d.Next(id)
			if err != nil {
				t.Fatal(err)
			}
			if !utf8.ValidString(s) {
				t.Errorf("%s: Next(%d) = %q is not valid UTF-8", v.Name, id, s)
			}
			sb.WriteString(s)
		}
		if rest := d.Flush(); rest != "" {
			t.Errorf("%s: Flush = %q after a complete text", v.Name, rest)
		}
		if sb.String() != v.Text {
			t.Errorf("%s: stream = %q, want %q", v.Name, sb.String(), v.Text)
		}
	}
	if split == 0 {
		t.Error("no vector splits a character across tokens; the test proves nothing")
	}
	t.Logf("%d tokens held part of a character", split)
}

// With arbitrary ids the stream stays valid UTF-8 and equals Go's own
// replacement of invalid bytes ([]rune conversion) applied to Decode.
func TestStreamDecoderInvalid(t *testing.T) {
	tok := gptOSS(t)
	// Byte tokens: the id of a single byte b is found through its spelling.
	byteID := func(b byte) int {
		id, ok := tok.TokenID(string(byteToRune[b]))
		if !ok {
			t.Fatalf("no token for byte %#x", b)
		}
		return id
	}
	seqs := [][]byte{
		{0xe2, 0x82, 0xac},                   // € split over three tokens
		{0xe2, 0x82, 'A'},                    // truncated, then ASCII
		{0xf0, 0x9f, 0x98},                   // truncated at the end
		{0x80, 0x80, 'x', 0xff},              // stray continuation bytes
		{0xed, 0xa0, 0x80},                   // a surrogate, never valid
		{0xc3, 0xf0, 0x9f, 0x98, 0x80, 0xe2}, // bad lead, emoji, dangling lead
	}
	for _, seq := range seqs {
		var ids []int
		for _, b := range seq {
			ids = append(ids, byteID(b))
		}
		d := tok.NewStreamDecoder()
		var sb strings.Builder
		for _, id := range ids {
			s, err := d.Next(id)
			if err != nil {
				t.Fatal(err)
			}
			if !utf8.ValidString(s) {
				t.Errorf("% x: chunk %q is not valid UTF-8", seq, s)
			}
			sb.WriteString(s)
		}
		sb.WriteString(d.Flush())
		raw, err := tok.Decode(ids)
		if err != nil {
			t.Fatal(err)
		}
		if want := string([]rune(string(raw))); sb.String() != want {
			t.Errorf("% x: stream %q, want %q", seq, sb.String(), want)
		}
	}
}

func TestRunTokenize(t *testing.T) {
	tok := gptOSS(t)
	run := func(in string, opts TokenizeOptions) (string, error) {
		var out bytes.Buffer
		err := RunTokenize(strings.NewReader(in), &out, tok, opts)
		return out.String(), err
	}
	// Expected ids from vectors prose_01 and the README (" <|end|> ").
	cases := []struct {
		in   string
		opts TokenizeOptions
		want string
	}{
		{"Hello, world!", TokenizeOptions{}, "[13225,11,2375,0]\n"},
		{"", TokenizeOptions{}, "[]\n"},
		{"\"Hello, world!\"\n\" <|end|> \"\n\"\"", TokenizeOptions{JSONL: true}, "[13225,11,2375,0]\n[220,200007,220]\n[]\n"},
		{" [13225, 11, 2375, 0]\n", TokenizeOptions{Decode: true}, "Hello, world!"},
		{"[13225,11,2375,0]\r\n[220,200007,220]\n", TokenizeOptions{Decode: true, JSONL: true}, "\"Hello, world!\"\n\" <|end|> \"\n"},
	}
	for _, c := range cases {
		got, err := run(c.in, c.opts)
		if err != nil || got != c.want {
			t.Errorf("RunTokenize(%q, %+v) = %q, %v; want %q", c.in, c.opts, got, err, c.want)
		}
	}
	bad := []struct {
		in   string
		opts TokenizeOptions
		want string
	}{
		{"\"ok\"\nnot json\n", TokenizeOptions{JSONL: true}, "line 2: each line must be one JSON string"},
		{"\"ok\"\n\n", TokenizeOptions{JSONL: true}, "line 2:"},
		{"null\n", TokenizeOptions{JSONL: true}, "line 1: each line must be one JSON string, like \"Hello\", not null"},
		{"[1]\n[1, 2.5]\n", TokenizeOptions{JSONL: true, Decode: true}, "line 2: each line must be one JSON array of token ids"},
		{"[1]\n[1]\n[300000]\n", TokenizeOptions{JSONL: true, Decode: true}, "line 3: decode: ids[0]: token id 300000 is outside the vocabulary"},
		{"[1] [2]", TokenizeOptions{Decode: true}, "use --jsonl"},
		{"{}", TokenizeOptions{Decode: true}, "not a JSON array of token ids"},
	}
	for _, c := range bad {
		_, err := run(c.in, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("RunTokenize(%q, %+v) error = %v, want one containing %q", c.in, c.opts, err, c.want)
		}
	}
}
