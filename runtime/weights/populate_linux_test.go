package weights

import (
	"fmt"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// sink keeps the reads of TestPopulateMapsPages from being optimised away.
var sink int

// TestPopulateMapsPages counts the minor page faults (the kernel's own
// count, getrusage of this thread) of a first read of every page of a 32 MB
// checkpoint: a plain mapping takes one fault per fault-around block or
// large folio, a populated one none.
func TestPopulateMapsPages(t *testing.T) {
	const size = 32 << 20
	header := fmt.Sprintf(`{"w":{"dtype":"U8","shape":[%d],"data_offsets":[0,%d]}}`, size, size)
	dir := writeTemp(t, "model.safetensors", craft(header, size))
	faults := func(populate bool) int64 {
		ck, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer ck.Close()
		if populate {
			if err := ck.Populate(); err != nil {
				t.Fatal(err)
			}
		}
		w, _ := ck.Tensor("w")
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var before, after unix.Rusage
		if err := unix.Getrusage(unix.RUSAGE_THREAD, &before); err != nil {
			t.Skipf("getrusage: %v", err)
		}
		sum := 0
		for i := 0; i < len(w.Data); i += 4096 {
			sum += int(w.Data[i])
		}
		if err := unix.Getrusage(unix.RUSAGE_THREAD, &after); err != nil {
			t.Fatal(err)
		}
		sink = sum
		return after.Minflt - before.Minflt
	}
	plain, populated := faults(false), faults(true)
	t.Logf("minor faults reading 32 MB: plain mapping %d, populated %d", plain, populated)
	// 8192 pages. The kernel maps up to 16 pages around a fault, or a whole
	// large folio (2 MB on ext4 with Linux 6.18, where the test reads 16),
	// so a plain first read takes about 16 to 512 faults.
	if plain < 8 {
		t.Skipf("a plain mapping took %d faults for 8192 pages: this kernel maps more at a fault than the test can tell from Populate", plain)
	}
	if populated > plain/4 {
		t.Errorf("after Populate a first read took %d minor faults, against %d for a plain mapping", populated, plain)
	}
}
