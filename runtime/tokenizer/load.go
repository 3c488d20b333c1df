package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"
)

// maxID bounds token ids so that a corrupt file cannot make the loader
// allocate per-id tables of gigabytes. Real vocabularies stay below 1M.
const maxID = 1 << 22

// Load reads a Hugging Face tokenizer.json file.
//
// Parsing a large tokenizer.json takes a few hundred milliseconds, so Load
// keeps the parsed tables in a cache file (see CacheDir) keyed by the
// SHA-256 of the file's bytes, and later loads of the same bytes read
// that instead. A cache file that is missing, damaged, or from another
// build of Minerva is ignored and rewritten; a failure to write one does
// not fail the load. A Tokenizer read from the cache uses the file in
// place, mapped read-only for the rest of the process.
func Load(path string) (*Tokenizer, error) {
	dir := CacheDir()
	var parseErr error
	t, err := readFile(path, func(data []byte) (*Tokenizer, error) {
		t, err := loadWithCache(data, dir)
		parseErr = err
		return t, err
	})
	switch {
	case parseErr != nil:
		return nil, fmt.Errorf("load tokenizer %s: %w", path, parseErr)
	case err != nil:
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	return t, nil
}

// Parse reads the contents of a Hugging Face tokenizer.json file.
func Parse(data []byte) (*Tokenizer, error) {
	t, err := parse(data, nil)
	if err != nil {
		return nil, fmt.Errorf("parse tokenizer.json: %w", err)
	}
	return t, nil
}

// The parts of tokenizer.json that matter for encoding and decoding.
// model.vocab and model.merges are read by vocabjson.go; the rest goes
// through encoding/json.
type fileJSON struct {
	AddedTokens  []addedTokenJSON `json:"added_tokens"`
	Normalizer   json.RawMessage  `json:"normalizer"`
	PreTokenizer json.RawMessage  `json:"pre_tokenizer"`
	Decoder      json.RawMessage  `json:"decoder"`
}

type modelJSON struct {
	Type                    string   `json:"type"`
	Dropout                 *float64 `json:"dropout"`
	UnkToken                *string  `json:"unk_token"`
	ContinuingSubwordPrefix *string  `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string  `json:"end_of_word_suffix"`
	FuseUnk                 bool     `json:"fuse_unk"`
	ByteFallback            bool     `json:"byte_fallback"`
	IgnoreMerges            bool     `json:"ignore_merges"`
}

type addedTokenJSON struct {
	ID         *int64  `json:"id"`
	Content    *string `json:"content"`
	SingleWord bool    `json:"single_word"`
	LStrip     bool    `json:"lstrip"`
	RStrip     bool    `json:"rstrip"`
	Normalized *bool   `json:"normalized"`
	Special    bool    `json:"special"`
}

// componentJSON holds the fields of every pre-tokenizer, normalizer and
// decoder type this package understands; which ones apply depends on Type.
type componentJSON struct {
	Type           string            `json:"type"`
	PreTokenizers  []json.RawMessage `json:"pretokenizers"`
	Normalizers    []json.RawMessage `json:"normalizers"`
	Pattern        *patternJSON      `json:"pattern"`
	Behavior       string            `json:"behavior"`
	Invert         bool              `json:"invert"`
	AddPrefixSpace *bool             `json:"add_prefix_space"`
	UseRegex       *bool             `json:"use_regex"`
}

type patternJSON struct {
	Regex  *string `json:"Regex"`
	String *string `json:"String"`
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

func parse(data []byte, keep *parsedTables) (*Tokenizer, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("the file is not valid UTF-8 (tokenizer.json files are JSON text)")
	}
	r := &jsonReader{data: data}
	top, modelFields, err := r.objectFields("tokenizer.json", "model")
	if err == nil {
		err = r.end()
	}
	if err != nil {
		return nil, err
	}
	if modelFields == nil {
		return nil, errors.New(`no "model" object: not a tokenizer.json file`)
	}
	if err := checkSyntax(top, "", "model"); err != nil {
		return nil, err
	}
	if err := checkSyntax(modelFields, "model.", "vocab", "merges"); err != nil {
		return nil, err
	}
	rest, modelRest := objectWithout(top, "model"), objectWithout(modelFields, "vocab", "merges")
	if keep != nil {
		keep.rest, keep.modelRest = rest, modelRest
	}
	return build(rest, modelRest, &jsonTables{vocabField: modelFields["vocab"], mergesField: modelFields["merges"], keep: keep})
}

// tableSource fills in the vocabulary and the merges, the large tables
// of a tokenizer: from the JSON (jsonTables) or from the cache
// (cacheTables, cache.go).
type tableSource interface {
	hasVocab() bool
	hasMerges() bool
	// vocab sets idBytes, idKind, the vocabulary index and the odd spellings.
	vocab(t *Tokenizer) error
	// mergeTable returns the merges; the vocabulary is loaded.
	mergeTable(t *Tokenizer) (mergeTable, error)
}

// build makes a Tokenizer from tokenizer.json's fields other than "model"
// (rest), model's fields other than "vocab" and "merges" (modelRest), both
// JSON objects, and the large tables from src.
func build(rest, modelRest []byte, src tableSource) (*Tokenizer, error) {
	var f fileJSON
	if err := json.Unmarshal(rest, &f); err != nil {
		return nil, err
	}
	var m modelJSON
	if err := json.Unmarshal(modelRest, &m); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	t := &Tokenizer{}
	if err := t.loadModel(&m, src); err != nil {
		return nil, err
	}
	if err := checkNormalizer(f.Normalizer); err != nil {
		return nil, err
	}
	if err := checkDecoder(f.Decoder); err != nil {
		return nil, err
	}
	if err := t.loadAddedTokens(f.AddedTokens); err != nil {
		return nil, err
	}
	pre, err := loadPreTokenizer(f.PreTokenizer)
	if err != nil {
		return nil, err
	}
	t.pre = pre
	// The most input bytes one token stands for: its bytes, an added
	// token's text, or one UTF-8 character (an unknown-token fallback).
	t.maxTokenBytes = utf8.UTFMax
	for _, b := range t.idBytes {
		t.maxTokenBytes = max(t.maxTokenBytes, len(b))
	}
	for _, c := range t.added.content {
		t.maxTokenBytes = max(t.maxTokenBytes, len(c))
	}
	return t, nil
}

// checkSyntax validates the fields that objectFields only delimited
// (except those named in skip, which have their own readers), so that
// syntax errors name the field and the offset in the file.
func checkSyntax(fields map[string]jsonField, prefix string, skip ...string) error {
	for name, f := range fields {
		if slices.Contains(skip, name) {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(f.value))
		var v any
		err := dec.Decode(&v)
		var syn *json.SyntaxError
		switch {
		case err == io.ErrUnexpectedEOF:
			return fmt.Errorf("%s%s: JSON syntax error at byte %d: incomplete value", prefix, name, f.offset+len(f.value))
		case errors.As(err, &syn):
			return fmt.Errorf("%s%s: JSON syntax error at byte %d: %v", prefix, name, f.offset+int(syn.Offset)-1, syn)
		case err != nil:
			return fmt.Errorf("%s%s: %w", prefix, name, err)
		case dec.InputOffset() != int64(len(f.value)):
			return fmt.Errorf("%s%s: JSON syntax error at byte %d: unexpected data after the value", prefix, name, f.offset+int(dec.InputOffset()))
		}
	}
	return nil
}

func (t *Tokenizer) loadModel(m *modelJSON, src tableSource) error {
	if m.Type == "" && !src.hasMerges() {
		return errors.New("model.type is missing; only byte-level BPE models are supported")
	}
	if m.Type != "BPE" && m.Type != "" {
		return fmt.Errorf("model.type is %q; only byte-level BPE models are supported", m.Type)
	}
	if m.Dropout != nil && *m.Dropout != 0 {
		return fmt.Errorf("model.dropout is %v; BPE dropout is a training feature and is not supported (set it to null)", *m.Dropout)
	}
	if m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "" {
		return fmt.Errorf("model.continuing_subword_prefix %q is not supported by byte-level BPE", *m.ContinuingSubwordPrefix)
	}
	if m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "" {
		return fmt.Errorf("model.end_of_word_suffix %q is not supported by byte-level BPE", *m.EndOfWordSuffix)
	}
	if !src.hasVocab() {
		return errors.New("model.vocab is missing")
	}
	model := &t.model
	model.ignoreMerges = m.IgnoreMerges
	model.fuseUnk = m.FuseUnk
	model.unkID = -1
	if err := src.vocab(t); err != nil {
		return err
	}

	// Bytes without a token of their own.
	if m.UnkToken != nil {
		id, ok := t.TokenID(*m.UnkToken)
		if !ok {
			return fmt.Errorf("model.unk_token %q is not in model.vocab", *m.UnkToken)
		}
		model.unkID = int32(id)
	}
	for b := 0; b < 256; b++ {
		model.byteID[b] = -1
		if id := model.vocab.find(string([]byte{byte(b)})); id >= 0 {
			model.byteID[b] = id
			continue
		}
		model.byteMissing[b] = t.missingByte(byte(b), m.ByteFallback)
	}

	merges, err := src.mergeTable(t)
	if err != nil {
		return err
	}
	model.merges = merges
	return nil
}

// jsonTables reads the vocabulary and the merges from tokenizer.json.
type jsonTables struct {
	vocabField, mergesField jsonField
	keep                    *parsedTables // if not nil, what the cache needs
}

// The model's type may be left out only when there is a "merges" field.
func (j *jsonTables) hasMerges() bool { return len(j.mergesField.value) != 0 }
func (j *jsonTables) hasVocab() bool  { return !isNull(j.vocabField.value) }

func (j *jsonTables) mergeTable(t *Tokenizer) (mergeTable, error) {
	return t.scanMerges(j.mergesField)
}

func (j *jsonTables) vocab(t *Tokenizer) error {
	model := &t.model
	// The vocabulary: spellings in the byte-level alphabet are keyed by the
	// bytes they stand for; any others can only be decoded. All keys share
	// one allocation, which spares the garbage collector 200k objects.
	type entry struct{ id, off, end int32 }
	var odd []entry
	// Each spelling is one quoted string: counting quotes sizes the list
	// once (appending 201k entries would allocate it five times over).
	entries := make([]entry, 0, bytes.Count(j.vocabField.value, []byte{'"'})/2)
	arena := make([]byte, 0, len(j.vocabField.value)/2)
	err := scanVocab(j.vocabField.reader(), func(spelling []byte, id int64) error {
		if id < 0 || id >= maxID {
			return fmt.Errorf("model.vocab: %q has id %d; ids must be in 0..%d", spelling, id, maxID-1)
		}
		if len(arena)+len(spelling) >= 1<<31 {
			return errors.New("model.vocab is too large")
		}
		start := len(arena)
		var ok bool
		if arena, ok = appendSpellingBytes(arena, string(spelling)); ok {
			entries = append(entries, entry{int32(id), int32(start), int32(len(arena))})
		} else {
			arena = append(arena[:start], spelling...)
			odd = append(odd, entry{int32(id), int32(start), int32(len(arena))})
		}
		return nil
	})
	if err != nil {
		return err
	}
	// The arena is not written again: the keys alias it rather than copy it.
	keys := unsafe.String(unsafe.SliceData(arena), len(arena))
	highest := int32(-1)
	for _, e := range entries {
		highest = max(highest, e.id)
	}
	for _, e := range odd {
		highest = max(highest, e.id)
	}
	t.idBytes = make([]string, highest+1)
	t.idKind = make([]tokenKind, highest+1)
	model.vocab = newVocabIndex(len(entries))
	model.vocab.keys = t.idBytes
	claim := func(id int32, spelling func() string) error {
		if t.idKind[id] != kindNone {
			return fmt.Errorf("model.vocab: id %d is given to both %q and %q", id, t.TokenText(int(id)), spelling())
		}
		t.idKind[id] = kindModel
		return nil
	}
	for _, e := range entries {
		key := keys[e.off:e.end]
		if err := claim(e.id, func() string { return spellingOf(key) }); err != nil {
			return err
		}
		t.idBytes[e.id] = key
		if model.vocab.insert(e.id) >= 0 {
			return fmt.Errorf("model.vocab: %q appears twice", spellingOf(key))
		}
	}
	if len(odd) > 0 {
		t.oddSpelling = make(map[int32]string, len(odd))
		t.oddID = make(map[string]int32, len(odd))
	}
	for _, e := range odd {
		spelling := keys[e.off:e.end]
		if err := claim(e.id, func() string { return spelling }); err != nil {
			return err
		}
		if _, dup := t.oddID[spelling]; dup {
			return fmt.Errorf("model.vocab: %q appears twice", spelling)
		}
		t.oddSpelling[e.id] = spelling
		t.oddID[spelling] = e.id
		t.idBytes[e.id] = spelling // the ByteLevel decoder emits it unchanged
	}
	if j.keep != nil {
		// The added tokens change idKind; the cache holds the vocabulary's.
		j.keep.kinds = slices.Clone(t.idKind)
	}
	return nil
}

// missingByte is what tokenizers' BPE::merge_word does with a character
// that has no token: byte_fallback tokens <0xXX> for each UTF-8 byte of
// the character (here the byte's stand-in), else the unknown token, else
// nothing.
func (t *Tokenizer) missingByte(b byte, byteFallback bool) []int32 {
	if byteFallback {
		var ids []int32
		for _, c := range []byte(string(byteToRune[b])) {
			id, ok := t.TokenID(fmt.Sprintf("<0x%02X>", c))
			if !ok {
				ids = nil
				break
			}
			ids = append(ids, int32(id))
		}
		if ids != nil {
			return ids
		}
	}
	if t.model.unkID >= 0 {
		return []int32{t.model.unkID}
	}
	return nil
}

// scanMerges builds the merge table. A merge's rank is its index; as in
// tokenizers, a pair listed twice keeps its last rank. Looking up the
// tokens of 446k merges dominates loading, so it runs in parallel: a
// first pass checks the list and notes where each merge starts (4 bytes a
// merge rather than two slices), and the workers read the merges again
// from there.
func (t *Tokenizer) scanMerges(field jsonField) (mergeTable, error) {
	raw := field.value
	if isNull(raw) {
		return mergeTable{}, nil
	}
	if len(raw) >= 1<<32 {
		return mergeTable{}, errors.New("model.merges is too large")
	}
	// Size the list up front: each merge has two quotes ("a b") or four
	// (["a", "b"]).
	quotes := bytes.Count(raw, []byte{'"'})
	if r := (&jsonReader{data: raw}); r.consume('[') && r.consume('[') {
		quotes /= 2
	}
	starts := make([]uint32, 0, quotes/2)
	err := scanMergeList(field.reader(), func(start int, _, _ []byte) error {
		if len(starts) >= 1<<31-1 {
			return errors.New("model.merges: too many merges")
		}
		starts = append(starts, uint32(start))
		return nil
	})
	if err != nil {
		return mergeTable{}, err
	}
	table := mergeTable{merges: make([]mergeEntry, len(starts))}
	workers := min(runtime.GOMAXPROCS(0), 1+len(starts)/20000)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*len(starts)/workers, (w+1)*len(starts)/workers
		wg.Go(func() {
			r := mergeResolver{t: t, prev: -1}
			in := field.reader()
			for rank := lo; rank < hi; rank++ {
				in.pos = int(starts[rank])
				a, b, err := in.mergeEntry()
				if err != nil { // checked by the first pass
					errs[w] = fmt.Errorf("model.merges[%d]: %w", rank, err)
					return
				}
				left, right, merged, err := r.resolve(a, b)
				if err != nil {
					errs[w] = fmt.Errorf("model.merges[%d]: %w", rank, err)
					return
				}
				table.merges[rank] = mergeEntry{left, right, merged}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return mergeTable{}, err
		}
	}
	table.index()
	return table, nil
}

// mergeResolver turns the two spellings of a merge into ids. It reads the
// finished vocabulary only, so several can run at once.
type mergeResolver struct {
	t                  *Tokenizer
	bufA, bufB, joined []byte
	prev, next         int32
}

func (r *mergeResolver) resolve(a, b []byte) (ida, idb, merged int32, err error) {
	t := r.t
	ida, ok := t.spellingID(&r.bufA, a)
	if !ok {
		return 0, 0, 0, fmt.Errorf("%q is not in model.vocab", a)
	}
	idb, ok = t.spellingID(&r.bufB, b)
	if !ok {
		return 0, 0, 0, fmt.Errorf("%q is not in model.vocab", b)
	}
	if t.oddSpelling[ida] != "" || t.oddSpelling[idb] != "" {
		r.joined = append(append(r.joined[:0], a...), b...)
		if id, ok := t.spellingID(&r.bufA, r.joined); ok {
			return ida, idb, id, nil
		}
		return 0, 0, 0, fmt.Errorf("%q + %q is not in model.vocab", a, b)
	}
	r.joined = append(append(r.joined[:0], t.idBytes[ida]...), t.idBytes[idb]...)
	// Vocabularies from BPE training number merged tokens in merge order,
	// so the merged token is nearly always the previous merge's, the one
	// after it, or the next new id. Checking those first halves the cost;
	// the map lookup remains the fallback.
	merged = -1
	for _, id := range [3]int32{r.prev + 1, r.prev, r.next} {
		if id >= 0 && int(id) < len(t.idBytes) && t.idKind[id] == kindModel && t.idBytes[id] == string(r.joined) {
			merged = id
			break
		}
	}
	if merged < 0 {
		merged = t.model.vocab.find(string(r.joined))
		if merged < 0 {
			return 0, 0, 0, fmt.Errorf("%q + %q is not in model.vocab", a, b)
		}
	}
	r.prev, r.next = merged, max(r.next, merged+1)
	return ida, idb, merged, nil
}

// spellingID looks up a vocabulary spelling without allocating in the
// common case; buf is scratch space.
func (t *Tokenizer) spellingID(buf *[]byte, spelling []byte) (int32, bool) {
	b, ok := appendSpellingBytes((*buf)[:0], string(spelling))
	*buf = b
	if ok {
		id := t.model.vocab.find(string(b))
		return id, id >= 0
	}
	id, found := t.oddID[string(spelling)]
	return id, found
}

func (t *Tokenizer) loadAddedTokens(list []addedTokenJSON) error {
	t.added.byContent = map[string]int{}
	t.added.content = map[int]string{}
	// Grow the per-id tables once to the highest added id, rather than
	// appending token by token (for gpt-oss, 3 MB copied for each
	// reallocation).
	highest := len(t.idKind) - 1
	for _, a := range list {
		if a.ID != nil && a.Content != nil && *a.Content != "" && *a.ID >= 0 && *a.ID < maxID {
			highest = max(highest, int(*a.ID))
		}
	}
	if n := highest + 1 - len(t.idKind); n > 0 {
		t.idKind = append(t.idKind, make([]tokenKind, n)...)
		t.idBytes = append(t.idBytes, make([]string, n)...)
	}
	sharedCopied := false
	for i, a := range list {
		if a.ID == nil || a.Content == nil {
			return fmt.Errorf("added_tokens[%d]: needs both \"id\" and \"content\"", i)
		}
		id, content := *a.ID, *a.Content
		if id < 0 || id >= maxID {
			return fmt.Errorf("added_tokens[%d] %q: id %d must be in 0..%d", i, content, id, maxID-1)
		}
		if content == "" {
			continue // tokenizers ignores empty added tokens
		}
		if prev, dup := t.added.byContent[content]; dup && prev != int(id) {
			return fmt.Errorf("added_tokens[%d]: %q is listed with ids %d and %d", i, content, prev, id)
		}
		for int(id) >= len(t.idKind) {
			t.idKind = append(t.idKind, kindNone)
			t.idBytes = append(t.idBytes, "")
		}
		if old, dup := t.added.content[int(id)]; dup && old != content {
			return fmt.Errorf("added_tokens[%d]: id %d is given to both %q and %q", i, id, old, content)
		}
		tok := &addedToken{
			id:         int(id),
			content:    content,
			special:    a.Special,
			singleWord: a.SingleWord,
			lstrip:     a.LStrip,
			rstrip:     a.RStrip,
			// tokenizers' default: special tokens are not normalized.
			normalized: !a.Special,
		}
		if a.Normalized != nil {
			tok.normalized = *a.Normalized
		}
		t.stripsSpace = t.stripsSpace || tok.lstrip || tok.rstrip
		t.added.byContent[content] = tok.id
		t.added.content[tok.id] = content
		if int(id) < len(t.model.vocab.keys) && t.idKind[id] == kindModel && !sharedCopied {
			// The vocabulary index reads its keys from idBytes; an added
			// token that takes over a vocabulary id must not change them.
			t.idBytes = slices.Clone(t.idBytes)
			sharedCopied = true
		}
		t.idKind[id] = kindAdded
		if tok.special {
			t.idKind[id] = kindSpecial
		}
		// Decoding goes through the ByteLevel decoder like any token.
		if b, ok := appendSpellingBytes(nil, content); ok {
			t.idBytes[id] = string(b)
		} else {
			t.idBytes[id] = content
		}
		if tok.normalized {
			t.added.normalized.add(tok)
		} else {
			t.added.raw.add(tok)
		}
	}
	t.added.raw.sortLongestFirst()
	t.added.normalized.sortLongestFirst()
	return nil
}

func checkNormalizer(raw json.RawMessage) error {
	if isNull(raw) {
		return nil
	}
	var c componentJSON
	if err := json.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("normalizer: %w", err)
	}
	if c.Type == "Sequence" && len(c.Normalizers) == 0 {
		return nil
	}
	return fmt.Errorf("normalizer: type %q is not supported; only tokenizers without a normalizer (null) are", c.Type)
}

func checkDecoder(raw json.RawMessage) error {
	if isNull(raw) {
		return errors.New("decoder: missing; only the ByteLevel decoder is supported")
	}
	var c componentJSON
	if err := json.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("decoder: %w", err)
	}
	if c.Type != "ByteLevel" {
		return fmt.Errorf("decoder: type %q is not supported; only ByteLevel is", c.Type)
	}
	return nil
}

// loadPreTokenizer builds the pre-tokenizer pipeline. It must end with a
// ByteLevel step: the model's vocabulary is byte-level, and steps after
// ByteLevel would see its stand-in characters rather than the text.
func loadPreTokenizer(raw json.RawMessage) (pipeline, error) {
	if isNull(raw) {
		return nil, errors.New("pre_tokenizer: missing; byte-level BPE needs a ByteLevel pre-tokenizer")
	}
	var steps pipeline
	sawByteLevel := false
	var add func(raw json.RawMessage, path string) error
	add = func(raw json.RawMessage, path string) error {
		var c componentJSON
		if err := json.Unmarshal(raw, &c); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if sawByteLevel {
			return fmt.Errorf("%s: %s comes after ByteLevel; ByteLevel must be the last pre-tokenizer", path, c.Type)
		}
		switch c.Type {
		case "Sequence":
			for i, sub := range c.PreTokenizers {
				if err := add(sub, fmt.Sprintf("%s.pretokenizers[%d]", path, i)); err != nil {
					return err
				}
			}
		case "Split":
			step, err := loadSplit(&c, path)
			if err != nil {
				return err
			}
			steps = append(steps, step)
		case "ByteLevel":
			sawByteLevel = true
			b := &byteLevelStep{addPrefixSpace: true, useRegex: true} // tokenizers' defaults
			if c.AddPrefixSpace != nil {
				b.addPrefixSpace = *c.AddPrefixSpace
			}
			if c.UseRegex != nil {
				b.useRegex = *c.UseRegex
			}
			if b.addPrefixSpace || b.useRegex {
				steps = append(steps, b)
			}
		default:
			return fmt.Errorf("%s: type %q is not supported; supported pre-tokenizers are Sequence, Split and ByteLevel", path, c.Type)
		}
		return nil
	}
	if err := add(raw, "pre_tokenizer"); err != nil {
		return nil, err
	}
	if !sawByteLevel {
		return nil, errors.New("pre_tokenizer: no ByteLevel step; only byte-level BPE tokenizers are supported")
	}
	return steps, nil
}

func loadSplit(c *componentJSON, path string) (*splitStep, error) {
	behavior, ok := splitBehaviors[c.Behavior]
	if !ok {
		names := make([]string, 0, len(splitBehaviors))
		for n := range splitBehaviors {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("%s: Split behavior %q is not one of %s", path, c.Behavior, strings.Join(names, ", "))
	}
	step := &splitStep{behavior: behavior, invert: c.Invert}
	switch {
	case c.Pattern == nil:
		return nil, fmt.Errorf("%s: Split has no pattern", path)
	case c.Pattern.String != nil:
		if *c.Pattern.String == "" {
			return nil, fmt.Errorf("%s: Split pattern is the empty string", path)
		}
		step.literal = *c.Pattern.String
	case c.Pattern.Regex != nil:
		scan, ok := knownPatterns[*c.Pattern.Regex]
		if !ok {
			return nil, fmt.Errorf("%s: Split regex %s is not supported. Regex patterns are implemented as exact "+
				"scanners for the patterns of gpt-oss/o200k, Llama 3/cl100k, Qwen2 and GPT-2 only; see tokenizer.PatternO200k "+
				"and the other Pattern constants", path, strconv.Quote(*c.Pattern.Regex))
		}
		step.scan = scan
	default:
		return nil, fmt.Errorf(`%s: Split pattern must be {"Regex": ...} or {"String": ...}`, path)
	}
	return step, nil
}
