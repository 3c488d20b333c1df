package dsl

import (
	"os"
	"testing"
)

func BenchmarkParseGptOss(b *testing.B) {
	src, err := os.ReadFile("../models/gpt-oss.arch")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(src)))
	for i := 0; i < b.N; i++ {
		if _, err := Parse("gpt-oss.arch", string(src)); err != nil {
			b.Fatal(err)
		}
	}
}
