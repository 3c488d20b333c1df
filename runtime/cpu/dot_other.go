//go:build !amd64 || purego

package cpu

// useKernels selects a kernel set; only the Go kernels exist here.
func useKernels(name string) bool { return name == "go" }

// kernelSets lists the sets this machine can run.
func kernelSets() []string { return []string{"go"} }

// readSum adds the words of p.
func readSum(p []uint64) uint64 {
	var s0, s1, s2, s3 uint64
	i := 0
	for ; i+4 <= len(p); i += 4 {
		s0 += p[i]
		s1 += p[i+1]
		s2 += p[i+2]
		s3 += p[i+3]
	}
	for ; i < len(p); i++ {
		s0 += p[i]
	}
	return s0 + s1 + s2 + s3
}

// fmaPeak has no vector loop to time here.
func fmaPeak(n int) float64 { return 0 }

// prefetchLines has no instruction to issue here.
func prefetchLines(p *byte, n int) {}
