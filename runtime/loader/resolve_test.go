package loader

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHubCacheStaysInside: refs/main must name a commit, and the snapshot
// must lie inside the cache; a ref such as ../../../x that reaches a
// directory outside is refused, not loaded.
func TestHubCacheStaysInside(t *testing.T) {
	root := t.TempDir()
	hub := filepath.Join(root, "hub")
	t.Setenv("HF_HUB_CACHE", hub)
	outside := filepath.Join(root, "x")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join(hub, "models--org--name")
	if err := os.MkdirAll(filepath.Join(repo, "refs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(repo, "snapshots"), 0o755); err != nil {
		t.Fatal(err)
	}
	setRef := func(s string) {
		if err := os.WriteFile(filepath.Join(repo, "refs", "main"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// ../../../x from snapshots/ is root/x.
	for _, ref := range []string{"../../../x", "../../../x\n", "/" + outside, "."} {
		setRef(ref)
		dir, err := ResolveModel("org/name")
		if err == nil || !strings.Contains(err.Error(), "not a commit hash (40 or 64 hex digits)") || !strings.Contains(err.Error(), filepath.Join("refs", "main")) {
			t.Errorf("refs/main %q: resolved to %q, %v; want a refusal", ref, dir, err)
		}
	}

	// A snapshot that is a link out of the cache is refused too.
	hash := strings.Repeat("ab", 20)
	setRef(hash + "\n")
	if err := os.Symlink(outside, filepath.Join(repo, "snapshots", hash)); err != nil {
		t.Fatal(err)
	}
	if dir, err := ResolveModel("org/name"); err == nil || !strings.Contains(err.Error(), "outside the Hugging Face cache") {
		t.Errorf("snapshot linked outside: resolved to %q, %v; want a refusal", dir, err)
	}

	// A real snapshot resolves.
	os.Remove(filepath.Join(repo, "snapshots", hash))
	if err := os.Mkdir(filepath.Join(repo, "snapshots", hash), 0o755); err != nil {
		t.Fatal(err)
	}
	if dir, err := ResolveModel("org/name"); err != nil || dir != filepath.Join(repo, "snapshots", hash) {
		t.Errorf("a valid snapshot: %q, %v", dir, err)
	}
}
