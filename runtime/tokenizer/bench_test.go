package tokenizer

import (
	"strings"
	"testing"
)

// englishText builds about 1 MB of English deterministically from the
// prose and long-paragraph vectors.
func englishText(tb testing.TB) string {
	var parts []string
	for _, v := range vectors(tb) {
		if v.Category == "prose" || v.Category == "long_paragraph" {
			parts = append(parts, v.Text)
		}
	}
	unit := strings.Join(parts, "\n\n")
	var sb strings.Builder
	for sb.Len() < 1<<20 {
		sb.WriteString(unit)
		sb.WriteString("\n\n")
	}
	return sb.String()
}

func BenchmarkEncode(b *testing.B) {
	tok := gptOSS(b)
	text := englishText(b)
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for b.Loop() {
		tok.Encode(text)
	}
}

// The fortune tokenizer has ignore_merges off, so every word runs BPE.
func BenchmarkEncodeFortune(b *testing.B) {
	tok := fortune(b)
	text := englishText(b)
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for b.Loop() {
		tok.Encode(text)
	}
}

func BenchmarkDecode(b *testing.B) {
	tok := gptOSS(b)
	text := englishText(b)
	ids := tok.Encode(text)
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := tok.Decode(ids); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoad parses the 27 MB gpt-oss tokenizer.json (already in memory).
func BenchmarkLoad(b *testing.B) {
	data := gptOSSJSON(b)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadCached loads the gpt-oss tokenizer as Load does when its
// cache file is there (the JSON already in memory, like BenchmarkLoad):
// the SHA-256 of the 27 MB, mapping the cache file, checking it, and
// building the tables. BenchmarkCacheKey is the SHA-256 alone.
func BenchmarkLoadCached(b *testing.B) {
	data := gptOSSJSON(b)
	dir := b.TempDir()
	if _, err := loadWithCache(data, dir); err != nil { // writes the cache
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		key := cacheKey(data)
		if _, err := readCache(cachePath(dir, key), key, maxCacheSize(len(data))); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCacheKey(b *testing.B) {
	data := gptOSSJSON(b)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		cacheKey(data)
	}
}
