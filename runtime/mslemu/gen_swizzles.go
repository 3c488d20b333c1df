//go:build ignore

// gen_swizzles writes include/mslemu/swizzles.inc, the swizzle members of the
// vector types. Run it with `go generate ./runtime/mslemu`; TestSwizzlesUpToDate
// fails when the committed file differs from what this program writes.
package main

import (
	"log"
	"os"

	"github.com/minerva-ml/minerva/runtime/mslemu"
)

func main() {
	if err := os.WriteFile("include/mslemu/swizzles.inc", []byte(mslemu.SwizzleSource()), 0o644); err != nil {
		log.Fatal(err)
	}
}
