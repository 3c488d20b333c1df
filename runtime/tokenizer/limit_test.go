package tokenizer

import (
	"errors"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// TestEncodeLimit: within the limit EncodeLimit gives the reference ids
// (the published vectors); one token fewer is a *TooManyTokensError.
func TestEncodeLimit(t *testing.T) {
	tok := gptOSS(t)
	if got := tok.MaxTokenBytes(); got != 128 {
		t.Errorf("MaxTokenBytes = %d; o200k's longest token is 128 spaces", got)
	}
	for _, v := range vectors(t) {
		n := len(v.IDs)
		got, err := tok.EncodeLimit(v.Text, n)
		if err != nil || !reflect.DeepEqual(got, v.IDs) && n > 0 {
			t.Errorf("%s: EncodeLimit(%d) = %v, %v; want %v", v.Name, n, got, err, v.IDs)
		}
		if n == 0 {
			continue
		}
		_, err = tok.EncodeLimit(v.Text, n-1)
		var tm *TooManyTokensError
		if !errors.As(err, &tm) || tm.Limit != n-1 || err.Error() != "the text is more than "+itoa(n-1)+" tokens" {
			t.Errorf("%s: EncodeLimit(%d) of %d tokens: %v", v.Name, n-1, n, err)
		}
		ord := tok.EncodeOrdinary(v.Text)
		if got, err := tok.EncodeOrdinaryLimit(v.Text, len(ord)); err != nil || !reflect.DeepEqual(got, ord) && len(ord) > 0 {
			t.Errorf("%s: EncodeOrdinaryLimit = %v, %v; want %v", v.Name, got, err, ord)
		}
		if _, err := tok.EncodeOrdinaryLimit(v.Text, len(ord)-1); !errors.As(err, &tm) {
			t.Errorf("%s: EncodeOrdinaryLimit(%d) of %d tokens: %v", v.Name, len(ord)-1, len(ord), err)
		}
	}
}

func itoa(n int) string {
	s := ""
	for ; n >= 10; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return string(rune('0'+n)) + s
}

// TestEncodeLimitStopsEarly: a 50 MB text against a context of 4096
// tokens is refused without encoding it (Encode takes over a gigabyte),
// and text under the byte bound stops at the limit, with special tokens
// between pieces too.
func TestEncodeLimitStopsEarly(t *testing.T) {
	tok := fortune(t)
	big := strings.Repeat("hello world, ", 50<<20/13)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := tok.EncodeLimit(big, 4096)
	runtime.ReadMemStats(&after)
	var tm *TooManyTokensError
	if !errors.As(err, &tm) || tm.Limit != 4096 {
		t.Fatalf("50 MB: %v", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("refusing 50 MB allocated %d bytes", alloc)
	}
	// Under the byte bound: encoding stops at the limit.
	small := strings.Repeat("a b <|endoftext|>", 1024) // 4096 tokens
	if len(small) > 4096*tok.MaxTokenBytes() {
		t.Fatalf("the test text is over the byte bound")
	}
	if _, err := tok.EncodeLimit(small, 4000); !errors.As(err, &tm) || tm.Limit != 4000 {
		t.Errorf("%d tokens: %v", len(tok.Encode(small)), err)
	}
	ids, err := tok.EncodeLimit(small, len(tok.Encode(small)))
	if err != nil || !reflect.DeepEqual(ids, tok.Encode(small)) {
		t.Errorf("at the limit: %v", err)
	}
}
