//go:build !unix

package weights

import (
	"fmt"
	"os"
	"runtime"
)

func mapFile(f *os.File, size int64) ([]byte, error) {
	return nil, fmt.Errorf("cannot open %s: memory-mapped checkpoints are supported on macOS and Linux, not %s (weights.FromBytes works everywhere)", f.Name(), runtime.GOOS)
}

func unmapFile(data []byte) error {
	panic("BUG: unmapFile without mapFile")
}

func populate(data []byte) error {
	panic("BUG: populate without mapFile")
}
