// Package tokenizer loads Hugging Face tokenizer.json files for byte-level
// BPE models (gpt-oss, Llama 3, Qwen2, GPT-2 style) and turns text into
// token ids and back, giving the same ids as the Hugging Face tokenizers
// library.
//
// Encoding follows tokenizers' pipeline: added tokens (special or not) are
// found in the raw text first, anywhere, longest match first; the text
// between them is split by the pre-tokenizer; each piece is encoded with
// BPE on its UTF-8 bytes. No BOS or EOS token is added: the post_processor
// is ignored, and callers add such tokens themselves.
//
// A Tokenizer is immutable after loading and safe for concurrent use.
package tokenizer

import (
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Tokenizer encodes text to token ids and decodes ids to bytes.
type Tokenizer struct {
	model bpeModel
	pre   pipeline
	added addedVocab

	// Per id, indexed by id: the bytes the id decodes to, and what it is.
	idBytes []string
	idKind  []tokenKind
	// Vocabulary spellings that are not in the byte-level alphabet, by id
	// and by spelling; all other spellings are computed from idBytes.
	oddSpelling map[int32]string
	oddID       map[string]int32
	// maxTokenBytes is the most input bytes one token stands for.
	maxTokenBytes int
	// stripsSpace: an added token takes the whitespace around it
	// (lstrip/rstrip), so a token may stand for more input bytes.
	stripsSpace bool
}

type tokenKind uint8

const (
	kindNone    tokenKind = iota // no token has this id
	kindModel                    // a BPE vocabulary entry
	kindAdded                    // an added token that is not special
	kindSpecial                  // an added token marked special
)

// SpecialToken is an added token marked special in tokenizer.json.
type SpecialToken struct {
	ID   int
	Text string
}

// Encode returns the token ids of text. Added tokens, special ones
// included, are recognised wherever they occur. Text that is not valid
// UTF-8 is encoded byte for byte, so Decode(Encode(s)) == s for every s
// (given a token for each of the 256 bytes, which byte-level vocabularies
// have).
func (t *Tokenizer) Encode(text string) []int {
	ids, _ := t.encode(text, true, -1)
	return ids
}

// EncodeOrdinary is Encode with special tokens treated as plain text, for
// text from users that must not be able to inject control tokens (like
// tokenizers' encode_special_tokens). Non-special added tokens are still
// recognised.
func (t *Tokenizer) EncodeOrdinary(text string) []int {
	ids, _ := t.encode(text, false, -1)
	return ids
}

// TooManyTokensError is returned by EncodeLimit when the text has more
// tokens than the limit; encoding stopped there.
type TooManyTokensError struct{ Limit int }

func (e *TooManyTokensError) Error() string {
	return fmt.Sprintf("the text is more than %d tokens", e.Limit)
}

// EncodeLimit is Encode for text that must fit in limit tokens (a
// context): as soon as the count passes the limit it stops and returns a
// *TooManyTokensError (and no ids), instead of encoding the rest.
func (t *Tokenizer) EncodeLimit(text string, limit int) ([]int, error) {
	return t.encode(text, true, limit)
}

// EncodeOrdinaryLimit is EncodeOrdinary with EncodeLimit's limit.
func (t *Tokenizer) EncodeOrdinaryLimit(text string, limit int) ([]int, error) {
	return t.encode(text, false, limit)
}

// MaxTokenBytes is the most input bytes one token stands for (the longest
// token): text longer than n times it cannot encode to n tokens or fewer,
// which bounds what a reader of prompts has to read. (An added token with
// lstrip or rstrip also takes the whitespace around it; text that is
// mostly such whitespace can beat the bound.)
func (t *Tokenizer) MaxTokenBytes() int { return t.maxTokenBytes }

// encode encodes text; limit < 0 is no limit.
func (t *Tokenizer) encode(text string, allowSpecial bool, limit int) ([]int, error) {
	capacity := len(text)/4 + 1
	if limit >= 0 {
		// Text longer than this cannot fit: refuse it unread.
		if !t.stripsSpace && int64(len(text)) > int64(limit)*int64(t.maxTokenBytes) {
			return nil, &TooManyTokensError{Limit: limit}
		}
		capacity = min(capacity, limit+1)
	}
	ids := make([]int, 0, capacity)
	var pieces []string
	tooMany := false
	t.added.segments(text, allowSpecial, func(seg string, id int) bool {
		if id >= 0 {
			ids = append(ids, id)
		} else {
			pieces = t.pre.split(pieces[:0], seg)
			// Every piece is at least one token.
			if limit >= 0 && len(ids)+len(pieces) > limit {
				tooMany = true
				return false
			}
			for _, p := range pieces {
				ids = t.model.encodePiece(ids, p)
				if limit >= 0 && len(ids) > limit {
					break
				}
			}
		}
		tooMany = limit >= 0 && len(ids) > limit
		return !tooMany
	})
	if tooMany {
		return nil, &TooManyTokensError{Limit: limit}
	}
	return ids, nil
}

// TokenID returns the id of a token given as tokenizer.json spells it: an
// added token's content ("<|end|>"), or a vocabulary entry in the byte-level
// alphabet ("Ġthe" for " the").
func (t *Tokenizer) TokenID(token string) (int, bool) {
	if id, ok := t.added.byContent[token]; ok {
		return id, true
	}
	var buf [64]byte
	if b, ok := appendSpellingBytes(buf[:0], token); ok {
		if id := t.model.vocab.find(string(b)); id >= 0 {
			return int(id), true
		}
		return 0, false
	}
	id, ok := t.oddID[token]
	return int(id), ok
}

// TokenText returns the token as tokenizer.json spells it (the inverse of
// TokenID), or "" for an id with no token. TokenBytes gives what it decodes to.
func (t *Tokenizer) TokenText(id int) string {
	if id < 0 || id >= len(t.idKind) {
		return ""
	}
	switch t.idKind[id] {
	case kindAdded, kindSpecial:
		return t.added.content[id]
	case kindModel:
		if s, ok := t.oddSpelling[int32(id)]; ok {
			return s
		}
		return spellingOf(t.idBytes[id])
	}
	return ""
}

// TokenBytes returns the bytes id decodes to; ok is false for an id with
// no token.
func (t *Tokenizer) TokenBytes(id int) (b []byte, ok bool) {
	if id < 0 || id >= len(t.idKind) || t.idKind[id] == kindNone {
		return nil, false
	}
	return []byte(t.idBytes[id]), true
}

// IsSpecial reports whether id is an added token marked special.
func (t *Tokenizer) IsSpecial(id int) bool {
	return id >= 0 && id < len(t.idKind) && t.idKind[id] == kindSpecial
}

// VocabSize returns one more than the highest token id, counting added
// tokens. Ids below it that no token uses (rare) fail to decode.
func (t *Tokenizer) VocabSize() int {
	return len(t.idKind)
}

// SpecialTokens returns the special tokens in id order.
func (t *Tokenizer) SpecialTokens() []SpecialToken {
	var out []SpecialToken
	for id, kind := range t.idKind {
		if kind == kindSpecial {
			out = append(out, SpecialToken{ID: id, Text: t.added.content[id]})
		}
	}
	return out
}

// addedToken is one entry of tokenizer.json's added_tokens.
type addedToken struct {
	id                         int
	content                    string
	special                    bool
	singleWord, lstrip, rstrip bool
	normalized                 bool
}

// addedVocab finds added tokens in text like tokenizers' AddedVocabulary:
// first the tokens with normalized=false in the raw text, then those with
// normalized=true in the text between (there is no normalizer, so both
// passes see the same characters, but a match of the first pass wins).
type addedVocab struct {
	raw, normalized tokenMatcher
	byContent       map[string]int
	content         map[int]string
}

// tokenMatcher finds the leftmost-longest occurrence of a set of strings
// (aho-corasick's LeftmostLongest, as tokenizers uses). Candidates are
// grouped by first byte and sorted longest first.
type tokenMatcher struct {
	byFirst [256][]*addedToken
	n       int
}

func (m *tokenMatcher) add(tok *addedToken) {
	m.byFirst[tok.content[0]] = append(m.byFirst[tok.content[0]], tok)
	m.n++
}

// sortLongestFirst must run once all tokens are added.
func (m *tokenMatcher) sortLongestFirst() {
	for _, list := range m.byFirst {
		sort.SliceStable(list, func(a, b int) bool { return len(list[a].content) > len(list[b].content) })
	}
}

// find returns the leftmost-longest match at or after from.
func (m *tokenMatcher) find(s string, from int) (tok *addedToken, start int) {
	for i := from; i < len(s); i++ {
		for _, cand := range m.byFirst[s[i]] {
			if strings.HasPrefix(s[i:], cand.content) {
				return cand, i
			}
		}
	}
	return nil, -1
}

// segments calls fn for each piece of text in order: added tokens with
// their id, and the text between them with id -1.
// fn returns false to stop.
func (v *addedVocab) segments(text string, allowSpecial bool, fn func(seg string, id int) bool) {
	if text == "" {
		return
	}
	v.raw.split(text, allowSpecial, func(seg string, id int) bool {
		if id >= 0 {
			return fn(seg, id)
		}
		return v.normalized.split(seg, allowSpecial, fn)
	})
}

// split follows tokenizers' AddedVocabulary::find_matches, including its
// quirks: a match rejected by single_word, or skipped because it is
// special and specials are off, still consumes its text, and lstrip never
// reaches back into a previous match.
//
// fn returns false to stop; split then returns false.
func (m *tokenMatcher) split(text string, allowSpecial bool, fn func(seg string, id int) bool) bool {
	if m.n == 0 {
		return fn(text, -1)
	}
	done := 0 // end of the last emitted segment
	for from := 0; from < len(text); {
		tok, start := m.find(text, from)
		if tok == nil {
			break
		}
		stop := start + len(tok.content)
		from = stop
		if start < done || !allowSpecial && tok.special {
			continue
		}
		if tok.singleWord && (endsWithWord(text[:start]) || startsWithWord(text[stop:])) {
			continue
		}
		if tok.lstrip {
			start = max(len(strings.TrimRightFunc(text[:start], unicode.IsSpace)), done)
		}
		if tok.rstrip {
			stop = len(text) - len(strings.TrimLeftFunc(text[stop:], unicode.IsSpace))
		}
		if done < start && !fn(text[done:start], -1) {
			return false
		}
		if !fn(text[start:stop], tok.id) {
			return false
		}
		done = stop
	}
	if done < len(text) {
		return fn(text[done:], -1)
	}
	return true
}

// isWordChar is Rust regex's Unicode \w, which single_word uses:
// Alphabetic, marks, decimal digits, connector punctuation, Join_Control.
func isWordChar(r rune) bool {
	return unicode.IsLetter(r) || unicode.Is(unicode.Nl, r) || unicode.Is(unicode.Other_Alphabetic, r) ||
		unicode.IsMark(r) || unicode.Is(unicode.Nd, r) || unicode.Is(unicode.Pc, r) ||
		unicode.Is(unicode.Join_Control, r)
}

func endsWithWord(s string) bool {
	r, n := utf8.DecodeLastRuneInString(s)
	return n > 0 && isWordChar(r)
}

func startsWithWord(s string) bool {
	r, n := utf8.DecodeRuneInString(s)
	return n > 0 && isWordChar(r)
}
