package weights

import "fmt"

// Populate maps every page of the checkpoint's mapped files into the
// process now, reading them from disk where the page cache lacks them, so
// that the first use of a weight does not take page faults. It is the
// cost llama.cpp's default (no --no-mmap) leaves to the first tokens and
// its --mlock pays at load: about 40 ms a GB from the page cache on the
// project VM (docs/benchmarks.md, "page faults"), so it is not done by
// default. Where the kernel lacks MADV_POPULATE_READ (Linux before 5.14,
// macOS) it asks for read-ahead (MADV_WILLNEED) instead, which reads the
// files into the page cache without mapping them.
func (c *Checkpoint) Populate() error {
	c.checkOpen()
	for _, f := range c.files {
		if !f.Mapped || len(f.Data) == 0 {
			continue
		}
		if err := populate(f.Data); err != nil {
			return fmt.Errorf("populate %s: %w", f.Path, err)
		}
	}
	return nil
}
