package cpu

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/runtime/weights"
)

// TestTruncatedCheckpoint: a checkpoint cut short while mapped makes
// Forward return weights.ErrChanged, naming the file, instead of killing
// the process with SIGBUS; on one worker (the caller's goroutine) and on
// several (the pool's).
func TestTruncatedCheckpoint(t *testing.T) {
	src := testModels[0] // gpt-oss/tiny-random
	for _, workers := range []int{1, 4} {
		dir := t.TempDir()
		for _, name := range []string{"config.json", "model.safetensors"} {
			b, err := os.ReadFile(filepath.Join(src.dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		fx := src
		fx.dir = dir
		m, _ := loadFixture(t, fx, exact, Options{Workers: workers})
		if _, err := m.Forward([]int32{1, 2, 3}, 0); err != nil {
			t.Fatalf("%d workers, before truncation: %v", workers, err)
		}
		if err := os.Truncate(filepath.Join(dir, "model.safetensors"), 0); err != nil {
			t.Fatal(err)
		}
		for range 2 { // and again: the pool still works after a fault
			logits, err := m.Forward([]int32{4, 5, 6}, 3)
			var changed *weights.ChangedError
			if !errors.Is(err, weights.ErrChanged) || !errors.As(err, &changed) || logits != nil {
				t.Fatalf("%d workers, truncated: logits %d, error %v; want weights.ErrChanged", workers, len(logits), err)
			}
			if !strings.Contains(err.Error(), "model.safetensors is now 0 bytes") || !strings.Contains(err.Error(), "restart") {
				t.Errorf("%d workers: error %q does not say which file changed and what to do", workers, err)
			}
		}
	}
}
