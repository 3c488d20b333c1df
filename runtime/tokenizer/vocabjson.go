package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// A small JSON reader for the structure of tokenizer.json. The file is
// nearly all model.vocab and model.merges (27 MB for gpt-oss), and
// encoding/json spends over a third of a second just validating and
// skipping them. This reader finds the top-level fields and the model's
// fields, reads vocab and merges itself, and hands the small remaining
// parts to encoding/json. It validates what it reads and reports the byte
// offset of syntax errors.

type jsonReader struct {
	data []byte
	pos  int
	base int // offset of data in the file
}

func (r *jsonReader) skipSpace() {
	for r.pos < len(r.data) {
		if c := r.data[r.pos]; c > ' ' || (c != ' ' && c != '\n' && c != '\t' && c != '\r') {
			return
		}
		r.pos++
	}
}

// consume skips white space and then c, if c is next.
func (r *jsonReader) consume(c byte) bool {
	r.skipSpace()
	if r.pos < len(r.data) && r.data[r.pos] == c {
		r.pos++
		return true
	}
	return false
}

// str reads a string. The result aliases the input unless the string has
// escapes.
func (r *jsonReader) str() ([]byte, error) {
	r.skipSpace()
	if r.pos >= len(r.data) || r.data[r.pos] != '"' {
		return nil, r.errorAt(r.pos, "expected a string")
	}
	quote := r.pos
	for i := quote + 1; i < len(r.data); i++ {
		switch c := r.data[i]; {
		case c == '"':
			r.pos = i + 1
			return r.data[quote+1 : i], nil
		case c == '\\':
			return r.escapedStr(quote)
		case c < 0x20:
			return nil, r.errorAt(i, "control character in string")
		}
	}
	return nil, r.errorAt(quote, "unterminated string")
}

func (r *jsonReader) errorAt(pos int, msg string) error {
	return fmt.Errorf("JSON syntax error at byte %d: %s", r.base+pos, msg)
}

// escapedStr reads a string with escapes; they are rare enough (`\"` and
// `\\` tokens) to leave to encoding/json.
func (r *jsonReader) escapedStr(quote int) ([]byte, error) {
	for i := quote + 1; i < len(r.data); i++ {
		switch r.data[i] {
		case '\\':
			i++
		case '"':
			var s string
			if err := json.Unmarshal(r.data[quote:i+1], &s); err != nil {
				return nil, r.errorAt(quote, err.Error())
			}
			r.pos = i + 1
			return []byte(s), nil
		}
	}
	return nil, r.errorAt(quote, "unterminated string")
}

// id reads a token id: a non-negative integer.
func (r *jsonReader) id() (int64, error) {
	r.skipSpace()
	start := r.pos
	var n int64
	for r.pos < len(r.data) && '0' <= r.data[r.pos] && r.data[r.pos] <= '9' {
		n = n*10 + int64(r.data[r.pos]-'0')
		if n >= maxID {
			n = maxID // reported as out of range by the caller
		}
		r.pos++
	}
	if r.pos == start || r.pos < len(r.data) && bytes.IndexByte([]byte(".eE-+"), r.data[r.pos]) >= 0 {
		end := r.pos
		for end < len(r.data) && bytes.IndexByte([]byte(",}] \t\r\n"), r.data[end]) < 0 {
			end++
		}
		return 0, fmt.Errorf("id %s is not a non-negative integer", r.data[start:end])
	}
	return n, nil
}

func (r *jsonReader) end() error {
	r.skipSpace()
	if r.pos != len(r.data) {
		return r.errorAt(r.pos, "unexpected data after the value")
	}
	return nil
}

// jsonField is one member of an object: its key and its raw value.
type jsonField struct {
	rawKey []byte // with the quotes, as written
	value  []byte
	offset int // of value in the file, for error messages
}

// reader returns a reader for the value that reports offsets in the file.
func (f jsonField) reader() *jsonReader {
	return &jsonReader{data: f.value, base: f.offset}
}

// objectFields reads the object at the reader's position, returning its
// members by key (the last one wins for a repeated key, as with
// encoding/json). Values are only delimited here; whoever reads a value
// validates it. If nested names a member holding an object, that object's
// members are returned too, found in the same pass.
func (r *jsonReader) objectFields(what, nested string) (fields, nestedFields map[string]jsonField, err error) {
	if !r.consume('{') {
		return nil, nil, fmt.Errorf("%s must be a JSON object", what)
	}
	fields = map[string]jsonField{}
	if r.consume('}') {
		return fields, nil, nil
	}
	for {
		r.skipSpace()
		keyStart := r.pos
		key, err := r.str()
		if err != nil {
			return nil, nil, err
		}
		f := jsonField{rawKey: r.data[keyStart:r.pos]}
		name := string(key)
		if !r.consume(':') {
			return nil, nil, r.errorAt(r.pos, "expected ':'")
		}
		r.skipSpace()
		valueStart := r.pos
		if name == nested && nested != "" {
			sub := &jsonReader{data: r.data, pos: r.pos, base: r.base}
			nestedFields, _, err = sub.objectFields(nested, "")
			r.pos = sub.pos
		} else {
			err = r.skipFast()
		}
		if err != nil {
			return nil, nil, err
		}
		f.value = r.data[valueStart:r.pos]
		f.offset = r.base + valueStart
		fields[name] = f
		if r.consume(',') {
			continue
		}
		if r.consume('}') {
			return fields, nestedFields, nil
		}
		return nil, nil, r.errorAt(r.pos, "expected ',' or '}'")
	}
}

// skipFast finds the end of the value at the reader's position by
// matching brackets outside strings, without checking the grammar.
func (r *jsonReader) skipFast() error {
	r.skipSpace()
	start, depth := r.pos, 0
	for r.pos < len(r.data) {
		switch c := r.data[r.pos]; c {
		case '"':
			// Jump to the closing quote: the next quote not escaped by an
			// odd number of backslashes.
			from := r.pos + 1
			for {
				k := bytes.IndexByte(r.data[from:], '"')
				if k < 0 {
					return r.errorAt(r.pos, "unterminated string")
				}
				q := from + k
				slashes := 0
				for q-1-slashes > r.pos && r.data[q-1-slashes] == '\\' {
					slashes++
				}
				from = q + 1
				if slashes%2 == 0 {
					break
				}
			}
			r.pos = from
			if depth == 0 {
				return nil
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				if r.pos > start {
					return nil // the end of a number or literal
				}
				return r.errorAt(r.pos, fmt.Sprintf("unexpected %q", c))
			}
			depth--
			if depth == 0 {
				r.pos++
				return nil
			}
		case ',', ':', ' ', '\t', '\n', '\r':
			if depth == 0 {
				if r.pos == start {
					return r.errorAt(r.pos, "expected a value")
				}
				return nil
			}
		}
		r.pos++
	}
	if depth > 0 || r.pos == start {
		return r.errorAt(r.pos, "unexpected end of input")
	}
	return nil
}

// objectWithout re-assembles an object from fields, leaving out some keys,
// for encoding/json to decode the small remainder. The keys are sorted,
// so that the tokenizer cache (which keeps the result) is the same bytes
// for the same file.
func objectWithout(fields map[string]jsonField, omit ...string) []byte {
	out := []byte{'{'}
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		f := fields[name]
		if slices.Contains(omit, name) {
			continue
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, f.rawKey...)
		out = append(out, ':')
		out = append(out, f.value...)
	}
	return append(out, '}')
}

// scanVocab reads model.vocab, an object mapping spellings to ids.
func scanVocab(r *jsonReader, fn func(spelling []byte, id int64) error) error {
	if !r.consume('{') {
		return errors.New(`model.vocab must be an object {"token": id, ...}`)
	}
	if r.consume('}') {
		return r.end()
	}
	for {
		key, err := r.str()
		if err != nil {
			return fmt.Errorf("model.vocab: %w", err)
		}
		if !r.consume(':') {
			return fmt.Errorf("model.vocab: %w", r.errorAt(r.pos, "expected ':'"))
		}
		id, err := r.id()
		if err != nil {
			return fmt.Errorf("model.vocab[%q]: %w", key, err)
		}
		if err := fn(key, id); err != nil {
			return err
		}
		if r.consume(',') {
			continue
		}
		if r.consume('}') {
			return r.end()
		}
		return fmt.Errorf("model.vocab: %w", r.errorAt(r.pos, "expected ',' or '}'"))
	}
}

// scanMergeList reads model.merges: an array whose entries are either
// "a b" strings (the older form) or ["a", "b"] pairs. fn gets each
// entry's position in r's data too, for mergeEntry to read it again.
func scanMergeList(r *jsonReader, fn func(start int, a, b []byte) error) error {
	if !r.consume('[') {
		return errors.New(`model.merges must be an array of "a b" strings or ["a", "b"] pairs`)
	}
	if r.consume(']') {
		return r.end()
	}
	for i := 0; ; i++ {
		r.skipSpace()
		start := r.pos
		a, b, err := r.mergeEntry()
		if err != nil {
			return fmt.Errorf("model.merges[%d]: %w", i, err)
		}
		if err := fn(start, a, b); err != nil {
			return err
		}
		if r.consume(',') {
			continue
		}
		if r.consume(']') {
			return r.end()
		}
		return fmt.Errorf("model.merges[%d]: %w", i, r.errorAt(r.pos, "expected ',' or ']'"))
	}
}

// mergeEntry reads one entry of model.merges.
func (r *jsonReader) mergeEntry() (a, b []byte, err error) {
	if r.consume('[') {
		if a, err = r.str(); err != nil {
			return nil, nil, err
		}
		if !r.consume(',') {
			return nil, nil, r.errorAt(r.pos, "a pair must have two strings")
		}
		if b, err = r.str(); err != nil {
			return nil, nil, err
		}
		if !r.consume(']') {
			return nil, nil, r.errorAt(r.pos, "a pair must have two strings")
		}
		return a, b, nil
	}
	s, err := r.str()
	if err != nil {
		return nil, nil, err
	}
	sp := bytes.IndexByte(s, ' ')
	if sp < 0 || bytes.IndexByte(s[sp+1:], ' ') >= 0 {
		return nil, nil, fmt.Errorf("%q is not two tokens separated by one space", s)
	}
	return s[:sp], s[sp+1:], nil
}
