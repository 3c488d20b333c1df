package tokenizer

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Decode returns the bytes the ids stand for, special tokens included as
// their text. A byte-level token can be part of a UTF-8 character, so
// arbitrary ids can give invalid UTF-8; the caller decides what to do with
// it (string() keeps the bytes; Hugging Face replaces them with U+FFFD).
func (t *Tokenizer) Decode(ids []int) ([]byte, error) {
	n := 0
	for i, id := range ids {
		if err := t.checkID(id); err != nil {
			return nil, fmt.Errorf("decode: ids[%d]: %w", i, err)
		}
		n += len(t.idBytes[id])
	}
	out := make([]byte, 0, n)
	for _, id := range ids {
		out = append(out, t.idBytes[id]...)
	}
	return out, nil
}

func (t *Tokenizer) checkID(id int) error {
	if id < 0 || id >= len(t.idKind) {
		return fmt.Errorf("token id %d is outside the vocabulary (ids 0..%d)", id, len(t.idKind)-1)
	}
	if t.idKind[id] == kindNone {
		return fmt.Errorf("token id %d is unused in this vocabulary", id)
	}
	return nil
}

// StreamDecoder decodes ids one at a time, as a model generates them. It
// returns only whole UTF-8 characters, holding back the first bytes of a
// character whose remaining bytes are in later tokens.
type StreamDecoder struct {
	tok     *Tokenizer
	pending []byte
}

// NewStreamDecoder returns a decoder with nothing pending.
func (t *Tokenizer) NewStreamDecoder() *StreamDecoder {
	return &StreamDecoder{tok: t}
}

// Next adds one token and returns the text that is now complete, possibly
// "". The result is always valid UTF-8: a byte that cannot be part of a
// valid character becomes U+FFFD, byte by byte as Go's []rune conversion
// does, so for valid output the concatenated results equal Decode's.
func (d *StreamDecoder) Next(id int) (string, error) {
	if err := d.tok.checkID(id); err != nil {
		return "", fmt.Errorf("decode: %w", err)
	}
	d.pending = append(d.pending, d.tok.idBytes[id]...)
	// Hold back a trailing character that may still complete: at most
	// three bytes, which utf8.FullRune says are a valid prefix.
	cut := len(d.pending)
	for k := 1; k <= 3 && k <= len(d.pending); k++ {
		tail := d.pending[len(d.pending)-k:]
		if !utf8.RuneStart(tail[0]) {
			continue
		}
		if !utf8.FullRune(tail) {
			cut = len(d.pending) - k
		}
		break
	}
	out := validText(d.pending[:cut])
	d.pending = append(d.pending[:0], d.pending[cut:]...)
	return out, nil
}

// Flush returns whatever is held back, as U+FFFD for each byte of the
// incomplete character, and resets the decoder.
func (d *StreamDecoder) Flush() string {
	out := validText(d.pending)
	d.pending = d.pending[:0]
	return out
}

// validText converts b to a string, replacing each byte that is not part
// of a valid UTF-8 encoding with U+FFFD.
func validText(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			sb.WriteRune(utf8.RuneError)
		} else {
			sb.Write(b[:n])
		}
		b = b[n:]
	}
	return sb.String()
}
