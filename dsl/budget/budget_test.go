package budget

import (
	"errors"
	"testing"
)

// A charge the budget cannot cover spends nothing and names the limit;
// every later charge fails with ErrExhausted, whatever it asks for, so
// only the first failure is reported.
func TestChargeIsAllOrNothingThenExhausted(t *testing.T) {
	b := New(Limits{Steps: 10})
	if err := b.Steps(10); err != nil {
		t.Fatalf("10 of 10 steps: %v", err)
	}
	var le *LimitError
	if err := b.Steps(1); !errors.As(err, &le) || le.Limit != 10 || le.Unit != "evaluation steps" {
		t.Fatalf("11th step: %v", err)
	}
	if got := (&LimitError{Limit: 10, Unit: "evaluation steps"}).Error(); got != "past the limit of 10 evaluation steps in one compilation" {
		t.Fatalf("message: %q", got)
	}
	if !b.Exhausted() {
		t.Fatal("not exhausted after a failed charge")
	}
	for _, err := range []error{b.Steps(0), b.Elements(1), b.StringBytes(1), b.Unrolled(1)} {
		if err != ErrExhausted {
			t.Fatalf("after exhaustion: %v", err)
		}
	}
}

// A negative charge stands for a count past int64 (a range of 2^64-1
// iterations converted to int64): no budget covers it.
func TestNegativeChargeFails(t *testing.T) {
	b := New(Limits{})
	var le *LimitError
	if err := b.Elements(-1); !errors.As(err, &le) {
		t.Fatalf("got %v", err)
	}
}

func TestDefaults(t *testing.T) {
	l := Limits{Depth: 3}.WithDefaults()
	want := Limits{SourceBytes: DefaultSourceBytes, Tokens: DefaultTokens, Depth: 3, Steps: DefaultSteps,
		Elements: DefaultElements, StringBytes: DefaultStringBytes, Unrolled: DefaultUnrolled, Errors: DefaultErrors}
	if l != want {
		t.Fatalf("got %+v, want %+v", l, want)
	}
}
