//go:build ignore

// gen writes ../onig-splits.jsonl: how Oniguruma, the regex engine of
// Hugging Face tokenizers, splits random texts with each split pattern the
// tokenizer package implements. It is the oracle for the package's
// hand-written scanners. Regenerate with (Debian: apt-get install libonig-dev):
//
//	gcc -O2 -o /tmp/onigsplit onigsplit.c -lonig
//	go run gen.go -onigsplit /tmp/onigsplit
//
// The committed file was made with Oniguruma 6.9.8, the version that
// tokenizers' onig_sys crate bundles.
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// The patterns, as in tokenizer.json files (and pretokenize.go).
var patterns = map[string]string{
	"o200k":  `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
	"llama3": `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
	"qwen2":  `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
	"gpt2":   `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`,
}

// Characters chosen to hit every branch: each class of the patterns, the
// contraction letters in both cases, U+017F (folds to s), White_Space
// characters and look-alikes that are not (U+180E, U+200B, U+FEFF), all
// letter categories (Lu Ll Lt Lm Lo), marks (Mn Mc Me), numbers (Nd Nl No),
// symbols, emoji, private use and unassigned. All are assigned (or not)
// identically in Unicode 14 and 15, so Go's tables and Oniguruma's agree.
var pool = []string{
	"a", "b", "x", "Z", "Q", "s", "t", "r", "e", "v", "m", "l", "d", "S", "T", "R", "E", "V", "M", "L", "D",
	"'", "'", "'", "'", "\u017f", "\u2019",
	" ", " ", " ", " ", "\t", "\n", "\n", "\r", "\r\n", "\v", "\f",
	"\u0085", "\u00a0", "\u1680", "\u2000", "\u2028", "\u2029", "\u202f", "\u3000",
	"\u180e", "\u200b", "\ufeff", "\u200d",
	"0", "1", "7", "9", "\u0663", "\u216b", "\u00bd", "\u00b2", "\U0001d7d9",
	".", ",", "!", "?", "/", "/", "-", "_", "(", ")", "<", ">", "|", ":", "\"", "#", "$", "+", "=", "\\", "~",
	"\u00e9", "\u00c9", "\u01c5", "\u02b0", "\u4e2d", "\u3042", "\u0627", "\u00df", "\u212a", "\u0130",
	"\u0301", "\u0903", "\u20dd",
	"\U0001f600", "\u2b62", "\u20ac", "\ue000", "\ufffd", "\u0378",
}

func main() {
	onig := flag.String("onigsplit", "/tmp/onigsplit", "the compiled onigsplit.c")
	n := flag.Int("n", 200, "random texts per pattern")
	out := flag.String("out", "../onig-splits.jsonl", "output file")
	flag.Parse()

	rng := rand.New(rand.NewPCG(20240601, 7))
	texts := []string{
		"I'm here", "DON'T they'll've", "1234567 12", "abc  \n\n  def", "hello world  ", "don'\u017f LET'S",
	}
	for len(texts) < *n {
		var sb strings.Builder
		for k := 1 + rng.IntN(24); k > 0; k-- {
			sb.WriteString(pool[rng.IntN(len(pool))])
		}
		texts = append(texts, sb.String())
	}

	var records []byte
	for _, t := range texts {
		records = binary.LittleEndian.AppendUint32(records, uint32(len(t)))
		records = append(records, t...)
	}
	f, err := os.Create(*out)
	if err != nil {
		log.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for _, name := range []string{"o200k", "llama3", "qwen2", "gpt2"} {
		patFile, err := os.CreateTemp("", "pattern")
		if err != nil {
			log.Fatal(err)
		}
		patFile.WriteString(patterns[name])
		patFile.Close()
		cmd := exec.Command(*onig, patFile.Name())
		cmd.Stdin = bytes.NewReader(records)
		cmd.Stderr = os.Stderr
		res, err := cmd.Output()
		os.Remove(patFile.Name())
		if err != nil {
			log.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(string(res), "\n"), "\n")
		if len(lines) != len(texts) {
			log.Fatalf("%s: %d result lines for %d texts", name, len(lines), len(texts))
		}
		for i, line := range lines {
			pieces, err := piecesOf(texts[i], line)
			if err != nil {
				log.Fatalf("%s: text %q: %v", name, texts[i], err)
			}
			b, _ := json.Marshal(map[string]any{"pattern": name, "text": texts[i], "pieces": pieces})
			w.Write(b)
			w.WriteByte('\n')
		}
	}
	if err := w.Flush(); err != nil {
		log.Fatal(err)
	}
	f.Close()
}

// piecesOf turns "start-end start-end ..." into the text's pieces, with
// any unmatched text between matches as pieces too (Split's Isolated).
func piecesOf(text, line string) ([]string, error) {
	var pieces []string
	pos := 0
	for _, m := range strings.Fields(line) {
		a, b, _ := strings.Cut(m, "-")
		start, err1 := strconv.Atoi(a)
		end, err2 := strconv.Atoi(b)
		if err1 != nil || err2 != nil || start < pos || end > len(text) || end <= start {
			return nil, fmt.Errorf("bad match %q", m)
		}
		if start > pos {
			pieces = append(pieces, text[pos:start])
		}
		pieces = append(pieces, text[start:end])
		pos = end
	}
	if pos < len(text) {
		pieces = append(pieces, text[pos:])
	}
	return pieces, nil
}
