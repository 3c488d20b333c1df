package artifact

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/internal/golden"
)

func compileTiny(t *testing.T) *compiler.Unit {
	t.Helper()
	opts, err := compiler.SourceOptions("../../models/gpt-oss.arch", "../../testdata/gpt-oss/tiny-random/config.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	opts.File = "models/gpt-oss.arch"
	opts.Verify = true
	u, err := compiler.Compile(opts)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestGolden keeps the emitted Metal and Go of the tiny-random config in
// testdata/tiny-random.txtar (MINERVA_UPDATE_GOLDEN=1 rewrites them).
func TestGolden(t *testing.T) {
	path := filepath.Join("testdata", "tiny-random.txtar")
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	a := golden.Parse(string(text))
	u := compileTiny(t)
	m := Build(u, u.Generated)
	gosrc, err := GoPackage(m, "tinyrandom")
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, path, a, []string{"args"}, map[string]string{
		"kernels.metal": u.Generated.Metal,
		"model.go":      string(gosrc),
	})
	golden.CheckOrphans(t, "testdata", map[string]bool{"tiny-random.txtar": true})
}

// TestDeterministic compiles twice into two directories and compares
// every byte.
func TestDeterministic(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir()}
	for _, d := range dirs {
		u := compileTiny(t)
		if err := Write(d, Build(u, u.Generated), u.Generated.Metal, "tinyrandom"); err != nil {
			t.Fatal(err)
		}
	}
	var files []string
	filepath.Walk(dirs[0], func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			rel, _ := filepath.Rel(dirs[0], p)
			files = append(files, rel)
		}
		return nil
	})
	if len(files) != 5 {
		t.Fatalf("the artifact has %d files: %v", len(files), files)
	}
	for _, f := range files {
		a, err := os.ReadFile(filepath.Join(dirs[0], f))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dirs[1], f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between two compilations", f)
		}
	}
}

// TestReadBack: an artifact reads back to the same program, and another
// format version is refused with a message that says what to recompile.
func TestReadBack(t *testing.T) {
	u := compileTiny(t)
	dir := t.TempDir()
	m := Build(u, u.Generated)
	if err := Write(dir, m, u.Generated.Metal, "tinyrandom"); err != nil {
		t.Fatal(err)
	}
	p, out, _, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Dispatches) != len(u.Func.Ops) || len(out.Kernels) != len(u.Generated.Kernels) || p.Arena.Bytes != u.Arena.Bytes || p.KV.Bytes != u.KV.Bytes {
		t.Fatalf("the artifact does not read back to the compiled program")
	}
	mb, _ := os.ReadFile(filepath.Join(dir, "manifest.json"))
	old := strings.Replace(string(mb), fmt.Sprintf(`"format": %d,`, FormatVersion), `"format": 0,`, 1)
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, _, err = Read(dir)
	if err == nil || !strings.Contains(err.Error(), "has format 0") || !strings.Contains(err.Error(), "recompile it with this version: minervac compile") {
		t.Fatalf("an old format was not refused clearly: %v", err)
	}
	if _, _, _, err := Read(t.TempDir()); err == nil || !strings.Contains(err.Error(), "is not a compiled artifact") {
		t.Fatalf("a directory without a manifest: %v", err)
	}
}

// FuzzDecode: a damaged manifest is refused with an error, never a panic.
func FuzzDecode(f *testing.F) {
	u := func() []byte {
		opts, err := compiler.SourceOptions("../../models/gpt-oss.arch", "../../testdata/gpt-oss/tiny-random/config.json", nil)
		if err != nil {
			f.Fatal(err)
		}
		u, err := compiler.Compile(opts)
		if err != nil {
			f.Fatal(err)
		}
		b, err := Build(u, u.Generated).Marshal()
		if err != nil {
			f.Fatal(err)
		}
		return b
	}()
	f.Add(u)
	f.Add([]byte(`{"format": 1}`))
	f.Fuzz(func(t *testing.T, manifest []byte) {
		_, _, _, _ = Decode(manifest, "", "fuzz")
	})
}
