// Package golden keeps expected test outputs in txtar files: one file per
// case holds the inputs and the expected output of every stage, as
// "-- name --" sections. Set MINERVA_UPDATE_GOLDEN=1 to rewrite the
// expected sections from what the code produces now; without it, a
// difference, a missing section or a section no stage produced fails the
// test.
package golden

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Update reports whether tests should rewrite golden files.
func Update() bool { return os.Getenv("MINERVA_UPDATE_GOLDEN") == "1" }

// Cases runs check as a subtest for every txtar file in dir, named after
// the file. A directory without cases fails: a glob that matches nothing
// would otherwise pass silently.
func Cases(t *testing.T, dir string, check func(t *testing.T, path string, a *Archive)) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.txtar"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no txtar cases in %s", dir)
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txtar"), func(t *testing.T) {
			text, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			check(t, path, Parse(string(text)))
		})
	}
}

// Section is one named part of an archive.
type Section struct {
	Name string
	Data string
}

// Archive is a parsed txtar file.
type Archive struct {
	Comment  string
	Sections []Section
}

// Parse reads txtar text.
func Parse(text string) *Archive {
	a := &Archive{}
	lines := strings.SplitAfter(text, "\n")
	var cur *Section
	var b strings.Builder
	flush := func() {
		if cur == nil {
			a.Comment = b.String()
		} else {
			cur.Data = b.String()
			a.Sections = append(a.Sections, *cur)
		}
		b.Reset()
	}
	for _, l := range lines {
		trim := strings.TrimRight(l, "\r\n")
		if strings.HasPrefix(trim, "-- ") && strings.HasSuffix(trim, " --") && len(trim) >= 6 {
			flush()
			cur = &Section{Name: strings.TrimSpace(trim[3 : len(trim)-3])}
			continue
		}
		b.WriteString(l)
	}
	flush()
	return a
}

// Format writes txtar text. Each section ends with a newline.
func (a *Archive) Format() string {
	var b strings.Builder
	b.WriteString(a.Comment)
	for _, s := range a.Sections {
		fmt.Fprintf(&b, "-- %s --\n", s.Name)
		b.WriteString(s.Data)
		if s.Data != "" && !strings.HasSuffix(s.Data, "\n") {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// Get returns a section's data.
func (a *Archive) Get(name string) (string, bool) {
	for _, s := range a.Sections {
		if s.Name == name {
			return s.Data, true
		}
	}
	return "", false
}

// Set replaces or appends a section.
func (a *Archive) Set(name, data string) {
	for i := range a.Sections {
		if a.Sections[i].Name == name {
			a.Sections[i].Data = data
			return
		}
	}
	a.Sections = append(a.Sections, Section{Name: name, Data: data})
}

// Check compares the produced outputs with the archive's expected
// sections. inputs names the sections that are inputs, not outputs. In
// update mode it rewrites path instead.
func Check(t *testing.T, path string, a *Archive, inputs []string, got map[string]string) {
	t.Helper()
	isInput := map[string]bool{}
	for _, in := range inputs {
		isInput[in] = true
	}
	if Update() {
		var kept []Section
		for _, s := range a.Sections {
			if isInput[s.Name] {
				kept = append(kept, s)
			}
		}
		a.Sections = kept
		names := make([]string, 0, len(got))
		for n := range got {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			a.Set(n, got[n])
		}
		if err := os.WriteFile(path, []byte(a.Format()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	for _, s := range a.Sections {
		if isInput[s.Name] {
			continue
		}
		g, ok := got[s.Name]
		if !ok {
			t.Errorf("%s: section %q is stale: no stage produces it (rerun with MINERVA_UPDATE_GOLDEN=1)", path, s.Name)
			continue
		}
		if norm(g) != norm(s.Data) {
			t.Errorf("%s: section %q differs (rerun with MINERVA_UPDATE_GOLDEN=1 if the change is intended):\n%s", path, s.Name, Diff(s.Data, g))
		}
	}
	for n := range got {
		if _, ok := a.Get(n); !ok {
			t.Errorf("%s: no golden section %q (rerun with MINERVA_UPDATE_GOLDEN=1)", path, n)
		}
	}
}

func norm(s string) string { return strings.TrimRight(s, "\n") + "\n" }

// Diff shows the first differing lines of two texts.
func Diff(want, got string) string {
	w := strings.Split(norm(want), "\n")
	g := strings.Split(norm(got), "\n")
	var b bytes.Buffer
	shown := 0
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  want: %s\n  got:  %s\n", i+1, wl, gl)
			shown++
			if shown == 5 {
				b.WriteString("  ...\n")
				break
			}
		}
	}
	return b.String()
}

// CheckOrphans fails when a golden directory holds files that no test
// case read.
func CheckOrphans(t *testing.T, dir string, used map[string]bool) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".txtar") && !used[e.Name()] {
			t.Errorf("%s/%s is orphaned: no test case reads it", dir, e.Name())
		}
	}
}
