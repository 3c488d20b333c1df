package weights

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/nlpodyssey/safetensors"
)

// TensorHeader describes one tensor to write.
type TensorHeader struct {
	Name  string
	DType DType
	Shape []int64
}

// Writer streams a SafeTensors file to disk without holding its tensors in
// memory. NewWriter fixes the layout: the header lists the tensors in the
// given order with contiguous data, padded with spaces so that the data
// section starts 8-byte aligned; the same input always gives the same file.
// WriteTensor fills in one tensor's data, in any order, and may be called
// from several goroutines for different tensors; a failed write may be
// tried again. The file appears at its
// path only when Close has checked that every tensor was fully written;
// until then it is a temporary file in the same directory.
type Writer struct {
	path string
	tmp  *os.File

	mu      sync.Mutex
	entries map[string]*writerEntry
	order   []string
	closed  bool
}

type writerEntry struct {
	offset int64 // absolute, in the file
	size   int64
	state  writeState
}

type writeState uint8

const (
	notWritten writeState = iota
	writing
	written
)

// NewWriter creates the file's temporary stand-in and writes its header.
// metadata becomes the header's __metadata__ (sorted by key; omitted when
// empty).
func NewWriter(path string, tensors []TensorHeader, metadata map[string]string) (*Writer, error) {
	header, entries, err := buildHeader(tensors, metadata)
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".*.partial")
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	w := &Writer{path: path, tmp: tmp, entries: entries}
	for _, t := range tensors {
		w.order = append(w.order, t.Name)
	}
	var total int64 = int64(len(header))
	for _, e := range entries {
		total = max(total, e.offset+e.size)
	}
	// Size the file up front: tensors written out of order land at their
	// offsets, and the disk space shortfall of a huge file shows up here
	// on file systems that allocate eagerly.
	// CreateTemp makes the file private; a checkpoint is not.
	err = tmp.Chmod(0o644)
	if err == nil {
		_, err = tmp.Write(header)
	}
	if err == nil {
		err = tmp.Truncate(total)
	}
	if err != nil {
		w.abandon()
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return w, nil
}

// buildHeader lays the tensors out and encodes the header, length prefix
// included.
func buildHeader(tensors []TensorHeader, metadata map[string]string) ([]byte, map[string]*writerEntry, error) {
	// Write nothing Open would refuse.
	if len(tensors) > MaxTensorsPerFile {
		return nil, nil, fmt.Errorf("%d tensors in one file, more than the %d Minerva reads: write fewer tensors to each file", len(tensors), MaxTensorsPerFile)
	}
	var body bytes.Buffer
	body.WriteByte('{')
	if len(metadata) > 0 {
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		body.WriteString(`"__metadata__":{`)
		for i, k := range keys {
			if i > 0 {
				body.WriteByte(',')
			}
			writeJSONString(&body, k)
			body.WriteByte(':')
			writeJSONString(&body, metadata[k])
		}
		body.WriteByte('}')
	}
	entries := make(map[string]*writerEntry, len(tensors))
	var offset uint64
	var layout []*writerEntry
	for i, t := range tensors {
		if t.Name == "__metadata__" {
			return nil, nil, errors.New(`"__metadata__" is reserved by the format and cannot name a tensor`)
		}
		if _, dup := entries[t.Name]; dup {
			return nil, nil, fmt.Errorf("tensor %q is listed twice", t.Name)
		}
		if !t.DType.Valid() {
			return nil, nil, fmt.Errorf("tensor %q has the invalid %v", t.Name, t.DType)
		}
		shape := make([]uint64, len(t.Shape))
		for j, d := range t.Shape {
			if d < 0 {
				return nil, nil, fmt.Errorf("tensor %q has the negative dimension %d in shape %v", t.Name, d, t.Shape)
			}
			shape[j] = uint64(d)
		}
		size, ok := byteSize(t.DType, shape)
		if !ok || offset+size < offset || offset+size > 1<<62 {
			return nil, nil, fmt.Errorf("tensor %q (%v %v) makes the file too large", t.Name, t.DType, t.Shape)
		}
		info, err := json.Marshal(safetensors.TensorInfo{
			DType:       t.DType.library(),
			Shape:       shape,
			DataOffsets: [2]uint64{offset, offset + size},
		})
		if err != nil {
			panic("BUG: cannot encode a TensorInfo: " + err.Error())
		}
		if i > 0 || len(metadata) > 0 {
			body.WriteByte(',')
		}
		writeJSONString(&body, t.Name)
		body.WriteByte(':')
		body.Write(info)
		e := &writerEntry{offset: int64(offset), size: int64(size)}
		entries[t.Name] = e
		layout = append(layout, e)
		offset += size
	}
	body.WriteByte('}')
	// The format allows trailing spaces in the header; they align the data.
	for body.Len()%8 != 0 {
		body.WriteByte(' ')
	}
	if body.Len() > MaxHeaderBytes {
		return nil, nil, fmt.Errorf("the header would have %d bytes, more than the %d Minerva reads: write fewer tensors to each file", body.Len(), MaxHeaderBytes)
	}

	header := binary.LittleEndian.AppendUint64(make([]byte, 0, 8+body.Len()), uint64(body.Len()))
	header = append(header, body.Bytes()...)
	for _, e := range layout {
		e.offset += int64(len(header))
	}
	return header, entries, nil
}

func writeJSONString(b *bytes.Buffer, s string) {
	text, err := json.Marshal(s)
	if err != nil {
		panic("BUG: cannot encode a string: " + err.Error())
	}
	b.Write(text)
}

// WriteTensor writes the whole data of one tensor; len(data) must be its
// byte size.
func (w *Writer) WriteTensor(name string, data []byte) error {
	return w.write(name, func(e *writerEntry) error {
		if int64(len(data)) != e.size {
			return fmt.Errorf("tensor %q needs %d bytes, got %d", name, e.size, len(data))
		}
		_, err := w.tmp.WriteAt(data, e.offset)
		return err
	})
}

// WriteTensorFrom reads exactly the tensor's byte size from r and writes
// it, a chunk at a time.
func (w *Writer) WriteTensorFrom(name string, r io.Reader) error {
	return w.write(name, func(e *writerEntry) error {
		dst := io.NewOffsetWriter(w.tmp, e.offset)
		n, err := io.CopyBuffer(dst, io.LimitReader(r, e.size), make([]byte, 1<<20))
		if err != nil {
			return fmt.Errorf("tensor %q: %w", name, err)
		}
		if n != e.size {
			return fmt.Errorf("tensor %q needs %d bytes, the reader gave %d", name, e.size, n)
		}
		return nil
	})
}

func (w *Writer) write(name string, do func(*writerEntry) error) error {
	w.mu.Lock()
	e, ok := w.entries[name]
	switch {
	case w.closed:
		w.mu.Unlock()
		return fmt.Errorf("write %s: tensor %q written after Close", w.path, name)
	case !ok:
		w.mu.Unlock()
		return fmt.Errorf("write %s: tensor %q is not in the header", w.path, name)
	case e.state != notWritten:
		w.mu.Unlock()
		return fmt.Errorf("write %s: tensor %q is written twice", w.path, name)
	}
	e.state = writing
	w.mu.Unlock()

	err := do(e)

	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		// Whatever part was written lies inside the tensor's own range: a
		// second try overwrites it, and Close refuses a file without one.
		e.state = notWritten
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	e.state = written
	return nil
}

// Close checks that every tensor was written, then moves the file to its
// path. Otherwise it deletes the partial file and says what is missing.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	var missing []string
	for _, name := range w.order {
		if w.entries[name].state != written {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		w.abandon()
		count := len(missing)
		if count > 5 {
			missing = append(missing[:5], fmt.Sprintf("and %d more", count-5))
		}
		return fmt.Errorf("write %s: %d of %d tensors were not written: %s", w.path,
			count, len(w.order), strings.Join(missing, ", "))
	}
	if err := w.tmp.Close(); err != nil {
		os.Remove(w.tmp.Name())
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	if err := os.Rename(w.tmp.Name(), w.path); err != nil {
		os.Remove(w.tmp.Name())
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	return nil
}

func (w *Writer) abandon() {
	w.tmp.Close()
	os.Remove(w.tmp.Name())
}
