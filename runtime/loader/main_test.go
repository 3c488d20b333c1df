package loader

import (
	"os"
	"testing"

	"github.com/minerva-ml/minerva/internal/testcache"
)

// TestMain puts the tokenizer cache in a directory of this test process's
// own, not the user's cache.
func TestMain(m *testing.M) { os.Exit(testcache.Run(m)) }
