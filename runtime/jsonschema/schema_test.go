package jsonschema

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/minerva-ml/minerva/models"
	"github.com/minerva-ml/minerva/runtime/tokenizer"
)

const personSchema = `{
  "type": "object",
  "properties": {
    "name": {"type": "string"},
    "age": {"type": "integer"},
    "height": {"type": "number", "description": "metres"},
    "tags": {"type": "array", "items": {"type": "string"}},
    "role": {"enum": ["admin", "user", 3, null]},
    "ok": {"type": "boolean"},
    "boss": {"$ref": "#/definitions/ref"},
    "meta": {"type": "object"}
  },
  "required": ["name", "age", "ok"],
  "additionalProperties": false,
  "definitions": {"ref": {"type": "object", "properties": {"id": {"type": "integer"}, "next": {"$ref": "#/definitions/ref"}}, "required": ["id"]}}
}`

func compile(t testing.TB, s string) *Node {
	t.Helper()
	n, err := Compile([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func accepts(n *Node, text string) bool {
	s, ok := Start(n).Bytes([]byte(text))
	return ok && s.Complete()
}

func TestAutomaton(t *testing.T) {
	person := compile(t, personSchema)
	for _, c := range []struct {
		text string
		want bool
	}{
		{`{"name":"Ann","age":3,"ok":true}`, true},
		{`{"name":"A\"n\\n\u00e9 ü 日本","age":-0,"height":1.5e-3,"tags":[],"role":3,"ok":false}`, true},
		{`{"name":"x","age":1,"ok":true,"boss":{"id":1,"next":{"id":2}},"meta":{"a":[1,{"b":null}],"c":"d"}}`, true},
		{`{"name":"x","age":1,"tags":["a","b"],"role":null,"ok":true}`, true},
		{`{"age":1,"name":"x","ok":true}`, false},               // schema order
		{`{"name":"x","ok":true}`, false},                       // age missing
		{`{"name":"x","age":1.5,"ok":true}`, false},             // integer
		{`{"name":"x","age":01,"ok":true}`, false},              // leading zero
		{`{"name":"x","age":1,"ok":true,"extra":1}`, false},     // not a property
		{`{"name":"x","age":1,"ok":"true"}`, false},             // boolean
		{`{"name":"x","age":1,"role":"root","ok":true}`, false}, // enum
		{`{"name": "x","age":1,"ok":true}`, false},              // no whitespace
		{`{"name":"a\qb","age":1,"ok":true}`, false},            // escape
		{"{\"name\":\"a\nb\",\"age\":1,\"ok\":true}", false},    // raw control
		{"{\"name\":\"a\xffb\",\"age\":1,\"ok\":true}", false},  // UTF-8
		{`{"name":"x","age":1,"ok":true,"boss":{"next":{"id":2}}}`, false},
		{`{"name":"x","age":1,"ok":true}x`, false},
		{`{"name":"x","age":1`, false}, // incomplete
	} {
		if got := accepts(person, c.text); got != c.want {
			t.Errorf("%s: accepted %v, want %v", c.text, got, c.want)
		}
	}
	num := compile(t, `{"type":"number"}`)
	for text, want := range map[string]bool{"0": true, "-1.25E+10": true, "12": true, "1.": false, "-": false, ".5": false, "1e": false, "00": false, "1234567890123456": false, "123456789012345": true, "1.1234567890123456": false, "1e123": false, "1e99": true} {
		if got := accepts(num, text); got != want {
			t.Errorf("number %q: %v, want %v", text, got, want)
		}
	}
	obj := AnyObject()
	for text, want := range map[string]bool{`{}`: true, `{"a":{"b":[true,false,null,-1.5,"s"]}}`: true, `[]`: false, `{"a"}`: false, `{"a":1,}`: false} {
		if got := accepts(obj, text); got != want {
			t.Errorf("json_object %q: %v, want %v", text, got, want)
		}
	}
	// A fixed wrapper around a compiled schema: Llama 3.1's tool call.
	call := Object([]string{"name", "parameters"}, []*Node{Const("f"), compile(t, `{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}`)})
	for text, want := range map[string]bool{`{"name":"f","parameters":{"n":2}}`: true, `{"name":"g","parameters":{"n":2}}`: false, `{"name":"f"}`: false, `{"parameters":{"n":2},"name":"f"}`: false, `{"name":"f","parameters":{}}`: false, `{"name":"f","parameters":{"n":2},"x":1}`: false} {
		if got := accepts(call, text); got != want {
			t.Errorf("call %q: %v, want %v", text, got, want)
		}
	}
}

func TestCompileRefuses(t *testing.T) {
	for schema, want := range map[string]string{
		`{"type":"string","minLength":3}`:                                      `keyword "minLength"`,
		`{"anyOf":[{"type":"string"}]}`:                                        `keyword "anyOf"`,
		`{"type":"object","properties":{"a":{"type":"string","pattern":"x"}}}`: `#/properties/a: keyword "pattern"`,
		`{"type":["string","null"]}`:                                           "a list of types",
		`{"type":"object","properties":{"a":{}},"additionalProperties":true}`:  `keyword "additionalProperties"`,
		`{"$ref":"#/definitions/missing"}`:                                     "names no definition",
		`{"$ref":"http://example.com/s.json"}`:                                 "only references to",
		`{"type":"object","properties":{"a":{}},"required":["b"]}`:             `"b" is required`,
		`[1]`:              "not a JSON object",
		`{"type":"tuple"}`: `unknown type "tuple"`,
	} {
		_, err := Compile([]byte(schema))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want an error with %q", schema, err, want)
		}
	}
}

// check is an independent oracle: it decodes v with encoding/json and
// checks it against the person schema by hand.
func checkPerson(t *testing.T, text string) {
	t.Helper()
	if !json.Valid([]byte(text)) {
		t.Fatalf("not JSON: %q", text)
	}
	var v map[string]any
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%q: %v", text, err)
	}
	for _, k := range []string{"name", "age", "ok"} {
		if _, ok := v[k]; !ok {
			t.Fatalf("%q lacks %s", text, k)
		}
	}
	for k, x := range v {
		switch k {
		case "name":
			_, ok := x.(string)
			if !ok {
				t.Fatalf("%q: name %v", text, x)
			}
		case "age":
			n, ok := x.(json.Number)
			if _, err := n.Int64(); !ok || (err != nil && !strings.ContainsAny(string(n), "0123456789")) || strings.ContainsAny(string(n), ".eE") {
				t.Fatalf("%q: age %v", text, x)
			}
		case "ok":
			if _, ok := x.(bool); !ok {
				t.Fatalf("%q: ok %v", text, x)
			}
		case "height":
			if _, ok := x.(json.Number); !ok {
				t.Fatalf("%q: height %v", text, x)
			}
		case "tags":
			list, ok := x.([]any)
			if !ok {
				t.Fatalf("%q: tags %v", text, x)
			}
			for _, e := range list {
				if _, ok := e.(string); !ok {
					t.Fatalf("%q: tag %v", text, e)
				}
			}
		case "role":
			if s := fmt.Sprint(x); x != nil && s != "admin" && s != "user" && s != "3" {
				t.Fatalf("%q: role %v", text, x)
			}
		case "boss", "meta":
			if _, ok := x.(map[string]any); !ok {
				t.Fatalf("%q: %s %v", text, k, x)
			}
		default:
			t.Fatalf("%q: property %s is not in the schema", text, k)
		}
	}
}

// TestRandomBytes: bytes drawn at random among those the automaton
// allows always make JSON that matches the schema.
func TestRandomBytes(t *testing.T) {
	person := compile(t, personSchema)
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 300; trial++ {
		s := Start(person)
		var out []byte
		for len(out) < 4000 {
			if s.Complete() && (s.Done() || rng.IntN(4) == 0) {
				break
			}
			var allowed []byte
			for b := 0; b < 256; b++ {
				if _, ok := s.Step(byte(b)); ok {
					allowed = append(allowed, byte(b))
				}
			}
			if len(allowed) == 0 {
				t.Fatalf("dead end after %q", out)
			}
			// Prefer structure to long strings, so documents finish.
			b := allowed[rng.IntN(len(allowed))]
			for _, c := range []byte(`"}],`) {
				if bytes.IndexByte(allowed, c) >= 0 && rng.IntN(3) == 0 {
					b = c
				}
			}
			s, _ = s.Step(b)
			out = append(out, b)
		}
		if !s.Complete() {
			continue // the length bound cut it
		}
		checkPerson(t, string(out))
	}
}

var gptOSS = sync.OnceValues(func() (*tokenizer.Tokenizer, error) {
	f, err := os.Open("../tokenizer/testdata/gpt-oss-tokenizer.json.gz")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(z)
	if err != nil {
		return nil, err
	}
	return tokenizer.Parse(b)
})

// vocabulary is what serve gives NewMasker: each token's bytes, nil
// for special tokens.
func vocabulary(tok *tokenizer.Tokenizer) [][]byte {
	out := make([][]byte, tok.VocabSize())
	for id := range out {
		if tok.IsSpecial(id) {
			continue
		}
		if b, ok := tok.TokenBytes(id); ok {
			out[id] = b
		}
	}
	return out
}

// TestMaskerMatchesBruteForce: the trie walk (and the plain-text table)
// allow exactly the tokens whose bytes the automaton takes one by one;
// tokens drawn at random among the allowed make valid JSON.
func TestMaskerMatchesBruteForce(t *testing.T) {
	tok, err := tokenizer.Parse(models.FortuneFile("tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	vocab := vocabulary(tok)
	m := NewMasker(vocab)
	person := compile(t, personSchema)
	allow := make([]bool, len(vocab))
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 6; trial++ {
		s := Start(person)
		var out []byte
		for steps := 0; steps < 100 && !s.Done(); steps++ {
			m.Allowed(s, allow)
			var ids []int
			for id, tb := range vocab {
				_, ok := s.Bytes(tb)
				ok = ok && len(tb) > 0
				if ok != allow[id] {
					t.Fatalf("after %q: token %d %q allowed %v, brute force %v", out, id, tb, allow[id], ok)
				}
				if ok {
					ids = append(ids, id)
				}
			}
			if len(ids) == 0 || (s.Complete() && rng.IntN(3) == 0) {
				break
			}
			id := ids[rng.IntN(len(ids))]
			s, _ = s.Bytes(vocab[id])
			out = append(out, vocab[id]...)
		}
		if s.Complete() {
			checkPerson(t, string(out))
		}
	}
}

// TestOneOf: a tool call among several, the head (the name) deciding the
// body's grammar, written out by hand.
func TestOneOf(t *testing.T) {
	a, err := Compile([]byte(`{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}`))
	if err != nil {
		t.Fatal(err)
	}
	n := OneOf([][]byte{[]byte(`{"name":"a","parameters":`), []byte(`{"name":"ab","parameters":`)}, []*Node{a, AnyObject()}, []byte("}"))
	for text, want := range map[string]bool{
		`{"name":"a","parameters":{"n":1}}`:           true,
		`{"name":"ab","parameters":{"x":"y","z":[]}}`: true,
		`{"name":"ab","parameters":{}}`:               true,
		`{"name":"a","parameters":{"x":"y"}}`:         false, // a's schema
		`{"name":"a","parameters":{"n":1}`:            false, // no tail
		`{"name":"c","parameters":{}}`:                false,
		`{"name":"a","parameters":{"n":1}}}`:          false,
	} {
		if got := accepts(n, text); got != want {
			t.Errorf("%s: accepted %v, want %v", text, got, want)
		}
	}
	names := OneOf([][]byte{[]byte("f "), []byte("fg ")}, nil, nil)
	for text, want := range map[string]bool{"f ": true, "fg ": true, "f": false, "g ": false, "f g": false} {
		if got := accepts(names, text); got != want {
			t.Errorf("names %q: accepted %v, want %v", text, got, want)
		}
	}
	s, _ := Start(names).Bytes([]byte("fg "))
	if !s.Done() {
		t.Error("after a whole name, the state is not done")
	}
}
