package weights

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Tensor is one tensor of a checkpoint. Data is a view into the file's
// mapping: it is read-only (a write faults) and valid until Checkpoint.Close.
type Tensor struct {
	Name   string
	DType  DType
	Shape  []int64
	Data   []byte
	File   int   // index into Checkpoint.Files
	Offset int64 // absolute offset of Data in that file, for GPU buffers bound with an offset
	// Stacked marks a tensor Stack assembled in memory from others.
	Stacked bool
}

// NumElements is the product of the shape (1 for a scalar).
func (t *Tensor) NumElements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// MappedFile is one file of a checkpoint.
type MappedFile struct {
	Path string // as opened, or the name given to FromBytes
	// Data is the whole file. When Mapped, it is a read-only mmap that
	// starts on a page boundary, and the bytes from len(Data) to the end of
	// its last page exist and read as zero, so a no-copy GPU buffer may
	// round the length up to whole pages.
	Data     []byte
	Mapped   bool
	Metadata map[string]string // the header's __metadata__, nil if none
}

// Checkpoint is an open SafeTensors checkpoint: one file or a set of shards.
type Checkpoint struct {
	path    string
	files   []MappedFile
	tensors map[string]*Tensor
	names   []string
	closed  bool
}

// ErrNoCheckpoint is matched (errors.Is) by the error of Open for a
// directory that holds no SafeTensors file.
var ErrNoCheckpoint = errors.New("no SafeTensors checkpoint")

type noCheckpointError struct{ dir string }

func (e *noCheckpointError) Error() string {
	return e.dir + " contains no SafeTensors checkpoint (model.safetensors, model.safetensors.index.json or *.safetensors)"
}

func (e *noCheckpointError) Unwrap() error { return ErrNoCheckpoint }

// MaxIndexBytes bounds model.safetensors.index.json, which is read and
// decoded whole: 64 MiB, room for a million tensor names.
const MaxIndexBytes = 64 << 20

const (
	singleFileName = "model.safetensors"
	indexFileName  = "model.safetensors.index.json"
	damagedHint    = "the checkpoint's files are damaged or incomplete: copy, download or write them again"
)

// Open maps a checkpoint and checks the structure of every file: headers,
// tensor byte ranges against the real file sizes, and for a sharded
// checkpoint the index against its shards. It reads no tensor data.
//
// path is a directory holding model.safetensors, or else
// model.safetensors.index.json and the shards its weight_map names, or else
// any number of *.safetensors files; or the path of one .safetensors file
// or of an index file.
//
// Every problem found is reported in one *CheckpointError.
//
// The checks hold for the files as they are when opened. A file cut short
// while it is mapped faults on access, as with any mmap; replace files by
// renaming, as Writer does, and open mappings keep the old contents.
func Open(path string) (*Checkpoint, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open checkpoint: %w", err)
	}
	dir := path
	var files []string // relative to dir
	index := ""
	switch {
	case !info.IsDir() && strings.HasSuffix(path, ".index.json"):
		dir, index = filepath.Split(path)
	case !info.IsDir():
		dir = filepath.Dir(path)
		files = []string{filepath.Base(path)}
	case isFile(filepath.Join(dir, singleFileName)):
		files = []string{singleFileName}
	case isFile(filepath.Join(dir, indexFileName)):
		index = indexFileName
	default:
		matches, err := filepath.Glob(filepath.Join(dir, "*.safetensors"))
		if err != nil {
			panic("BUG: bad glob pattern: " + err.Error())
		}
		for _, m := range matches {
			if isFile(m) {
				files = append(files, filepath.Base(m))
			}
		}
		if len(files) == 0 {
			return nil, &noCheckpointError{dir: path}
		}
	}

	c := &Checkpoint{path: path, tensors: make(map[string]*Tensor)}
	var probs []Problem
	var weightMap map[string]string
	if index != "" {
		weightMap, files, probs = readIndex(dir, index)
	}
	loaded := make(map[string]bool, len(files))
	for _, name := range files {
		data, mapped, prob := mapCheckpointFile(filepath.Join(dir, name), name, shardNote(index, name, weightMap))
		if prob != nil {
			probs = append(probs, *prob)
			continue
		}
		file := len(c.files)
		c.files = append(c.files, MappedFile{Path: filepath.Join(dir, name), Data: data, Mapped: mapped})
		ps := c.addFile(name, file, data)
		probs = append(probs, ps...)
		loaded[name] = len(ps) == 0
	}
	if weightMap != nil {
		probs = append(probs, c.checkIndex(index, weightMap, loaded)...)
	}
	if len(probs) > 0 {
		c.Close()
		return nil, &CheckpointError{Checkpoint: path, Summary: "cannot be loaded", Problems: probs, Hint: damagedHint}
	}
	c.finish()
	return c, nil
}

// FromBytes opens a checkpoint held in memory, such as one embedded in the
// binary with go:embed. The tensors are views of data, which must not change
// while the Checkpoint is in use.
func FromBytes(name string, data []byte) (*Checkpoint, error) {
	c := &Checkpoint{path: name, tensors: make(map[string]*Tensor)}
	c.files = []MappedFile{{Path: name, Data: data}}
	if probs := c.addFile(name, 0, data); len(probs) > 0 {
		return nil, &CheckpointError{Checkpoint: name, Summary: "cannot be loaded", Problems: probs, Hint: damagedHint}
	}
	c.finish()
	return c, nil
}

// addFile parses one file's header and adds its tensors.
func (c *Checkpoint) addFile(display string, file int, data []byte) []Problem {
	tensors, metadata, probs := parseFile(display, file, data)
	if len(probs) > 0 {
		slices.SortStableFunc(probs, func(a, b Problem) int { return strings.Compare(a.Tensor, b.Tensor) })
		return probs
	}
	c.files[file].Metadata = metadata
	slices.SortFunc(tensors, func(a, b *Tensor) int { return strings.Compare(a.Name, b.Name) })
	for _, t := range tensors {
		if prev, ok := c.tensors[t.Name]; ok {
			probs = append(probs, Problem{Kind: DuplicateTensor, File: display, Tensor: t.Name,
				Message: fmt.Sprintf("%s: stored in both %s and %s", t.Name, c.displayName(prev.File), display)})
			continue
		}
		c.tensors[t.Name] = t
	}
	return probs
}

func (c *Checkpoint) displayName(file int) string { return filepath.Base(c.files[file].Path) }

func (c *Checkpoint) finish() {
	c.names = make([]string, 0, len(c.tensors))
	for name := range c.tensors {
		c.names = append(c.names, name)
	}
	slices.Sort(c.names)
}

// shardNote says which tensors an index puts in a shard.
func shardNote(index, shard string, weightMap map[string]string) string {
	if index == "" {
		return ""
	}
	count, first := 0, ""
	for name, s := range weightMap {
		if s == shard {
			count++
			if first == "" || name < first {
				first = name
			}
		}
	}
	if count == 1 {
		return fmt.Sprintf("%s puts %s in it", index, first)
	}
	return fmt.Sprintf("%s puts %d tensors in it, %s first", index, count, first)
}

// mapCheckpointFile maps one file of a checkpoint. shardNote, for a file
// named by an index, says which tensors the index puts in it.
func mapCheckpointFile(path, display, shardNote string) ([]byte, bool, *Problem) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && shardNote != "" {
			return nil, false, &Problem{Kind: MissingShard, File: display,
				Message: fmt.Sprintf("%s is missing: %s", display, shardNote)}
		}
		return nil, false, &Problem{Kind: BadHeader, File: display, Message: fmt.Sprintf("cannot read %s: %v", display, err)}
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, false, &Problem{Kind: BadHeader, File: display, Message: fmt.Sprintf("cannot read %s: %v", display, err)}
	}
	if !info.Mode().IsRegular() {
		return nil, false, &Problem{Kind: BadHeader, File: display, Message: fmt.Sprintf("%s is not a regular file", display)}
	}
	if info.Size() == 0 {
		// mmap cannot map nothing; the header check reports the empty file.
		return []byte{}, false, nil
	}
	data, err := mapFile(f, info.Size())
	if err != nil {
		return nil, false, &Problem{Kind: BadHeader, File: display, Message: err.Error()}
	}
	return data, true, nil
}

// readIndex reads model.safetensors.index.json and returns its weight_map
// and the shard files it names, sorted.
func readIndex(dir, index string) (map[string]string, []string, []Problem) {
	bad := func(format string, args ...any) (map[string]string, []string, []Problem) {
		return nil, nil, []Problem{{Kind: BadIndex, File: index, Message: fmt.Sprintf(format, args...)}}
	}
	if info, err := os.Stat(filepath.Join(dir, index)); err == nil && info.Size() > MaxIndexBytes {
		return bad("%s has %d bytes, more than the %d Minerva reads: not the index of a checkpoint (gpt-oss-20b's has 38 KB)", index, info.Size(), MaxIndexBytes)
	}
	text, err := os.ReadFile(filepath.Join(dir, index))
	if err != nil {
		return bad("cannot read %s: %v", index, err)
	}
	var parsed struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(text, &parsed); err != nil {
		return bad("%s is not a valid index: %v", index, err)
	}
	if len(parsed.WeightMap) == 0 {
		return bad("%s has no weight_map naming the shard of each tensor", index)
	}
	var probs []Problem
	shards := make(map[string]bool)
	for _, shard := range parsed.WeightMap {
		shards[shard] = true
	}
	files := make([]string, 0, len(shards))
	for shard := range shards {
		if !filepath.IsLocal(shard) || strings.ContainsAny(shard, `/\`) {
			probs = append(probs, Problem{Kind: BadIndex, File: index,
				Message: fmt.Sprintf("%s names the shard %q, which is not a file of the checkpoint directory", index, shard)})
			continue
		}
		files = append(files, shard)
	}
	slices.Sort(files)
	slices.SortFunc(probs, func(a, b Problem) int { return strings.Compare(a.Message, b.Message) })
	return parsed.WeightMap, files, probs
}

// checkIndex compares the weight_map with the tensors found in the shards
// that loaded.
func (c *Checkpoint) checkIndex(index string, weightMap map[string]string, loaded map[string]bool) []Problem {
	var probs []Problem
	names := make([]string, 0, len(weightMap))
	for name := range weightMap {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		shard := weightMap[name]
		if !loaded[shard] {
			continue // the shard's own problem is reported
		}
		t, ok := c.tensors[name]
		switch {
		case !ok:
			probs = append(probs, Problem{Kind: BadIndex, File: shard, Tensor: name,
				Message: fmt.Sprintf("%s: %s puts it in %s, which does not hold it", name, index, shard)})
		case c.displayName(t.File) != shard:
			probs = append(probs, Problem{Kind: BadIndex, File: shard, Tensor: name,
				Message: fmt.Sprintf("%s: %s puts it in %s, but it is stored in %s", name, index, shard, c.displayName(t.File))})
		}
	}
	stored := make([]string, 0, len(c.tensors))
	for name := range c.tensors {
		if _, ok := weightMap[name]; !ok {
			stored = append(stored, name)
		}
	}
	slices.Sort(stored)
	for _, name := range stored {
		file := c.displayName(c.tensors[name].File)
		probs = append(probs, Problem{Kind: BadIndex, File: file, Tensor: name,
			Message: fmt.Sprintf("%s: stored in %s, but %s does not list it", name, file, index)})
	}
	return probs
}

func isFile(path string) bool {
	info, err := os.Stat(path)
	return err == nil && !info.IsDir()
}

// Path is the path given to Open, or the name given to FromBytes.
func (c *Checkpoint) Path() string { return c.path }

// Tensor returns the named tensor. The result is shared: do not modify it.
func (c *Checkpoint) Tensor(name string) (*Tensor, bool) {
	c.checkOpen()
	t, ok := c.tensors[name]
	return t, ok
}

// Names lists the tensors, sorted.
func (c *Checkpoint) Names() []string {
	c.checkOpen()
	return slices.Clone(c.names)
}

// Files lists the checkpoint's files; Tensor.File indexes it.
func (c *Checkpoint) Files() []MappedFile {
	c.checkOpen()
	return slices.Clone(c.files)
}

func (c *Checkpoint) checkOpen() {
	if c.closed {
		panic("BUG: weights.Checkpoint " + c.path + " used after Close")
	}
}

// Close unmaps the files. Every Tensor.Data and MappedFile.Data of the
// checkpoint becomes invalid: touching one afterwards faults.
func (c *Checkpoint) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	var errs []error
	for _, f := range c.files {
		if f.Mapped {
			if err := unmapFile(f.Data); err != nil {
				errs = append(errs, fmt.Errorf("unmap %s: %w", f.Path, err))
			}
		}
	}
	c.files, c.tensors, c.names = nil, nil, nil
	return errors.Join(errs...)
}

// Stack assembles a tensor from parts of one dtype and shape, stacked along
// a new first dimension (a model that stores one tensor per expert, read
// by kernels that take all experts as one tensor). The result lives in
// memory, in a file of its own (not Mapped), under name; the parts stay
// in the checkpoint. Stacking a name twice is a no-op. Validate the parts
// first: Stack only checks that they agree.
func (c *Checkpoint) Stack(name string, parts []string) error {
	c.checkOpen()
	if _, done := c.tensors[name]; done {
		return nil
	}
	if len(parts) == 0 {
		return fmt.Errorf("BUG: stacking %s from no tensors", name)
	}
	first, ok := c.tensors[parts[0]]
	if !ok {
		return fmt.Errorf("%s: missing (a part of %s)", parts[0], name)
	}
	size := len(first.Data)
	data := make([]byte, 0, size*len(parts))
	for _, p := range parts {
		t, ok := c.tensors[p]
		if !ok {
			return fmt.Errorf("%s: missing (a part of %s)", p, name)
		}
		if t.DType != first.DType || !slices.Equal(t.Shape, first.Shape) {
			return fmt.Errorf("%s is %s %s but %s is %s %s: the parts of %s must agree", p, t.DType, formatShape(t.Shape), parts[0], first.DType, formatShape(first.Shape), name)
		}
		data = append(data, t.Data...)
	}
	c.files = append(c.files, MappedFile{Path: name, Data: data})
	shape := append([]int64{int64(len(parts))}, first.Shape...)
	c.tensors[name] = &Tensor{Name: name, DType: first.DType, Shape: shape, Data: data, File: len(c.files) - 1, Stacked: true}
	c.names = append(c.names, name)
	slices.Sort(c.names)
	return nil
}
