package tokenizer

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// toyJSON builds a tokenizer.json whose vocabulary is the 256 bytes (byte
// b is id b) plus extra, with the given merges ("a b" strings),
// pre_tokenizer and added_tokens (JSON text; "" for none).
func toyJSON(extra map[string]int, merges []string, ignoreMerges bool, preTokenizer, addedTokens string) []byte {
	vocab := map[string]int{}
	for b := 0; b < 256; b++ {
		vocab[string(byteToRune[b])] = b
	}
	for k, v := range extra {
		vocab[spellingOf(k)] = v
	}
	for i, m := range merges {
		a, b, _ := strings.Cut(m, " ")
		merges[i] = spellingOf(a) + " " + spellingOf(b)
	}
	if addedTokens == "" {
		addedTokens = "[]"
	}
	model, _ := json.Marshal(map[string]any{
		"type": "BPE", "dropout": nil, "unk_token": nil, "fuse_unk": false, "byte_fallback": false,
		"ignore_merges": ignoreMerges, "vocab": vocab, "merges": merges,
	})
	return fmt.Appendf(nil, `{"version":"1.0","added_tokens":%s,"normalizer":null,"pre_tokenizer":%s,
		"post_processor":null,"decoder":{"type":"ByteLevel"},"model":%s}`, addedTokens, preTokenizer, model)
}

const plainByteLevel = `{"type":"ByteLevel","add_prefix_space":false,"use_regex":false}`

// Merges may be "a b" strings or ["a", "b"] pairs, and JSON escapes in
// spellings are decoded.
func TestMergeFormats(t *testing.T) {
	legacy, err := Parse(toyJSON(map[string]int{"ab": 256, `"\`: 257}, []string{"a b", `" \`}, false, plainByteLevel, ""))
	if err != nil {
		t.Fatal(err)
	}
	pairs := toyJSON(map[string]int{"ab": 256, `"\`: 257}, nil, false, plainByteLevel, "")
	pairs = []byte(strings.Replace(string(pairs), `"merges":null`, `"merges":[ [ "a" , "b" ] , ["\"", "\\"] ]`, 1))
	paired, err := Parse(pairs)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []*Tokenizer{legacy, paired} {
		if got := tok.Encode(`ab"\`); !reflect.DeepEqual(got, []int{256, 257}) {
			t.Errorf(`Encode("ab\"\\") = %v, want [256 257]`, got)
		}
	}
}

// A Split pre-tokenizer with a known pattern is recognised from the JSON
// and applied before BPE: Llama 3's pattern cuts 1234 into 123|4, so the
// merge 3 4 cannot apply; without the Split it does.
func TestSplitFromJSON(t *testing.T) {
	llama3 := `{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":` + jsonQuote(PatternLlama3) +
		`},"behavior":"Isolated","invert":false},` + plainByteLevel + `]}`
	for _, c := range []struct {
		pre  string
		want []int
	}{
		{llama3, []int{'1', '2', '3', '4'}},
		{plainByteLevel, []int{'1', '2', 256}},
	} {
		tok, err := Parse(toyJSON(map[string]int{"34": 256}, []string{"3 4"}, false, c.pre, ""))
		if err != nil {
			t.Fatal(err)
		}
		if got := tok.Encode("1234"); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Encode(1234) = %v, want %v", got, c.want)
		}
	}
}

// ByteLevel's add_prefix_space adds a space to every piece that does not
// start with one, including the text after an added token.
func TestAddPrefixSpace(t *testing.T) {
	tok, err := Parse(toyJSON(nil, nil, false, `{"type":"ByteLevel","add_prefix_space":true,"use_regex":true}`,
		`[{"id":300,"content":"<s>","special":true}]`))
	if err != nil {
		t.Fatal(err)
	}
	// " a" " b" "<s>" " c": Ġ is byte 32.
	want := []int{' ', 'a', ' ', 'b', 300, ' ', 'c'}
	if got := tok.Encode("a b<s>c"); !reflect.DeepEqual(got, want) {
		t.Errorf("Encode = %v, want %v", got, want)
	}
	if got := tok.Encode(""); len(got) != 0 {
		t.Errorf(`Encode("") = %v, want []`, got)
	}
}

// segmentsOf lists the added-token segments of text as "text" or "text=id".
func segmentsOf(tok *Tokenizer, text string) []string {
	var out []string
	tok.added.segments(text, true, func(seg string, id int) bool {
		if id >= 0 {
			seg = fmt.Sprintf("%s=%d", seg, id)
		}
		out = append(out, seg)
		return true
	})
	return out
}

// Added-token options, with the expected splits of the tests in tokenizers'
// added_vocabulary.rs. Those tests lowercase the text with a normalizer;
// the inputs here are already lower case.
func TestAddedTokenOptions(t *testing.T) {
	parse := func(added string) *Tokenizer {
		t.Helper()
		tok, err := Parse(toyJSON(nil, nil, false, plainByteLevel, added))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// options_use_cases
	tok := parse(`[
		{"id":300,"content":"my","lstrip":true,"rstrip":true,"normalized":true},
		{"id":301,"content":"name","normalized":true},
		{"id":302,"content":"ony","single_word":true,"normalized":true},
		{"id":303,"content":"[CLS]","special":true},
		{"id":304,"content":"[SEP]","special":true}]`)
	got := segmentsOf(tok, "[CLS] my name is anthony [SEP]")
	want := []string{"[CLS]=303", " my =300", "name=301", " is anthony ", "[SEP]=304"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("options_use_cases: %q, want %q", got, want)
	}
	// test_single_word_is_correct
	tok = parse(`[{"id":300,"content":"<mask>","single_word":true}]`)
	got = segmentsOf(tok, "<mask> my name <mask> a<mask> <mask>ony <mask>")
	want = []string{"<mask>=300", " my name ", "<mask>=300", " a<mask> <mask>ony ", "<mask>=300"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("single_word: %q, want %q", got, want)
	}
	// test_single_word_is_unicode_correct: a combining mark is a word character.
	got = segmentsOf(tok, "<mask>, <mask>- \u25cc\u0330<mask>")
	want = []string{"<mask>=300", ", ", "<mask>=300", "- \u25cc\u0330<mask>"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("single_word unicode: %q, want %q", got, want)
	}
	// test_lstrip_unicode_space
	tok = parse(`[{"id":300,"content":"<mask>","single_word":true,"lstrip":true,"rstrip":true}]`)
	got = segmentsOf(tok, "hi <mask> there\t<mask>\t<mask>\u2000")
	want = []string{"hi", " <mask> =300", "there", "\t<mask>\t=300", "<mask>\u2000=300"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("lstrip/rstrip: %q, want %q", got, want)
	}
	// Longest match first, and the matched text encodes to the added id.
	tok = parse(`[{"id":300,"content":"<|a|>","special":true},{"id":301,"content":"<|a|>>","special":true}]`)
	if got := tok.Encode("x<|a|>><|a|>"); !reflect.DeepEqual(got, []int{'x', 301, 300}) {
		t.Errorf("Encode = %v, want [x 301 300]", got)
	}
}

// Unsupported or broken files give errors that say what is wrong and what
// is supported.
func TestLoadErrors(t *testing.T) {
	valid := string(toyJSON(nil, nil, false, plainByteLevel, ""))
	replace := func(old, new string) []byte {
		if !strings.Contains(valid, old) {
			t.Fatalf("toy JSON lacks %q", old)
		}
		return []byte(strings.Replace(valid, old, new, 1))
	}
	cases := []struct {
		data []byte
		want string
	}{
		{[]byte(""), "parse tokenizer.json: tokenizer.json must be a JSON object"},
		{[]byte("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\" 1}}}"), "parse tokenizer.json: model.vocab: JSON syntax error at byte 40: expected ':'"},
		{[]byte(`{"truncation": [1 2], "model": {}}`), "parse tokenizer.json: truncation: JSON syntax error at byte 18: invalid character '2' after array element"},
		{[]byte(`{"model": {"type": "BPE", "vocab": {}, "dropout": tru}}`), "parse tokenizer.json: model.dropout: JSON syntax error at byte 53: incomplete value"},
		{[]byte(`{"padding": 1x, "model": {}}`), "parse tokenizer.json: padding: JSON syntax error at byte 13: unexpected data after the value"},
		{[]byte("{} x"), "parse tokenizer.json: JSON syntax error at byte 3: unexpected data after the value"},
		{[]byte("{\"a\": \"\xff\"}"), "parse tokenizer.json: the file is not valid UTF-8 (tokenizer.json files are JSON text)"},
		{[]byte(`{"version": "1.0"}`), `parse tokenizer.json: no "model" object: not a tokenizer.json file`},
		{replace(`"type":"BPE"`, `"type":"WordPiece"`),
			`parse tokenizer.json: model.type is "WordPiece"; only byte-level BPE models are supported`},
		{replace(`"normalizer":null`, `"normalizer":{"type":"NFC"}`),
			`parse tokenizer.json: normalizer: type "NFC" is not supported; only tokenizers without a normalizer (null) are`},
		{replace(`"decoder":{"type":"ByteLevel"}`, `"decoder":{"type":"Metaspace"}`),
			`parse tokenizer.json: decoder: type "Metaspace" is not supported; only ByteLevel is`},
		{replace(plainByteLevel, `{"type":"Whitespace"}`),
			`parse tokenizer.json: pre_tokenizer: type "Whitespace" is not supported; supported pre-tokenizers are Sequence, Split and ByteLevel`},
		{replace(plainByteLevel, `{"type":"Sequence","pretokenizers":[`+plainByteLevel+`,{"type":"Split","pattern":{"String":" "},"behavior":"Isolated"}]}`),
			`parse tokenizer.json: pre_tokenizer.pretokenizers[1]: Split comes after ByteLevel; ByteLevel must be the last pre-tokenizer`},
		{replace(plainByteLevel, `{"type":"Split","pattern":{"String":" "},"behavior":"Isolated"}`),
			`parse tokenizer.json: pre_tokenizer: no ByteLevel step; only byte-level BPE tokenizers are supported`},
		{replace(plainByteLevel, `{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"\\w+"},"behavior":"Isolated"},`+plainByteLevel+`]}`),
			`parse tokenizer.json: pre_tokenizer.pretokenizers[0]: Split regex "\\w+" is not supported. Regex patterns are implemented as exact scanners ` +
				`for the patterns of gpt-oss/o200k, Llama 3/cl100k, Qwen2 and GPT-2 only; see tokenizer.PatternO200k and the other Pattern constants`},
		{replace(plainByteLevel, `{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"String":" "},"behavior":"Merged"},`+plainByteLevel+`]}`),
			`parse tokenizer.json: pre_tokenizer.pretokenizers[0]: Split behavior "Merged" is not one of Contiguous, Isolated, MergedWithNext, MergedWithPrevious, Removed`},
		{replace(`"merges":null`, `"merges":["a b"]`),
			`parse tokenizer.json: model.merges[0]: "a" + "b" is not in model.vocab`},
		{replace(`"merges":null`, `"merges":["a b c"]`),
			`parse tokenizer.json: model.merges[0]: "a b c" is not two tokens separated by one space`},
		{replace(`"merges":null`, `"merges":["a q1"]`),
			`parse tokenizer.json: model.merges[0]: "q1" is not in model.vocab`},
		{replace(`"vocab":{`, `"vocab":{"zz":1.5,`),
			`parse tokenizer.json: model.vocab["zz"]: id 1.5 is not a non-negative integer`},
		{replace(`"vocab":{`, `"vocab":{"zz":99999999,`),
			`parse tokenizer.json: model.vocab: "zz" has id 4194304; ids must be in 0..4194303`},
		{replace(`"vocab":{`, `"vocab":{"zz":7,`),
			`parse tokenizer.json: model.vocab: id 7 is given to both "zz" and "ć"`},
		{replace(`"added_tokens":[]`, `"added_tokens":[{"content":"<x>"}]`),
			`parse tokenizer.json: added_tokens[0]: needs both "id" and "content"`},
		{replace(`"dropout":null`, `"dropout":0.1`),
			`parse tokenizer.json: model.dropout is 0.1; BPE dropout is a training feature and is not supported (set it to null)`},
	}
	for _, c := range cases {
		_, err := Parse(c.data)
		if err == nil || err.Error() != c.want {
			t.Errorf("Parse(%.80q):\n got %v\nwant %s", c.data, err, c.want)
		}
	}
	if _, err := Load("testdata/no-such-file.json"); err == nil || !strings.Contains(err.Error(), "no-such-file.json") {
		t.Errorf("Load of a missing file: %v", err)
	}
}
