package main

import (
	"fmt"
	"runtime"

	"github.com/minerva-ml/minerva/runtime/loader"
	"github.com/minerva-ml/minerva/runtime/metal"
)

// InfoCmd is `minerva info`.
type InfoCmd struct{}

// Run prints the Metal device (when there is one) and the backend that
// --backend auto chooses.
func (InfoCmd) Run(env *Env) error {
	fmt.Fprintf(env.Stdout, "%-25s%s/%s, %d CPUs, %s\n", "platform:", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	if d, err := metal.Open(); err == nil {
		fmt.Fprint(env.Stdout, d.Info().String())
		d.Close()
	} else {
		fmt.Fprintf(env.Stdout, "%-25s%v\n", "metal:", err)
	}
	name, why := loader.AutoBackend()
	fmt.Fprintf(env.Stdout, "%-25s%s (%s)\n", "backend (auto):", name, why)
	return nil
}
