package artifact

import (
	"testing"

	"github.com/minerva-ml/minerva/compiler"
)

// BenchmarkCompileArtifact20b compiles models/gpt-oss.arch (20b) to a full
// artifact directory: every pass, kernels.metal, the manifest and the Go
// package.
func BenchmarkCompileArtifact20b(b *testing.B) {
	for i := 0; i < b.N; i++ {
		opts, err := compiler.SourceOptions("../../models/gpt-oss.arch", "", nil)
		if err != nil {
			b.Fatal(err)
		}
		u, err := compiler.Compile(opts)
		if err != nil {
			b.Fatal(err)
		}
		if err := Write(b.TempDir(), Build(u, u.Generated), u.Generated.Metal, "gptoss"); err != nil {
			b.Fatal(err)
		}
	}
}
