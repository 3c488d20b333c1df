package artifact

import (
	"bytes"
	"go/format"
	"testing"

	"github.com/minerva-ml/minerva/compiler"
)

// TestGoPackageIsGofmtd checks the generated package against go/format
// (the oracle for "gofmt'd"), for the full-size configs: gocode writes the
// dispatch tables itself, after jennifer's formatted part, so nothing else
// would notice a table line gofmt would change.
func TestGoPackageIsGofmtd(t *testing.T) {
	for _, c := range []struct{ arch, config string }{
		{"../../models/gpt-oss.arch", ""},
		{"../../models/gpt-oss.arch", "../../testdata/configs/gpt-oss-120b.json"},
		{"../../models/qwen3-moe.arch", "../../testdata/families/qwen3-moe-tiny/config.json"},
	} {
		opts, err := compiler.SourceOptions(c.arch, c.config, nil)
		if err != nil {
			t.Fatal(err)
		}
		u, err := compiler.Compile(opts)
		if err != nil {
			t.Fatal(err)
		}
		src, err := GoPackage(Build(u, u.Generated), "m")
		if err != nil {
			t.Fatal(err)
		}
		want, err := format.Source(src)
		if err != nil {
			t.Fatalf("%s %s: the generated package does not parse: %v", c.arch, c.config, err)
		}
		if !bytes.Equal(src, want) {
			t.Errorf("%s %s: the generated package is not gofmt'd", c.arch, c.config)
		}
	}
}
