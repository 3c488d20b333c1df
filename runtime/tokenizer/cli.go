package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// TokenizeOptions are the flags of `minerva tokenize`.
type TokenizeOptions struct {
	// JSONL: one JSON value per input line, one result per output line.
	JSONL bool
	// Decode: the input is token ids and the output text.
	Decode bool
}

// RunTokenize implements `minerva tokenize --tokenizer FILE [--jsonl] [--decode]`.
//
//	(default)         all of in is one text; out gets its ids as a JSON array and a newline.
//	--jsonl           each line of in is a JSON string; each output line is the JSON array of its ids.
//	--decode          in is one JSON array of ids; out gets the decoded bytes exactly.
//	--decode --jsonl  each line is a JSON array of ids; each output line is the decoded text as a
//	                  JSON string (bytes that are not valid UTF-8 become U+FFFD, as JSON requires).
//
// Special tokens are recognised in the input text and written out as their
// text. Errors name the input line.
func RunTokenize(in io.Reader, out io.Writer, tok *Tokenizer, opts TokenizeOptions) error {
	w := bufio.NewWriter(out)
	var err error
	switch {
	case opts.JSONL:
		err = tokenizeLines(in, w, tok, opts.Decode)
	case opts.Decode:
		err = decodeWhole(in, w, tok)
	default:
		var text []byte
		if text, err = io.ReadAll(in); err == nil {
			w.Write(appendIDs(nil, tok.Encode(string(text))))
			w.WriteByte('\n')
		}
	}
	if err != nil {
		return err
	}
	return w.Flush()
}

func decodeWhole(in io.Reader, w *bufio.Writer, tok *Tokenizer) error {
	dec := json.NewDecoder(in)
	var ids []int
	if err := dec.Decode(&ids); err != nil {
		return fmt.Errorf("input is not a JSON array of token ids: %w", err)
	}
	if ids == nil {
		return errors.New("input is null, not a JSON array of token ids")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("input has more than one JSON array of token ids; use --jsonl for one array per line")
	}
	text, err := tok.Decode(ids)
	if err != nil {
		return err
	}
	_, err = w.Write(text)
	return err
}

func tokenizeLines(in io.Reader, w *bufio.Writer, tok *Tokenizer, decode bool) error {
	r := bufio.NewReader(in)
	for lineNo := 1; ; lineNo++ {
		line, readErr := r.ReadBytes('\n')
		if readErr != nil && readErr != io.EOF {
			return fmt.Errorf("line %d: %w", lineNo, readErr)
		}
		if readErr == io.EOF && len(line) == 0 {
			return nil
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		var err error
		if decode {
			err = decodeLine(w, tok, line)
		} else {
			err = encodeLine(w, tok, line)
		}
		if err != nil {
			return fmt.Errorf("line %d: %w", lineNo, err)
		}
		if readErr == io.EOF {
			return nil
		}
	}
}

func encodeLine(w *bufio.Writer, tok *Tokenizer, line []byte) error {
	var text *string
	if err := json.Unmarshal(line, &text); err != nil {
		return fmt.Errorf(`each line must be one JSON string, like "Hello": %w`, err)
	}
	if text == nil {
		return errors.New(`each line must be one JSON string, like "Hello", not null`)
	}
	w.Write(appendIDs(nil, tok.Encode(*text)))
	return w.WriteByte('\n')
}

func decodeLine(w *bufio.Writer, tok *Tokenizer, line []byte) error {
	var ids []int
	if err := json.Unmarshal(line, &ids); err != nil {
		return fmt.Errorf("each line must be one JSON array of token ids, like [13225, 11]: %w", err)
	}
	if ids == nil {
		return errors.New("each line must be one JSON array of token ids, like [13225, 11], not null")
	}
	text, err := tok.Decode(ids)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(w) // writes the newline too
	enc.SetEscapeHTML(false)  // keep <|end|> readable
	return enc.Encode(string(text))
}

func appendIDs(dst []byte, ids []int) []byte {
	dst = append(dst, '[')
	for i, id := range ids {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendInt(dst, int64(id), 10)
	}
	return append(dst, ']')
}
