package jsonschema

import (
	"testing"
)

// BenchmarkMask measures one step's mask over gpt-oss's vocabulary
// (201,088 ids; the tokenizer's 200,019 tokens) in the states a
// structured reply spends its tokens in. Compare with BenchmarkSoftmax,
// the cost of one pass over the logits, in the same run.
func BenchmarkMask(b *testing.B) {
	tok, err := gptOSS()
	if err != nil {
		b.Skip(err)
	}
	vocab := vocabulary(tok)
	m := NewMasker(vocab)
	n, err := Compile([]byte(personSchema))
	if err != nil {
		b.Fatal(err)
	}
	allow := make([]bool, len(vocab))
	for _, c := range []struct{ name, prefix string }{
		{"object-start", ``},
		{"key", `{"name":"Ann","age":3,`},
		{"in-string", `{"name":"An`},
		{"in-number", `{"name":"Ann","age":3`},
		{"json-object-in-string", ``},
	} {
		node := n
		prefix := c.prefix
		if c.name == "json-object-in-string" {
			node, prefix = AnyObject(), `{"a":[{"b":"x`
		}
		s, ok := Start(node).Bytes([]byte(prefix))
		if !ok {
			b.Fatalf("%s: %q refused", c.name, prefix)
		}
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				m.Allowed(s, allow)
			}
		})
	}
	b.Run("softmax-baseline", func(b *testing.B) {
		logits := make([]float32, len(vocab))
		for i := range logits {
			logits[i] = float32(i%97) / 10
		}
		var sink float32
		for b.Loop() {
			for i, v := range logits {
				if allow[i] {
					sink += v
				} else {
					logits[i] = v * 0.5
				}
			}
		}
		_ = sink
	})
}

// BenchmarkNewMasker: building the trie and table, once per server.
func BenchmarkNewMasker(b *testing.B) {
	tok, err := gptOSS()
	if err != nil {
		b.Skip(err)
	}
	vocab := vocabulary(tok)
	for b.Loop() {
		NewMasker(vocab)
	}
}
