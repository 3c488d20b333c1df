package program_test

import (
	"testing"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/internal/fixtures"
)

// TestDescribe: the shape in messages comes from the program, whatever
// names the .arch file gives its config. allops.arch calls its vocabulary
// "vocab"; gpt-oss.arch and llama.arch say "vocab_size". Each is
// described from its IR, against the figures its .arch or config.json
// declares.
func TestDescribe(t *testing.T) {
	for _, c := range []struct {
		arch, config string
		want         string
	}{
		{"internal/backendtest/testdata/allops.arch", "", "allops (vocab=16411, hidden=32, layers=2, heads=2, experts=4)"},
		{"models/gpt-oss.arch", "testdata/gpt-oss/tiny-random", "gpt-oss (vocab=512, hidden=64, layers=4, heads=4, experts=4)"},
		{"models/llama.arch", "testdata/llama/llama-tiny", "llama (vocab=384, hidden=64, layers=3, heads=4)"},
	} {
		cfg := ""
		if c.config != "" {
			cfg = fixtures.Path(t, c.config)
		}
		p := fixtures.CompileArch(t, fixtures.Path(t, c.arch), cfg, compiler.PlanOptions{})
		if got := p.Describe(); got != c.want {
			t.Errorf("%s: Describe() = %q, want %q", c.arch, got, c.want)
		}
	}
}
