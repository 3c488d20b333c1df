package tokenizer

import (
	"os"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzEncode: encoding never panics, decodes back to the input (for any
// bytes: invalid UTF-8 is encoded byte by byte), the stream decoder agrees
// with Decode, and every split pattern cuts text into non-empty pieces that
// join back to it.
//
//	go test ./runtime/tokenizer -run XXX -fuzz FuzzEncode
func FuzzEncode(f *testing.F) {
	for _, v := range vectors(f) {
		f.Add(v.Text)
	}
	f.Add("\xff\xfe<|end|\xe2\x82<|end|>")
	f.Add(strings.Repeat("ab", 100) + strings.Repeat(" ", 70) + "x")
	toks := []*Tokenizer{gptOSS(f), fortune(f)}
	f.Fuzz(func(t *testing.T, text string) {
		for _, tok := range toks {
			ids := tok.Encode(text)
			got, err := tok.Decode(ids)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != text {
				t.Fatalf("Decode(Encode(%q)) = %q (ids %v)", text, got, ids)
			}
			if got, _ := tok.Decode(tok.EncodeOrdinary(text)); string(got) != text {
				t.Fatalf("Decode(EncodeOrdinary(%q)) = %q", text, got)
			}
			// EncodeLimit agrees with Encode at the limit and stops below it.
			if got, err := tok.EncodeLimit(text, len(ids)); err != nil || len(ids) > 0 && !slices.Equal(got, ids) {
				t.Fatalf("EncodeLimit(%q, %d) = %v, %v; Encode gives %v", text, len(ids), got, err, ids)
			}
			if len(ids) > 0 {
				if _, err := tok.EncodeLimit(text, len(ids)-1); err == nil {
					t.Fatalf("EncodeLimit(%q, %d) of %d tokens gave no error", text, len(ids)-1, len(ids))
				}
			}
			d := tok.NewStreamDecoder()
			var sb strings.Builder
			for _, id := range ids {
				s, err := d.Next(id)
				if err != nil {
					t.Fatal(err)
				}
				if !utf8.ValidString(s) {
					t.Fatalf("stream chunk %q is not valid UTF-8", s)
				}
				sb.WriteString(s)
			}
			sb.WriteString(d.Flush())
			if want := string([]rune(text)); sb.String() != want {
				t.Fatalf("stream of %q = %q, want %q", text, sb.String(), want)
			}
		}
		for pattern := range knownPatterns {
			joined := ""
			for _, p := range splitWith(pattern, text) {
				if p == "" {
					t.Fatalf("empty piece splitting %q", text)
				}
				joined += p
			}
			if joined != text {
				t.Fatalf("pieces of %q join to %q", text, joined)
			}
		}
	})
}

// FuzzLoad: no input makes Parse panic or hang, and whatever it accepts
// can encode and decode.
//
//	go test ./runtime/tokenizer -run XXX -fuzz FuzzLoad
func FuzzLoad(f *testing.F) {
	fortuneJSON, err := os.ReadFile("testdata/fortune-tokenizer.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(fortuneJSON)
	f.Add(toyJSON(map[string]int{"ab": 256}, []string{"a b"}, true, plainByteLevel,
		`[{"id":300,"content":"<s>","special":true,"lstrip":true,"rstrip":true,"single_word":true}]`))
	f.Add(toyJSON(nil, nil, false,
		`{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":`+jsonQuote(PatternLlama3)+`},"behavior":"MergedWithNext","invert":true},`+
			`{"type":"ByteLevel","add_prefix_space":true,"use_regex":true}]}`, ""))
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"a":0,"\u0120":1},"merges":[["a","\u0120"]],"unk_token":"a","byte_fallback":true},` +
		`"pre_tokenizer":{"type":"ByteLevel"},"decoder":{"type":"ByteLevel"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := Parse(data)
		if err != nil {
			return
		}
		ids := tok.Encode("Hello, world! <s> 123 \xff\u00e9")
		tok.EncodeOrdinary("<|end|> x")
		if _, err := tok.Decode(ids); err != nil {
			t.Fatalf("Decode of Encode's ids: %v", err)
		}
		for id := range min(tok.VocabSize(), 1000) {
			tok.TokenText(id)
			tok.TokenBytes(id)
		}
		tok.SpecialTokens()
	})
}

func jsonQuote(s string) string {
	var sb strings.Builder
	sb.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			sb.WriteByte('\\')
		}
		sb.WriteRune(r)
	}
	sb.WriteByte('"')
	return sb.String()
}
