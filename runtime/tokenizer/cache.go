package tokenizer

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/bits"
	"runtime/debug"
	"sync"
	"unsafe"
)

// The tokenizer cache: the tables parse builds from a tokenizer.json, in
// a binary file that loads without parsing. Parsing gpt-oss's 27 MB
// tokenizer.json takes 180-400 ms here, most of it resolving 446k merges
// to ids (random lookups in a 4 MB index) and scanning the JSON; the
// cache holds the resolved tables, so loading is a checksum, a few
// sequential checks and building the per-id strings.
//
// The file, little-endian throughout:
//
//	header (64 bytes): magic, format version, section count, the SHA-256
//	  of the tokenizer.json, the file's length, and a CRC-32C (Castagnoli)
//	  of every other byte of the file
//	directory: per section, its offset and length
//	sections, each at a multiple of 64 bytes:
//	  meta         the vocabulary index's hash seed, the number of ids
//	               with the added tokens, then the build stamp
//	  rest         tokenizer.json without "model", as JSON
//	  modelRest    "model" without "vocab" and "merges", as JSON
//	  kinds        per id of the vocabulary: 0 none, 1 a token in the
//	               byte-level alphabet, 2 one outside it
//	  offsets      per id, where its bytes start in arena; one more at the end
//	  arena        the tokens' bytes (an odd token's spelling)
//	  vocabSlots   the vocabulary index's slots ([]vocabSlot)
//	  merges       the merges by rank ([]mergeEntry)
//	  mergeSlots   the merge table's slots ([]uint32)
//
// The large tables are used in place (views of the mapped file), so they
// must be read on a little-endian machine (every platform Minerva builds
// for); elsewhere the cache is off. The small JSON parts go through the
// same code as a parse, which rebuilds the added tokens, the
// pre-tokenizer and the byte tables: cheap, and so identical by
// construction.

// cacheVersion names the format and the meaning of its tables. Bump it
// when a table's layout or meaning changes (vocabSlot, mergeEntry, the
// vocabulary hash, the kinds), or when parse would build different tables
// or accept different files; TestCacheFormatUnchanged fails when the
// tables change and the version does not. The build stamp in the file
// also changes with each release, and with each commit where builds
// record VCS information (not with -buildvcs=false, nor in a tree with
// uncommitted changes): the version is the guard that always holds.
const cacheVersion = 1

const (
	cacheMagic   = "MVTOKBIN"
	headerSize   = 64
	sectionAlign = 64
	crcOffset    = 60 // the CRC field, the header's last 4 bytes
)

const (
	secMeta = iota
	secRest
	secModelRest
	secKinds
	secOffsets
	secArena
	secVocabSlots
	secMerges
	secMergeSlots
	numSections
)

const dirSize = numSections * 16

// The tables are written and read as raw memory, so their layout is part
// of the format: these fail to compile if it changes.
var (
	_ = [1]struct{}{}[unsafe.Sizeof(vocabSlot{})-16]
	_ = [1]struct{}{}[unsafe.Sizeof(mergeEntry{})-12]
)

const (
	cacheKindNone uint8 = iota
	cacheKindModel
	cacheKindOdd
)

var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// cacheKey identifies a tokenizer.json by its contents.
func cacheKey(data []byte) [32]byte {
	return sha256.Sum256(data)
}

// buildStamp names this build of Minerva (module version and VCS
// revision where the build recorded them), so that a cache written by
// another build is not read.
var buildStamp = sync.OnceValue(func() string {
	stamp := fmt.Sprintf("format %d", cacheVersion)
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return stamp
	}
	stamp += " " + info.Main.Path + "@" + info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" || s.Key == "vcs.modified" {
			stamp += " " + s.Key + "=" + s.Value
		}
	}
	return stamp
})

// parsedTables is what a parse keeps for the cache besides the
// Tokenizer: the parts of the JSON read by encoding/json, and the kind of
// each vocabulary id before the added tokens change them.
type parsedTables struct {
	rest, modelRest []byte
	kinds           []tokenKind
}

// bytesOf views a slice of fixed-size values as its bytes.
func bytesOf[T any](s []T) []byte {
	var zero T
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(zero)))
}

// viewOf views b as a slice of T. b must be aligned for T and a whole
// number of them long.
func viewOf[T any](b []byte) ([]T, error) {
	var zero T
	size, align := int(unsafe.Sizeof(zero)), uintptr(unsafe.Alignof(zero))
	if len(b)%size != 0 {
		return nil, fmt.Errorf("a table of %d bytes is not a whole number of %d-byte entries", len(b), size)
	}
	if len(b) == 0 {
		return nil, nil
	}
	if uintptr(unsafe.Pointer(unsafe.SliceData(b)))%align != 0 {
		return nil, errors.New("BUG: a cache table is not aligned")
	}
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/size), nil
}

// newCacheFile lays out the cache file of t, which parse built from the
// tokenizer.json whose SHA-256 is key, keeping kept.
func newCacheFile(key [32]byte, t *Tokenizer, kept *parsedTables) (*cacheFile, error) {
	if !littleEndian {
		return nil, errors.New("the tokenizer cache needs a little-endian machine")
	}
	n := len(kept.kinds)
	keys := t.model.vocab.keys
	kinds := make([]byte, n)
	offsets := make([]uint32, n+1)
	size := 0
	for id, k := range kept.kinds {
		if k != kindNone {
			size += len(keys[id])
		}
	}
	if size >= 1<<32 {
		return nil, errors.New("the vocabulary is too large for the cache")
	}
	arena := make([]byte, 0, size)
	for id, k := range kept.kinds {
		offsets[id] = uint32(len(arena))
		if k == kindNone {
			continue
		}
		kinds[id] = cacheKindModel
		if _, odd := t.oddSpelling[int32(id)]; odd {
			kinds[id] = cacheKindOdd
		}
		arena = append(arena, keys[id]...)
	}
	offsets[n] = uint32(len(arena))
	meta := binary.LittleEndian.AppendUint64(nil, t.model.vocab.seed)
	meta = binary.LittleEndian.AppendUint64(meta, uint64(len(t.idKind)))
	meta = append(meta, buildStamp()...)
	sections := [numSections][]byte{
		secMeta:       meta,
		secRest:       kept.rest,
		secModelRest:  kept.modelRest,
		secKinds:      kinds,
		secOffsets:    bytesOf(offsets),
		secArena:      arena,
		secVocabSlots: bytesOf(t.model.vocab.slots),
		secMerges:     bytesOf(t.model.merges.merges),
		secMergeSlots: bytesOf(t.model.merges.slots),
	}
	c := &cacheFile{head: make([]byte, headerSize+dirSize), sections: sections}
	total := headerSize + dirSize
	for i, s := range sections {
		c.pad[i] = -total & (sectionAlign - 1)
		total += c.pad[i]
		binary.LittleEndian.PutUint64(c.head[headerSize+16*i:], uint64(total))
		binary.LittleEndian.PutUint64(c.head[headerSize+16*i+8:], uint64(len(s)))
		total += len(s)
	}
	copy(c.head, cacheMagic)
	binary.LittleEndian.PutUint32(c.head[8:], cacheVersion)
	binary.LittleEndian.PutUint32(c.head[12:], numSections)
	copy(c.head[16:48], key[:])
	binary.LittleEndian.PutUint64(c.head[48:], uint64(total))
	var zeros [sectionAlign]byte
	crc := crc32.Update(0, castagnoli, c.head[:crcOffset])
	crc = crc32.Update(crc, castagnoli, c.head[headerSize:])
	for i, s := range sections {
		crc = crc32.Update(crc, castagnoli, zeros[:c.pad[i]])
		crc = crc32.Update(crc, castagnoli, s)
	}
	binary.LittleEndian.PutUint32(c.head[crcOffset:], crc)
	return c, nil
}

// cacheFile is a cache file to write: its header and directory, then
// each section after its padding. The large sections are the
// Tokenizer's own tables, written from where they are rather than copied
// into one buffer (16 MB of fresh memory for gpt-oss).
type cacheFile struct {
	head     []byte
	pad      [numSections]int
	sections [numSections][]byte
}

// WriteTo writes the file to w.
func (c *cacheFile) WriteTo(w io.Writer) (int64, error) {
	var zeros [sectionAlign]byte
	n, err := w.Write(c.head)
	total := int64(n)
	for i, s := range c.sections {
		if err != nil {
			break
		}
		n, err = w.Write(zeros[:c.pad[i]])
		total += int64(n)
		if err == nil {
			n, err = w.Write(s)
			total += int64(n)
		}
	}
	return total, err
}

// encodeCache returns the cache file of t (see newCacheFile) as bytes.
func encodeCache(key [32]byte, t *Tokenizer, kept *parsedTables) ([]byte, error) {
	c, err := newCacheFile(key, t, kept)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	c.WriteTo(&buf)
	return buf.Bytes(), nil
}

// cacheCRC is the checksum of a cache file: every byte but its own field.
func cacheCRC(file []byte) uint32 {
	crc := crc32.Update(0, castagnoli, file[:crcOffset])
	return crc32.Update(crc, castagnoli, file[headerSize:])
}

// cacheTables are the decoded sections of a cache file, checked so that
// no lookup in them can fail: a tableSource for build.
type cacheTables struct {
	seed       uint64
	allIDs     int // the number of ids once the added tokens are in
	kinds      []byte
	offsets    []uint32
	arena      string
	slots      []vocabSlot
	merges     []mergeEntry
	mergeSlots []uint32
}

// decodeCache reads a cache file written for the tokenizer.json whose
// SHA-256 is key. The Tokenizer's tables are views of file, which must
// not change or go away while the Tokenizer is in use.
//
// A file that is truncated, corrupt, of another format or build, or for
// another tokenizer.json, is an error, never a panic or a wrong table:
// the CRC catches damage, and the checks below make sure that even a
// file with a valid CRC cannot make a lookup index out of range or loop.
func decodeCache(file []byte, key [32]byte) (*Tokenizer, error) {
	if !littleEndian {
		return nil, errors.New("the tokenizer cache needs a little-endian machine")
	}
	if len(file) < headerSize+dirSize {
		return nil, fmt.Errorf("%d bytes is too short for a cache file", len(file))
	}
	if string(file[:8]) != cacheMagic {
		return nil, errors.New("not a tokenizer cache file")
	}
	if v := binary.LittleEndian.Uint32(file[8:]); v != cacheVersion {
		return nil, fmt.Errorf("cache format %d, want %d", v, cacheVersion)
	}
	if n := binary.LittleEndian.Uint32(file[12:]); n != numSections {
		return nil, fmt.Errorf("%d sections, want %d", n, numSections)
	}
	if !bytes.Equal(file[16:48], key[:]) {
		return nil, errors.New("the cache is of another tokenizer.json")
	}
	if n := binary.LittleEndian.Uint64(file[48:]); n != uint64(len(file)) {
		return nil, fmt.Errorf("the file is %d bytes, its header says %d", len(file), n)
	}
	if got, want := cacheCRC(file), binary.LittleEndian.Uint32(file[crcOffset:]); got != want {
		return nil, fmt.Errorf("checksum %08x, the header says %08x: the file is damaged", got, want)
	}
	if uintptr(unsafe.Pointer(unsafe.SliceData(file)))%8 != 0 {
		// Sections are aligned relative to the file's start; a file read
		// into memory that is not 8-byte aligned is copied into memory that is.
		aligned := make([]uint64, (len(file)+7)/8)
		file = bytesOf(aligned)[:copy(bytesOf(aligned), file)]
	}
	var sec [numSections][]byte
	for i := range sec {
		off := binary.LittleEndian.Uint64(file[headerSize+16*i:])
		n := binary.LittleEndian.Uint64(file[headerSize+16*i+8:])
		if off%sectionAlign != 0 || off > uint64(len(file)) || n > uint64(len(file))-off {
			return nil, fmt.Errorf("section %d (%d bytes at %d) is misplaced", i, n, off)
		}
		sec[i] = file[off : off+n]
	}
	c := &cacheTables{kinds: sec[secKinds]}
	if len(sec[secMeta]) < 16 {
		return nil, errors.New("the meta section is too short")
	}
	c.seed = binary.LittleEndian.Uint64(sec[secMeta])
	if all := binary.LittleEndian.Uint64(sec[secMeta][8:]); all <= maxID {
		c.allIDs = int(all)
	}
	if stamp := string(sec[secMeta][16:]); stamp != buildStamp() {
		return nil, fmt.Errorf("written by %q, this is %q", stamp, buildStamp())
	}
	var err error
	if c.offsets, err = viewOf[uint32](sec[secOffsets]); err != nil {
		return nil, fmt.Errorf("offsets: %w", err)
	}
	if c.slots, err = viewOf[vocabSlot](sec[secVocabSlots]); err != nil {
		return nil, fmt.Errorf("vocabulary index: %w", err)
	}
	if c.merges, err = viewOf[mergeEntry](sec[secMerges]); err != nil {
		return nil, fmt.Errorf("merges: %w", err)
	}
	if c.mergeSlots, err = viewOf[uint32](sec[secMergeSlots]); err != nil {
		return nil, fmt.Errorf("merge index: %w", err)
	}
	arena := sec[secArena]
	c.arena = unsafe.String(unsafe.SliceData(arena), len(arena))
	if err := c.check(); err != nil {
		return nil, err
	}
	t, err := build(sec[secRest], sec[secModelRest], c)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	return t, nil
}

// check makes sure that every id, offset and slot in the tables is in
// range and that both hash tables have an empty slot (so a probe ends).
func (c *cacheTables) check() error {
	n := len(c.kinds)
	if n > maxID {
		return fmt.Errorf("%d ids; at most %d", n, maxID)
	}
	if len(c.offsets) != n+1 {
		return fmt.Errorf("%d offsets for %d ids", len(c.offsets), n)
	}
	for id, k := range c.kinds {
		if k > cacheKindOdd {
			return fmt.Errorf("id %d has kind %d", id, k)
		}
		if c.offsets[id] > c.offsets[id+1] {
			return fmt.Errorf("id %d: offsets %d > %d", id, c.offsets[id], c.offsets[id+1])
		}
	}
	if c.offsets[0] != 0 || int64(c.offsets[n]) != int64(len(c.arena)) {
		return fmt.Errorf("the offsets span %d..%d of an arena of %d bytes", c.offsets[0], c.offsets[n], len(c.arena))
	}
	if len(c.slots) < 2 || bits.OnesCount(uint(len(c.slots))) != 1 {
		return fmt.Errorf("the vocabulary index has %d slots, not a power of two", len(c.slots))
	}
	empty := false
	for i, sl := range c.slots {
		if sl.id == 0 {
			empty = true
			continue
		}
		id := int(sl.id) - 1
		if id < 0 || id >= n || c.kinds[id] != cacheKindModel || sl.n != c.offsets[id+1]-c.offsets[id] {
			return fmt.Errorf("vocabulary index slot %d does not match the vocabulary", i)
		}
	}
	if !empty {
		return errors.New("the vocabulary index is full")
	}
	// Merged ids come out of Encode; the pair's ids are only compared.
	for rank, e := range c.merges {
		if uint(e.left) >= uint(n) || uint(e.right) >= uint(n) || uint(e.merged) >= uint(n) || c.kinds[e.merged] == cacheKindNone {
			return fmt.Errorf("merge %d (%d %d -> %d) has an id not in the vocabulary", rank, e.left, e.right, e.merged)
		}
	}
	if len(c.mergeSlots) > 0 {
		if len(c.mergeSlots) < 2 || bits.OnesCount(uint(len(c.mergeSlots))) != 1 {
			return fmt.Errorf("the merge index has %d slots, not a power of two", len(c.mergeSlots))
		}
		empty = false
		for i, v := range c.mergeSlots {
			if v == 0 {
				empty = true
			} else if int64(v) > int64(len(c.merges)) {
				return fmt.Errorf("merge index slot %d holds rank %d of %d", i, v-1, len(c.merges))
			}
		}
		if !empty {
			return errors.New("the merge index is full")
		}
	}
	return nil
}

func (c *cacheTables) hasVocab() bool  { return true }
func (c *cacheTables) hasMerges() bool { return true } // the parse that wrote the cache checked

func (c *cacheTables) vocab(t *Tokenizer) error {
	n := len(c.kinds)
	// Room for the added tokens, which loadAddedTokens appends.
	t.idBytes = make([]string, n, max(n, c.allIDs))
	t.idKind = make([]tokenKind, n, max(n, c.allIDs))
	odd := 0
	for id, k := range c.kinds {
		if k == cacheKindNone {
			continue
		}
		t.idKind[id] = kindModel
		t.idBytes[id] = c.arena[c.offsets[id]:c.offsets[id+1]]
		if k == cacheKindOdd {
			odd++
		}
	}
	t.model.vocab = vocabIndex{seed: c.seed, slots: c.slots, mask: uint32(len(c.slots) - 1), keys: t.idBytes}
	if odd > 0 {
		t.oddSpelling = make(map[int32]string, odd)
		t.oddID = make(map[string]int32, odd)
		for id, k := range c.kinds {
			if k != cacheKindOdd {
				continue
			}
			spelling := t.idBytes[id]
			if _, dup := t.oddID[spelling]; dup {
				return fmt.Errorf("model.vocab: %q appears twice", spelling)
			}
			t.oddSpelling[int32(id)] = spelling
			t.oddID[spelling] = int32(id)
		}
	}
	return nil
}

func (c *cacheTables) mergeTable(*Tokenizer) (mergeTable, error) {
	m := mergeTable{merges: c.merges, slots: c.mergeSlots}
	if len(c.mergeSlots) > 0 {
		m.shift = uint(64 - bits.TrailingZeros(uint(len(c.mergeSlots))))
	}
	return m, nil
}
