package tokenizer

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/minerva-ml/minerva/internal/golden"
	"github.com/minerva-ml/minerva/internal/testcache"
)

// The tests of this package never write into the user's cache: Load
// (which the fortune helper uses) writes into a directory of its own.
func TestMain(m *testing.M) { os.Exit(testcache.Run(m)) }

// cacheFixtures are tokenizer.json files that cover the tables: the
// fortune model's, and toys with added tokens over vocabulary ids and
// past them, an id left unused, spellings outside the byte-level
// alphabet, byte fallback, an unknown token, merges given as pairs, and
// no merges at all. The gpt-oss tokenizer has its own tests (it takes
// 0.2 s to parse).
func cacheFixtures(tb testing.TB) map[string][]byte {
	fortuneJSON, err := os.ReadFile("testdata/fortune-tokenizer.json")
	if err != nil {
		tb.Fatal(err)
	}
	llama3 := `{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":` + jsonQuote(PatternLlama3) +
		`},"behavior":"Isolated","invert":false},` + plainByteLevel + `]}`
	return map[string][]byte{
		"fortune": fortuneJSON,
		"added": toyJSON(map[string]int{"ab": 256, "abc": 258, "xyzxyzxyzxyz": 259, "xy": 260}, []string{"a b", "ab c", "x y"}, false, llama3,
			`[{"id":256,"content":"<ab>","special":true},{"id":300,"content":"<s>","special":true,"lstrip":true,"rstrip":true},`+
				`{"id":301,"content":"word","single_word":true,"normalized":true},{"id":257,"content":"gap"}]`),
		"ignore-merges": toyJSON(map[string]int{"ab": 256, "cd": 257}, []string{"a b", "c d"}, true,
			`{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"String":"-"},"behavior":"MergedWithNext","invert":true},`+
				`{"type":"ByteLevel","add_prefix_space":true,"use_regex":true}]}`, ""),
		"odd-spellings": []byte(`{"model":{"type":"BPE","vocab":{"a":0,"\u0120":1,"é":2,"<0x62>":3,"<unk>":4,"✓":5,"✓a":6,"a\u0120":7,"<0xC4>":8,"<0x80>":9},` +
			`"merges":[["a","\u0120"],["✓","a"]],"unk_token":"<unk>","byte_fallback":true},` +
			`"pre_tokenizer":{"type":"ByteLevel"},"decoder":{"type":"ByteLevel"}}`),
		"no-merges": []byte(`{"model":{"vocab":{"a":0,"b":1},"merges":[]},` +
			`"pre_tokenizer":{"type":"ByteLevel","use_regex":false},"decoder":{"type":"ByteLevel"}}`),
		"null-merges": []byte(`{"model":{"type":"BPE","vocab":{"a":0,"b":1},"merges":null,"unk_token":"b","fuse_unk":true},` +
			`"pre_tokenizer":{"type":"ByteLevel","use_regex":false},"decoder":{"type":"ByteLevel"},"added_tokens":[{"id":5,"content":"<e>"}]}`),
	}
}

// cacheTexts are texts to encode with a fixture's tokenizers.
func cacheTexts(tb testing.TB) []string {
	texts := []string{"", "a", "ab abc xyzxyzxyzxyz <ab> <s>  word words gap", "1234 don't WORD-x-y", "é✓a\xff\x00 Ġ<unk>"}
	for _, v := range vectors(tb) {
		texts = append(texts, v.Text)
	}
	return texts
}

// parseAndCache parses data as Load does when it writes the cache, and
// reads the cache file back.
func parseAndCache(tb testing.TB, data []byte) (parsed, cached *Tokenizer, file []byte) {
	tb.Helper()
	var kept parsedTables
	parsed, err := parse(data, &kept)
	if err != nil {
		tb.Fatal(err)
	}
	key := cacheKey(data)
	file, err = encodeCache(key, parsed, &kept)
	if err != nil {
		tb.Fatal(err)
	}
	cached, err = decodeCache(file, key)
	if err != nil {
		tb.Fatalf("decodeCache of a cache just written: %v", err)
	}
	return parsed, cached, file
}

// fieldCounts guards compareTables: a field added to one of these types
// must be compared there too.
var fieldCounts = map[reflect.Type]int{
	reflect.TypeFor[Tokenizer]():  9,
	reflect.TypeFor[bpeModel]():   7,
	reflect.TypeFor[vocabIndex](): 4,
	reflect.TypeFor[mergeTable](): 3,
	reflect.TypeFor[addedVocab](): 4,
}

// compareTables reports every difference between two tokenizers' tables.
// Slices compare by contents (nil and empty are equal); the
// pre-tokenizer's scanners compare by function.
func compareTables(a, b *Tokenizer) []string {
	var diffs []string
	for typ, n := range fieldCounts {
		if typ.NumField() != n {
			diffs = append(diffs, fmt.Sprintf("%v has %d fields, compareTables knows %d: compare the new ones", typ, typ.NumField(), n))
		}
	}
	check := func(what string, equal bool) {
		if !equal {
			diffs = append(diffs, what)
		}
	}
	check("idBytes", slices.Equal(a.idBytes, b.idBytes))
	check("idKind", slices.Equal(a.idKind, b.idKind))
	check("oddSpelling", maps.Equal(a.oddSpelling, b.oddSpelling))
	check("oddID", maps.Equal(a.oddID, b.oddID))
	check("maxTokenBytes", a.maxTokenBytes == b.maxTokenBytes)
	check("stripsSpace", a.stripsSpace == b.stripsSpace)

	am, bm := &a.model, &b.model
	check("vocab.seed", am.vocab.seed == bm.vocab.seed)
	check("vocab.slots", slices.Equal(am.vocab.slots, bm.vocab.slots))
	check("vocab.mask", am.vocab.mask == bm.vocab.mask)
	// The index reads the keys of the ids it holds; the others may differ.
	check("len(vocab.keys)", len(am.vocab.keys) == len(bm.vocab.keys))
	for _, sl := range am.vocab.slots {
		if sl.id != 0 && int(sl.id) <= min(len(am.vocab.keys), len(bm.vocab.keys)) {
			check(fmt.Sprintf("vocab.keys[%d]", sl.id-1), am.vocab.keys[sl.id-1] == bm.vocab.keys[sl.id-1])
		}
	}
	check("merges.merges", slices.Equal(am.merges.merges, bm.merges.merges))
	check("merges.slots", slices.Equal(am.merges.slots, bm.merges.slots))
	check("merges.shift", am.merges.shift == bm.merges.shift)
	check("byteID", am.byteID == bm.byteID)
	for i := range am.byteMissing {
		check(fmt.Sprintf("byteMissing[%d]", i), slices.Equal(am.byteMissing[i], bm.byteMissing[i]))
	}
	check("unkID", am.unkID == bm.unkID)
	check("fuseUnk", am.fuseUnk == bm.fuseUnk)
	check("ignoreMerges", am.ignoreMerges == bm.ignoreMerges)

	check("added.byContent", maps.Equal(a.added.byContent, b.added.byContent))
	check("added.content", maps.Equal(a.added.content, b.added.content))
	for name, pair := range map[string][2]*tokenMatcher{"raw": {&a.added.raw, &b.added.raw}, "normalized": {&a.added.normalized, &b.added.normalized}} {
		check("added."+name, reflect.DeepEqual(pair[0], pair[1]))
	}

	check("len(pre)", len(a.pre) == len(b.pre))
	for i := range min(len(a.pre), len(b.pre)) {
		sa, aok := a.pre[i].(*splitStep)
		sb, bok := b.pre[i].(*splitStep)
		if aok && bok {
			check(fmt.Sprintf("pre[%d]", i), sa.literal == sb.literal && sa.behavior == sb.behavior && sa.invert == sb.invert &&
				reflect.ValueOf(sa.scan).Pointer() == reflect.ValueOf(sb.scan).Pointer())
		} else {
			check(fmt.Sprintf("pre[%d]", i), reflect.DeepEqual(a.pre[i], b.pre[i]))
		}
	}
	return diffs
}

// compareBehaviour encodes and decodes texts with both tokenizers and
// reads every id's token both ways.
func compareBehaviour(t *testing.T, a, b *Tokenizer, texts []string) {
	t.Helper()
	for _, text := range texts {
		for _, special := range []bool{true, false} {
			ida, _ := a.encode(text, special, -1)
			idb, _ := b.encode(text, special, -1)
			if !slices.Equal(ida, idb) {
				t.Fatalf("encode(%q, special=%v): parsed %v, cached %v", text, special, ida, idb)
			}
			da, erra := a.Decode(ida)
			db, errb := b.Decode(idb)
			if !bytes.Equal(da, db) || (erra == nil) != (errb == nil) {
				t.Fatalf("Decode(%v): parsed %q, %v; cached %q, %v", ida, da, erra, db, errb)
			}
		}
	}
	if a.VocabSize() != b.VocabSize() || a.MaxTokenBytes() != b.MaxTokenBytes() {
		t.Fatalf("VocabSize/MaxTokenBytes: parsed %d/%d, cached %d/%d", a.VocabSize(), a.MaxTokenBytes(), b.VocabSize(), b.MaxTokenBytes())
	}
	for id := range a.VocabSize() {
		ta, tb := a.TokenText(id), b.TokenText(id)
		ba, oka := a.TokenBytes(id)
		bb, okb := b.TokenBytes(id)
		if ta != tb || !bytes.Equal(ba, bb) || oka != okb || a.IsSpecial(id) != b.IsSpecial(id) {
			t.Fatalf("id %d: parsed %q %q %v, cached %q %q %v", id, ta, ba, oka, tb, bb, okb)
		}
		if ta == "" {
			continue
		}
		ia, oka := a.TokenID(ta)
		ib, okb := b.TokenID(tb)
		if ia != ib || oka != okb {
			t.Fatalf("TokenID(%q): parsed %d %v, cached %d %v", ta, ia, oka, ib, okb)
		}
	}
	if !reflect.DeepEqual(a.SpecialTokens(), b.SpecialTokens()) {
		t.Fatalf("SpecialTokens: parsed %v, cached %v", a.SpecialTokens(), b.SpecialTokens())
	}
}

// A tokenizer read from its cache has the tables of the one parsed from
// the JSON, and encodes and decodes alike.
func TestCacheMatchesParse(t *testing.T) {
	texts := cacheTexts(t)
	covered := map[string]bool{}
	for name, data := range cacheFixtures(t) {
		t.Run(name, func(t *testing.T) {
			parsed, cached, _ := parseAndCache(t, data)
			covered["odd spellings"] = covered["odd spellings"] || len(parsed.oddSpelling) > 0
			covered["no merges"] = covered["no merges"] || len(parsed.model.merges.slots) == 0
			covered["empty merges"] = covered["empty merges"] || len(parsed.model.merges.slots) > 0 && len(parsed.model.merges.merges) == 0
			covered["unknown token"] = covered["unknown token"] || parsed.model.unkID >= 0
			covered["byte fallback"] = covered["byte fallback"] || slices.ContainsFunc(parsed.model.byteMissing[:], func(ids []int32) bool { return len(ids) > 1 })
			for id, k := range parsed.idKind {
				if id < len(parsed.model.vocab.keys) && (k == kindAdded || k == kindSpecial) {
					covered["added token over a vocabulary id"] = true
				}
				covered["unused id"] = covered["unused id"] || k == kindNone
				covered["key longer than 8 bytes"] = covered["key longer than 8 bytes"] || len(parsed.idBytes[id]) > 8
			}
			if diffs := compareTables(parsed, cached); len(diffs) > 0 {
				t.Fatalf("the cached tables differ: %s", strings.Join(diffs, "; "))
			}
			compareBehaviour(t, parsed, cached, texts)
		})
	}
	for _, what := range []string{"odd spellings", "no merges", "empty merges", "unknown token", "byte fallback",
		"added token over a vocabulary id", "unused id", "key longer than 8 bytes"} {
		if !covered[what] {
			t.Errorf("no fixture has %s", what)
		}
	}
}

// The gpt-oss tokenizer from its cache: the same tables as the parse, and
// the Hugging Face reference ids of every vector.
func TestCacheGPTOSS(t *testing.T) {
	parsed, cached, _ := parseAndCache(t, gptOSSJSON(t))
	if diffs := compareTables(parsed, cached); len(diffs) > 0 {
		t.Fatalf("the cached tables differ: %s", strings.Join(diffs, "; "))
	}
	for _, v := range vectors(t) {
		if got := cached.Encode(v.Text); !slices.Equal(got, v.IDs) {
			t.Errorf("%s: cached Encode(%q)\n got %v\nwant %v", v.Name, v.Text, got, v.IDs)
		}
		if text, err := cached.Decode(v.IDs); err != nil || string(text) != v.Text {
			t.Errorf("%s: cached Decode = %q, %v; want %q", v.Name, text, err, v.Text)
		}
	}
	compareBehaviour(t, parsed, cached, cacheTexts(t))
}

// loadFixture writes data as a tokenizer.json in a new directory, sets
// MINERVA_CACHE_DIR to another, and returns the file's path and the
// path its cache file will have.
func loadFixture(t *testing.T, data []byte) (path, cache string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "tokenizer.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Setenv("MINERVA_CACHE_DIR", dir)
	return path, cachePath(dir, cacheKey(data))
}

// Load writes the cache on the first load and reads it on the next.
func TestLoadWritesAndReadsCache(t *testing.T) {
	fixtures := cacheFixtures(t)
	data := fixtures["fortune"]
	path, cache := loadFixture(t, data)
	first, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	written, err := os.ReadFile(cache)
	if err != nil {
		t.Fatalf("the first Load wrote no cache: %v", err)
	}
	if _, err := decodeCache(written, cacheKey(data)); err != nil {
		t.Fatalf("the cache Load wrote does not decode: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(cache)); len(entries) != 1 {
		t.Errorf("the cache directory holds %d files, want the cache file alone", len(entries))
	}
	second, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	// The cache keeps the first parse's hash seed, so the tables are equal.
	if diffs := compareTables(first, second); len(diffs) > 0 {
		t.Fatalf("the second Load differs from the first: %s", strings.Join(diffs, "; "))
	}

	// The second Load really reads the cache: plant the cache of another
	// tokenizer under this file's key, and Load gives that tokenizer.
	other := fixtures["added"]
	var kept parsedTables
	otherTok, err := parse(other, &kept)
	if err != nil {
		t.Fatal(err)
	}
	planted, err := encodeCache(cacheKey(data), otherTok, &kept)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cache, planted, 0o644); err != nil {
		t.Fatal(err)
	}
	third, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if diffs := compareTables(otherTok, third); len(diffs) > 0 {
		t.Fatalf("Load did not use the cache file: %s", strings.Join(diffs, "; "))
	}
}

// An edited tokenizer.json has another key, so it never reads the old cache.
func TestCacheEditedFile(t *testing.T) {
	data := cacheFixtures(t)["added"]
	path, cache := loadFixture(t, data)
	before, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Replace(data, []byte(`"content":"<ab>"`), []byte(`"content":"<AB>"`), 1)
	if bytes.Equal(edited, data) {
		t.Fatal("the edit did not apply")
	}
	if err := os.WriteFile(path, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	after, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := before.Encode("<AB>"); slices.Equal(got, []int{256}) {
		t.Fatalf("before the edit, Encode(<AB>) = %v", got)
	}
	if got, want := after.Encode("<AB>"), []int{256}; !slices.Equal(got, want) {
		t.Errorf("after the edit, Encode(<AB>) = %v, want %v: the old cache was read", got, want)
	}
	if _, err := os.Stat(cachePath(filepath.Dir(cache), cacheKey(edited))); err != nil {
		t.Errorf("no cache for the edited file: %v", err)
	}
}

// withCRC returns file with its checksum made right again, so that a
// change reaches the checks behind the checksum.
func withCRC(file []byte) []byte {
	file = bytes.Clone(file)
	if len(file) >= headerSize {
		binary.LittleEndian.PutUint32(file[crcOffset:], cacheCRC(file))
	}
	return file
}

// A damaged, foreign or stale cache file is an error for the decoder; Load
// then parses the JSON, gives the right tokenizer, and rewrites the file.
func TestBadCacheIgnored(t *testing.T) {
	fixtures := cacheFixtures(t)
	data := fixtures["fortune"]
	_, _, good := parseAndCache(t, data)
	key := cacheKey(data)
	section := func(i int) int { return int(binary.LittleEndian.Uint64(good[headerSize+16*i:])) }
	flip := func(off int) []byte {
		b := bytes.Clone(good)
		b[off] ^= 0x10
		return b
	}
	_, _, otherFile := parseAndCache(t, fixtures["added"])
	reference, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"empty":              {},
		"header only":        good[:headerSize],
		"truncated":          good[:len(good)/2],
		"one byte short":     good[:len(good)-1],
		"one byte more":      append(bytes.Clone(good), 0),
		"too large to map":   make([]byte, maxCacheSize(len(data))+1),
		"bit flip in arena":  flip(section(secArena) + 5),
		"bit flip in merges": flip(section(secMerges) + 100),
		"bit flip in header": flip(20),
		"bit flip in crc":    flip(crcOffset),
		"wrong magic":        withCRC(append([]byte("XXXXXXXX"), good[8:]...)),
		"wrong version": func() []byte {
			b := bytes.Clone(good)
			binary.LittleEndian.PutUint32(b[8:], cacheVersion+1)
			return withCRC(b)
		}(),
		"other tokenizer": otherFile,
		"other build": func() []byte {
			b := bytes.Clone(good)
			b[section(secMeta)+17] ^= 1 // a byte of the build stamp
			return withCRC(b)
		}(),
		"slot out of range": func() []byte {
			b := bytes.Clone(good)
			slots := section(secVocabSlots)
			for off := slots; ; off += 16 {
				if binary.LittleEndian.Uint32(b[off+8:]) != 0 {
					binary.LittleEndian.PutUint32(b[off+8:], 1<<30)
					break
				}
			}
			return withCRC(b)
		}(),
		"merge id out of range": func() []byte {
			b := bytes.Clone(good)
			binary.LittleEndian.PutUint32(b[section(secMerges)+8:], 1<<30)
			return withCRC(b)
		}(),
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeCache(bad, key); err == nil {
				t.Fatal("decodeCache accepted it")
			}
			path, cache := loadFixture(t, data)
			if err := os.WriteFile(cache, bad, 0o644); err != nil {
				t.Fatal(err)
			}
			tok, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			compareBehaviour(t, reference, tok, cacheTexts(t)[:40])
			rewritten, err := os.ReadFile(cache)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := decodeCache(rewritten, key); err != nil {
				t.Errorf("the cache was not rewritten: %v", err)
			}
		})
	}
}

// A cache directory that cannot be written, or the cache turned off,
// still loads (and with it off, nothing is written anywhere).
func TestCacheUnwritableOrOff(t *testing.T) {
	data := cacheFixtures(t)["fortune"]
	reference, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	path, _ := loadFixture(t, data)
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CACHE_HOME", filepath.Join(home, "cache"))
	for _, dir := range []string{filepath.Join(notADir, "cache"), "off"} {
		t.Setenv("MINERVA_CACHE_DIR", dir)
		for range 2 {
			tok, err := Load(path)
			if err != nil {
				t.Fatalf("MINERVA_CACHE_DIR=%s: %v", dir, err)
			}
			compareBehaviour(t, reference, tok, cacheTexts(t)[:40])
		}
	}
	if entries, _ := os.ReadDir(home); len(entries) != 0 {
		t.Errorf("with the cache off or unwritable, Load wrote into the user's cache directory: %v", entries)
	}
	if got := CacheDir(); got != "" {
		t.Errorf("CacheDir() with MINERVA_CACHE_DIR=off is %q, want \"\"", got)
	}
	t.Setenv("MINERVA_CACHE_DIR", "")
	if got, want := CacheDir(), filepath.Join(home, "cache", "minerva", "tokenizers"); got != want {
		t.Errorf("CacheDir() = %q, want %q", got, want)
	}
}

// FuzzCache: no bytes make the cache decoder panic or hang, and whatever
// it accepts can encode and decode. Each input is tried as it is and with
// its length and checksum made right, so that changes get past the
// checksum to the checks behind it.
//
//	go test ./runtime/tokenizer -run XXX -fuzz FuzzCache
func FuzzCache(f *testing.F) {
	var key [32]byte
	copy(key[:], "FuzzCache")
	// Not the fortune tokenizer: the fuzzer is slow on large inputs.
	for _, name := range []string{"added", "odd-spellings", "no-merges", "null-merges"} {
		data := cacheFixtures(f)[name]
		var kept parsedTables
		tok, err := parse(data, &kept)
		if err != nil {
			f.Fatal(err)
		}
		file, err := encodeCache(key, tok, &kept)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(file)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, file := range [][]byte{bytes.Clone(data), withCRC(fixLength(data))} {
			tok, err := decodeCache(file, key)
			if err != nil {
				continue
			}
			ids := tok.Encode("Hello, world! <s> 123 \xff\u00e9 abc xyzxyz")
			tok.EncodeOrdinary("<|end|> x")
			if _, err := tok.Decode(ids); err != nil {
				t.Fatalf("Decode of Encode's ids: %v", err)
			}
			for id := range min(tok.VocabSize(), 1000) {
				if text := tok.TokenText(id); text != "" {
					tok.TokenID(text)
				}
				tok.TokenBytes(id)
			}
			tok.SpecialTokens()
		}
	})
}

// fixLength sets a cache file's length field to its length.
func fixLength(file []byte) []byte {
	file = bytes.Clone(file)
	if len(file) >= headerSize {
		binary.LittleEndian.PutUint64(file[48:], uint64(len(file)))
	}
	return file
}

// TestCacheFormatUnchanged guards cacheVersion. A cache file holds tables
// that this build reads as its own; if a change to the code makes parse
// build other tables from the same file (or lays them out differently),
// a file written before the change must not be read after it, so
// cacheVersion must change too. testdata/cache-tables.golden holds the
// version and a hash of the tables each fixture gives (with a fixed hash
// seed); MINERVA_UPDATE_GOLDEN=1 rewrites it.
func TestCacheFormatUnchanged(t *testing.T) {
	defer func(f func() uint64) { newSeed = f }(newSeed)
	newSeed = func() uint64 { return 0x5eed }
	fixtures := cacheFixtures(t)
	var sb strings.Builder
	fmt.Fprintf(&sb, "format %d\n", cacheVersion)
	for _, name := range slices.Sorted(maps.Keys(fixtures)) {
		var kept parsedTables
		tok, err := parse(fixtures[name], &kept)
		if err != nil {
			t.Fatal(err)
		}
		c, err := newCacheFile(cacheKey(fixtures[name]), tok, &kept)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		h.Write(c.head)
		h.Write(c.sections[secMeta][:16]) // not the build stamp
		for i, s := range c.sections {
			if i != secMeta {
				h.Write(s)
			}
		}
		fmt.Fprintf(&sb, "%s %x\n", name, h.Sum(nil))
	}
	const path = "testdata/cache-tables.golden"
	if golden.Update() {
		if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) == sb.String() {
		return
	}
	if strings.HasPrefix(string(want), fmt.Sprintf("format %d\n", cacheVersion)) {
		t.Fatalf("the cached tables changed but cacheVersion (%d) did not, so a cache written before the change "+
			"would be read as this build's: bump cacheVersion in cache.go, then rerun with MINERVA_UPDATE_GOLDEN=1.\n got:\n%s\nwant:\n%s",
			cacheVersion, sb.String(), want)
	}
	t.Fatalf("cacheVersion changed: rerun with MINERVA_UPDATE_GOLDEN=1 to record the new tables.\n got:\n%s\nwant:\n%s", sb.String(), want)
}

// Loads of the same new file at once (as several processes might) all
// give the right tokenizer, and leave one valid cache file and no
// temporary ones.
func TestCacheConcurrentLoads(t *testing.T) {
	data := cacheFixtures(t)["fortune"]
	reference, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	path, cache := loadFixture(t, data)
	toks := make([]*Tokenizer, 4)
	errs := make([]error, len(toks))
	var wg sync.WaitGroup
	for i := range toks {
		wg.Go(func() { toks[i], errs[i] = Load(path) })
	}
	wg.Wait()
	for i, tok := range toks {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		compareBehaviour(t, reference, tok, cacheTexts(t)[:40])
	}
	entries, err := os.ReadDir(filepath.Dir(cache))
	if err != nil || len(entries) != 1 || entries[0].Name() != filepath.Base(cache) {
		t.Errorf("the cache directory holds %v (%v), want the cache file alone", entries, err)
	}
	written, err := os.ReadFile(cache)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeCache(written, cacheKey(data)); err != nil {
		t.Errorf("the cache file does not decode: %v", err)
	}
}
