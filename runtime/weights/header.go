package weights

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"

	"github.com/nlpodyssey/safetensors"
)

// Bounds on one file's header, checked before it is parsed. Parsing costs
// about 15 µs and 1.5 KB of memory a tensor, so an 87 MB header of 1.5M
// tiny tensors took 30 s and 2.1 GB; at these bounds it is about a second
// and 100 MB (measured on a shared 2-core machine). Real headers are far
// smaller: gpt-oss-20b's three shards have 13, 22 and 18 KB for 459
// tensors, and released checkpoints hold at most a few thousand tensors a
// file.
const (
	// MaxHeaderBytes is the largest header read: 16 MiB, against the
	// 100 MB of the SafeTensors reference implementation.
	MaxHeaderBytes = 16 << 20
	// MaxTensorsPerFile is the most tensors one file may hold.
	MaxTensorsPerFile = 1 << 16
)

// checkHeaderBounds refuses a header past the bounds without parsing it;
// buf is the whole file. Headers whose length runs past the file are left
// to diagnoseHeader.
func checkHeaderBounds(display string, buf []byte) []Problem {
	if len(buf) < 8 {
		return nil
	}
	n := binary.LittleEndian.Uint64(buf)
	if n > uint64(len(buf)-8) {
		return nil
	}
	bad := func(format string, args ...any) []Problem {
		return []Problem{{Kind: BadHeader, File: display, Message: fmt.Sprintf(format, args...) +
			": not a checkpoint Minerva loads (real headers are well under 1 MB); split the tensors into shards or merge them"}}
	}
	if n > MaxHeaderBytes {
		return bad("%s: the header has %d bytes, more than the %d Minerva reads", display, n, MaxHeaderBytes)
	}
	// Every tensor is a key of the header's object, and so is
	// __metadata__ when there is one.
	header := buf[8 : 8+n]
	limit := MaxTensorsPerFile
	if bytes.Contains(header, []byte(`"__metadata__"`)) {
		limit++
	}
	if k := countTopLevelKeys(header); k > limit {
		return bad("%s: the header has %d entries, more than the %d tensors a file may hold", display, k, MaxTensorsPerFile)
	}
	return nil
}

// countTopLevelKeys counts the keys of a JSON object, duplicates
// included, without decoding it: the colons outside strings at depth 1.
// On text that is not a JSON object the count means nothing, but the scan
// still ends after one pass.
func countTopLevelKeys(text []byte) int {
	depth, keys := 0, 0
	inString, escaped := false, false
	for _, c := range text {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
		case c == ':' && depth == 1:
			keys++
		}
	}
	return keys
}

// parseFile reads the header of one SafeTensors file held in buf and returns
// views of its tensors. display names the file in messages. On success every
// tensor's range lies inside buf and the tensors tile the data section
// exactly; no tensor byte has been read.
func parseFile(display string, file int, buf []byte) ([]*Tensor, map[string]string, []Problem) {
	if probs := checkHeaderBounds(display, buf); probs != nil {
		return nil, nil, probs
	}
	n, md, err := safetensors.ReadMetadata(buf)
	if err != nil {
		probs := diagnoseHeader(display, buf)
		if len(probs) == 0 {
			probs = []Problem{{Kind: BadHeader, File: display,
				Message: fmt.Sprintf("%s: the SafeTensors header is rejected: %v", display, err)}}
		}
		return nil, nil, probs
	}
	dataStart := 8 + n
	infos := md.Tensors()
	tensors := make([]*Tensor, 0, len(infos))
	var probs []Problem
	for name, info := range infos {
		dt, ok := fromLibraryDType(info.DType)
		if !ok {
			panic(fmt.Sprintf("BUG: safetensors DType %v has no weights.DType", info.DType))
		}
		shape, ok := int64Shape(info.Shape)
		if !ok {
			probs = append(probs, Problem{Kind: BadHeader, File: display, Tensor: name,
				Message: fmt.Sprintf("%s: %s: shape %v has a dimension larger than %d", display, name, info.Shape, int64(math.MaxInt64))})
			continue
		}
		b, e := dataStart+info.DataOffsets[0], dataStart+info.DataOffsets[1]
		if b > e || e > uint64(len(buf)) {
			// ReadMetadata promises contiguous offsets ending at the end of
			// the buffer; do not let a library slip become a fault.
			probs = append(probs, Problem{Kind: OutOfRange, File: display, Tensor: name,
				Message: fmt.Sprintf("%s: %s: data_offsets %v lie outside the file", display, name, info.DataOffsets)})
			continue
		}
		tensors = append(tensors, &Tensor{
			Name:   name,
			DType:  dt,
			Shape:  shape,
			Data:   buf[b:e:e],
			File:   file,
			Offset: int64(b),
		})
	}
	if len(probs) > 0 {
		return nil, nil, probs
	}
	return tensors, md.Metadata(), nil
}

func int64Shape(shape []uint64) ([]int64, bool) {
	out := make([]int64, len(shape))
	for i, d := range shape {
		if d > math.MaxInt64 {
			return nil, false
		}
		out[i] = int64(d)
	}
	return out, true
}

// headerEntry is one tensor of a header as diagnoseHeader understood it.
type headerEntry struct {
	name  string
	dtype DType
	shape []uint64
	begin uint64 // data_offsets, relative to the start of the data section
	end   uint64
}

// diagnoseHeader explains why the library rejected buf, naming the tensors
// and byte ranges at fault. It reads only the header.
func diagnoseHeader(display string, buf []byte) []Problem {
	var probs []Problem
	fileProblem := func(kind ProblemKind, format string, args ...any) {
		probs = append(probs, Problem{Kind: kind, File: display, Message: fmt.Sprintf(format, args...)})
	}
	tensorProblem := func(kind ProblemKind, name, format string, args ...any) {
		probs = append(probs, Problem{Kind: kind, File: display, Tensor: name,
			Message: display + ": " + name + ": " + fmt.Sprintf(format, args...)})
	}

	size := uint64(len(buf))
	if size < 8 {
		fileProblem(BadHeader, "%s is too short for a SafeTensors file: %d bytes, but the format begins with an 8-byte header length", display, size)
		return probs
	}
	n := binary.LittleEndian.Uint64(buf)
	if n > size-8 {
		fileProblem(BadHeader, "%s: the header length is %d bytes, but only %d bytes follow the 8-byte length prefix (not a SafeTensors file, or cut short inside its header)", display, n, size-8)
		return probs
	}
	header := buf[8 : 8+n]
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(header, &raw); err != nil {
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syntax):
			// Offset counts the bytes read, the bad one included.
			fileProblem(BadHeader, "%s: the header is not valid JSON: %v (at file offset %d)", display, err, 8+syntax.Offset-1)
		case errors.As(err, &typ):
			fileProblem(BadHeader, "%s: the header is JSON but not an object of tensors: found %s", display, jsonFound(typ))
		default:
			fileProblem(BadHeader, "%s: the header is not valid JSON: %v", display, err)
		}
		return probs
	}

	names := make([]string, 0, len(raw))
	for name := range raw {
		names = append(names, name)
	}
	slices.Sort(names)
	entries := make([]headerEntry, 0, len(names))
	unreadable := 0 // tensor entries too broken to place in the file
	for _, name := range names {
		if name == "__metadata__" {
			var md map[string]string
			if err := json.Unmarshal(raw[name], &md); err != nil {
				found := "malformed JSON"
				var typ *json.UnmarshalTypeError
				if errors.As(err, &typ) {
					found = jsonFound(typ)
				}
				fileProblem(BadHeader, "%s: __metadata__ must be an object of strings: found %s", display, found)
			}
			continue
		}
		ent, msg := parseHeaderEntry(name, raw[name])
		if msg == "" && ent.begin > ent.end {
			msg = fmt.Sprintf("data_offsets [%d %d] end before they begin", ent.begin, ent.end)
		}
		if msg != "" {
			tensorProblem(BadHeader, name, "%s", msg)
			unreadable++
			continue
		}
		need, ok := byteSize(ent.dtype, ent.shape)
		switch {
		case !ok:
			tensorProblem(BadSize, name, "%s %v has more bytes than a file can hold", ent.dtype, ent.shape)
		case need != ent.end-ent.begin:
			tensorProblem(BadSize, name, "data_offsets [%d %d] hold %d bytes, but %s %v needs %d",
				ent.begin, ent.end, ent.end-ent.begin, ent.dtype, ent.shape, need)
		}
		entries = append(entries, ent)
	}

	if unreadable > 0 {
		// Without the place of every tensor, gaps and the end of the data
		// cannot be told apart from the tensors that are missing.
		return probs
	}

	// Lay the tensors out in file order to find overlaps, gaps and the end.
	slices.SortFunc(entries, func(a, b headerEntry) int {
		if a.begin != b.begin {
			return cmp.Compare(a.begin, b.begin)
		}
		if a.end != b.end {
			return cmp.Compare(a.end, b.end)
		}
		return cmp.Compare(a.name, b.name)
	})
	dataLen := size - 8 - n
	var maxEnd uint64
	var last *headerEntry // the entry that reaches maxEnd
	layoutBroken := false
	for i := range entries {
		ent := &entries[i]
		switch {
		case ent.begin < maxEnd:
			layoutBroken = true
			tensorProblem(Overlap, ent.name, "data_offsets [%d %d] overlap %s [%d %d]",
				ent.begin, ent.end, last.name, last.begin, last.end)
		case ent.begin > maxEnd:
			layoutBroken = true
			fileProblem(Gap, "%s: bytes [%d %d] of the data section belong to no tensor (before %s)",
				display, maxEnd, ent.begin, ent.name)
		}
		if ent.end >= maxEnd {
			maxEnd, last = ent.end, ent
		}
	}
	described, carry := bits.Add64(8+n, maxEnd, 0)
	switch {
	case maxEnd > dataLen && !layoutBroken && carry == 0:
		fileProblem(Truncated, "%s is truncated: the header describes %d bytes, the file has %d", display, described, size)
	case maxEnd > dataLen:
		for _, ent := range entries {
			if ent.end > dataLen {
				tensorProblem(OutOfRange, ent.name, "data_offsets [%d %d] end past the end of the file (its data section has %d bytes)",
					ent.begin, ent.end, dataLen)
			}
		}
	case maxEnd < dataLen:
		fileProblem(TrailingBytes, "%s has %d bytes after the data of its last tensor: the header describes %d bytes, the file has %d",
			display, dataLen-maxEnd, described, size)
	}
	return probs
}

// parseHeaderEntry checks one tensor entry of a header the way the library
// reads it: exactly the keys dtype, shape and data_offsets, natural numbers.
// It returns a message saying what is wrong, or "".
func parseHeaderEntry(name string, raw json.RawMessage) (headerEntry, string) {
	ent := headerEntry{name: name}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return ent, fmt.Sprintf("the header entry is not an object with dtype, shape and data_offsets: %s", clip(raw))
	}
	for key := range fields {
		if key != "dtype" && key != "shape" && key != "data_offsets" {
			return ent, fmt.Sprintf("the header entry has the unknown key %q; expected only dtype, shape and data_offsets", key)
		}
	}
	var dtype string
	if f, ok := fields["dtype"]; !ok {
		return ent, "the header entry has no dtype"
	} else if err := json.Unmarshal(f, &dtype); err != nil {
		return ent, fmt.Sprintf("dtype %s is not a string", clip(f))
	}
	st, err := safetensors.ParseDType(dtype)
	if err != nil {
		return ent, fmt.Sprintf("unsupported dtype %q (supported: BOOL U8 I8 I16 U16 F16 BF16 I32 U32 F32 F64 I64 U64)", dtype)
	}
	ent.dtype, _ = fromLibraryDType(st)
	f, ok := fields["shape"]
	if !ok {
		return ent, "the header entry has no shape"
	}
	if ent.shape, ok = naturals(f); !ok {
		return ent, fmt.Sprintf("shape %s is not an array of natural numbers", clip(f))
	}
	f, ok = fields["data_offsets"]
	if !ok {
		return ent, "the header entry has no data_offsets"
	}
	offsets, ok := naturals(f)
	if !ok || len(offsets) != 2 {
		return ent, fmt.Sprintf("data_offsets %s is not a pair of natural numbers", clip(f))
	}
	ent.begin, ent.end = offsets[0], offsets[1]
	return ent, ""
}

func naturals(raw json.RawMessage) ([]uint64, bool) {
	var nums []json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&nums); err != nil || nums == nil {
		return nil, false
	}
	out := make([]uint64, len(nums))
	for i, num := range nums {
		v, err := strconv.ParseUint(num.String(), 10, 64)
		if err != nil {
			return nil, false
		}
		out[i] = v
	}
	return out, true
}

// byteSize is the number of bytes of a tensor, or false if it overflows.
func byteSize(dt DType, shape []uint64) (uint64, bool) {
	n := uint64(dt.Size())
	for _, d := range shape {
		hi, lo := bits.Mul64(n, d)
		if hi != 0 {
			return 0, false
		}
		n = lo
	}
	return n, true
}

// clip shortens raw JSON for a message.
func clip(raw []byte) string {
	const max = 60
	if len(raw) > max {
		return string(raw[:max]) + "..."
	}
	return string(raw)
}

// jsonFound names what a JSON value held where another type was expected,
// in words of our own: encoding/json's full message names Go types, and its
// wording changes between Go releases (json.RawMessage became
// jsontext.Value in 1.27).
func jsonFound(typ *json.UnmarshalTypeError) string {
	where := ""
	if typ.Field != "" {
		where = " at " + typ.Field
	}
	return "a JSON " + typ.Value + where
}
