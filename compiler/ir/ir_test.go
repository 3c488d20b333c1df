package ir

import (
	"strings"
	"testing"
)

const small = `model "t"
weight @w bf16[8, 4] "w"
weight @n f32[4] "n"

func forward(%0: i32[seq]) -> f32[seq, 8] {
  %1 = embedding @w, %0 : f32[seq, 4]  # x
  %2 = rmsnorm %1, @n {eps=1e-05, offset=0.0} : f32[seq, 4]  # h (layer 0)
  %3 = linear %2, @w, _ : f32[seq, 8]
  return %3
}
`

func TestPrintParseRoundTrip(t *testing.T) {
	f, err := Parse(small)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(f); err != nil {
		t.Fatal(err)
	}
	if got := Print(f); got != small {
		t.Fatalf("round trip differs:\n%s", got)
	}
	if f.Ops[1].Layer != 0 || f.Ops[1].Results[0].Name != "h" {
		t.Fatalf("comment not read back: layer %d name %q", f.Ops[1].Layer, f.Ops[1].Results[0].Name)
	}
}

// TestVerifierCatches: each broken variant of a valid function is refused
// with a message that names the problem.
func TestVerifierCatches(t *testing.T) {
	cases := []struct{ name, from, to, want string }{
		{"wrong result type", "%3 = linear %2, @w, _ : f32[seq, 8]", "%3 = linear %2, @w, _ : f32[seq, 9]", "its type rule gives f32[seq, 8]"},
		{"shape mismatch", "%3 = linear %2, @w, _ : f32[seq, 8]", "%3 = linear %1, @n, _ : f32[seq, 8]", "must be a [out, in] matrix"},
		{"missing attribute", "{eps=1e-05, offset=0.0}", "{eps=1e-05}", "has 1 attributes, rmsnorm takes 2"},
		{"attribute type", "{eps=1e-05, offset=0.0}", "{eps=1e-05, offset=true}", "offset=true is not a valid float"},
		{"operand kind", "%2 = rmsnorm %1, @n", "%2 = rmsnorm @n, @n", "operand x must be an activation"},
		{"required operand", "%3 = linear %2, @w, _", "%3 = linear %2, _, _", "operand w is required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(small, c.from, c.to, 1)
			if src == small {
				t.Fatal("test case did not change the source")
			}
			f, err := Parse(src)
			if err != nil {
				t.Fatal(err)
			}
			err = Verify(f)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want an error containing %q, got %v", c.want, err)
			}
		})
	}
}

func TestVerifierCatchesUseBeforeDefinition(t *testing.T) {
	f, err := Parse(small)
	if err != nil {
		t.Fatal(err)
	}
	f.Ops[1], f.Ops[2] = f.Ops[2], f.Ops[1]
	if err := Verify(f); err == nil || !strings.Contains(err.Error(), "used before it is defined") {
		t.Fatalf("got %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	cases := map[string]string{
		"": "empty input",
		"model \"t\"\nfunc forward(%0: i32[seq]) -> f32[seq, 1] {\n  %1 = nope %0 : f32[seq, 1]\n}\n": "unknown op",
		"model \"t\"\nfunc forward(%0: i32[seq]) -> f32[seq, 1] {\n  return %9\n}\n":                  "%9 is not defined",
		"model \"t\"\nweight @w bf17[1] \"w\"\n":                                                      "unknown dtype",
	}
	for src, want := range cases {
		if _, err := Parse(src); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q): want %q, got %v", src, want, err)
		}
	}
}

// FuzzParse: the IR text parser never panics, and whatever it accepts
// prints and verifies without panicking.
func FuzzParse(f *testing.F) {
	f.Add(small)
	f.Add("model \"x\"\n")
	f.Fuzz(func(t *testing.T, src string) {
		fn, err := Parse(src)
		if err != nil {
			return
		}
		_ = Verify(fn)
		_ = Print(fn)
	})
}
