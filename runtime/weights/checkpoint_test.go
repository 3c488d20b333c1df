package weights

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"unsafe"

	"github.com/nlpodyssey/safetensors"
)

const hint = "recompile for this checkpoint: minervac compile gpt-oss --config DIR/config.json"

func TestOpenTinyRandom(t *testing.T) {
	c, err := Open(tinyDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Validate(tinyManifest(t), hint); err != nil {
		t.Fatal(err)
	}
	if got := len(c.Names()); got != 4*19+3 {
		t.Errorf("%d tensors, want %d", got, 4*19+3)
	}
	if !slices.IsSorted(c.Names()) {
		t.Error("Names are not sorted")
	}

	file := readTiny(t)
	files := c.Files()
	if len(files) != 1 || !files[0].Mapped || len(files[0].Data) != len(file) {
		t.Fatalf("Files() = %d files, mapped %v, %d bytes; want one mapped file of %d bytes",
			len(files), files[0].Mapped, len(files[0].Data), len(file))
	}
	if addr := uintptr(unsafe.Pointer(&files[0].Data[0])); addr%uintptr(os.Getpagesize()) != 0 {
		t.Errorf("mapping at %#x is not page aligned", addr)
	}
	if !bytes.Equal(files[0].Data, file) {
		t.Error("the mapping differs from the file")
	}

	// The library, reading a heap copy, is the oracle for every tensor.
	st, err := safetensors.Deserialize(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range st.Tensors() {
		got, ok := c.Tensor(want.Name)
		if !ok {
			t.Errorf("%s: absent", want.Name)
			continue
		}
		view := want.TensorView
		if got.DType.SafeTensorsName() != view.DType().String() || fmt.Sprint(got.Shape) != fmt.Sprint(view.Shape()) {
			t.Errorf("%s: %v %v, want %v %v", want.Name, got.DType, got.Shape, view.DType(), view.Shape())
		}
		if !bytes.Equal(got.Data, view.Data()) {
			t.Errorf("%s: data differs", want.Name)
		}
		if !bytes.Equal(file[got.Offset:got.Offset+int64(len(got.Data))], view.Data()) {
			t.Errorf("%s: Offset %d does not locate its data in the file", want.Name, got.Offset)
		}
		if got.NumElements()*int64(got.DType.Size()) != int64(len(got.Data)) {
			t.Errorf("%s: NumElements %d does not match %d bytes", want.Name, got.NumElements(), len(got.Data))
		}
	}
	if _, ok := c.Tensor("model.layers.4.input_layernorm.weight"); ok {
		t.Error("Tensor found a tensor that does not exist")
	}
}

func TestOpenFileAndFromBytes(t *testing.T) {
	byDir, err := Open(tinyDir)
	if err != nil {
		t.Fatal(err)
	}
	defer byDir.Close()
	byFile, err := Open(filepath.Join(tinyDir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer byFile.Close()
	fromBytes, err := FromBytes("embedded.safetensors", readTiny(t))
	if err != nil {
		t.Fatal(err)
	}
	defer fromBytes.Close()
	if fromBytes.Files()[0].Mapped {
		t.Error("FromBytes claims a mapping")
	}
	assertSameTensors(t, byDir, byFile)
	assertSameTensors(t, byDir, fromBytes)
}

func assertSameTensors(t *testing.T, want, got *Checkpoint) {
	t.Helper()
	if !slices.Equal(want.Names(), got.Names()) {
		t.Fatalf("names differ:\n%v\n%v", want.Names(), got.Names())
	}
	for _, name := range want.Names() {
		a, _ := want.Tensor(name)
		b, _ := got.Tensor(name)
		if a.DType != b.DType || !slices.Equal(a.Shape, b.Shape) || !bytes.Equal(a.Data, b.Data) {
			t.Errorf("%s differs: %v %v vs %v %v", name, a.DType, a.Shape, b.DType, b.Shape)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c, err := Open(tinyDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	specs := tinyManifest(t)
	for i := range specs {
		switch specs[i].Name {
		case "model.layers.0.self_attn.q_proj.weight":
			specs[i].Shape = []int64{128, 64}
		case "model.layers.1.mlp.router.bias":
			specs[i].DType = F32
		case "model.layers.2.self_attn.sinks":
			specs[i].DType, specs[i].Shape = F16, []int64{8}
		}
	}
	// One tensor the checkpoint lacks, one optional absent (no problem),
	// and model.norm.weight dropped from the manifest (unexpected).
	specs = slices.DeleteFunc(specs, func(s TensorSpec) bool { return s.Name == "model.norm.weight" })
	specs = append(specs,
		TensorSpec{Name: "model.layers.0.mlp.experts.gate_up_proj", DType: BF16, Shape: []int64{4, 64, 128}},
		TensorSpec{Name: "model.layers.0.self_attn.q_norm.weight", DType: BF16, Shape: []int64{16}, Optional: true},
	)
	err = c.Validate(specs, hint)
	want := `checkpoint testdata/tiny-random does not match the model's weight manifest (6 problems):
  model.layers.0.self_attn.q_proj.weight: shape [64 64], expected [128 64]
  model.layers.1.mlp.router.bias: dtype bf16, expected f32
  model.layers.2.self_attn.sinks: dtype bf16, expected f16
  model.layers.2.self_attn.sinks: shape [4], expected [8]
  model.layers.0.mlp.experts.gate_up_proj: missing, expected bf16 [4 64 128]
  model.norm.weight: unexpected bf16 [64] tensor in model.safetensors, not in the model's weight manifest
` + hint
	if err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
	ce := asCheckpointError(t, err)
	kinds := []ProblemKind{WrongShape, WrongDType, WrongDType, WrongShape, MissingTensor, UnexpectedTensor}
	for i, p := range ce.Problems {
		if p.Kind != kinds[i] {
			t.Errorf("problem %d is %v, want %v", i, p.Kind, kinds[i])
		}
	}
	if ce.Problems[4].Tensor != "model.layers.0.mlp.experts.gate_up_proj" || ce.Problems[5].File != "model.safetensors" {
		t.Errorf("problems do not name their tensor and file: %+v", ce.Problems)
	}
}

func TestValidateSummarisesManyProblems(t *testing.T) {
	c, err := Open(tinyDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := readGptOssConfig(t, filepath.Join(tinyDir, "config.json"))
	cfg.HiddenSize *= 2 // a manifest compiled for another model
	err = c.Validate(gptOssManifest(cfg), hint)
	ce := asCheckpointError(t, err)
	// Every tensor has a dimension of the hidden size but these 6 per
	// layer: sinks, router bias, q/k/v biases (heads × head_dim) and the
	// gate_up bias [E, 2I].
	if n := len(ce.Problems); n != 79-4*6 {
		t.Errorf("%d problems, want %d", n, 79-4*6)
	}
	lines := bytes.Split([]byte(err.Error()), []byte("\n"))
	if len(lines) != 1+20+1+1 {
		t.Fatalf("message has %d lines, want 23:\n%v", len(lines), err)
	}
	if got, want := string(lines[21]), fmt.Sprintf("  ... and %d more", len(ce.Problems)-20); got != want {
		t.Errorf("line 22 is %q, want %q", got, want)
	}
	if got := string(lines[22]); got != hint {
		t.Errorf("last line is %q, want the hint", got)
	}
	if got := string(lines[1]); got != "  model.embed_tokens.weight: shape [512 64], expected [512 128]" {
		t.Errorf("first problem is %q", got)
	}
}

func TestValidatePanicsOnBrokenManifest(t *testing.T) {
	c, err := Open(tinyDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	defer func() {
		if r := recover(); r == nil || !bytes.HasPrefix([]byte(fmt.Sprint(r)), []byte("BUG: ")) {
			t.Errorf("recovered %v, want a BUG panic", r)
		}
	}()
	spec := TensorSpec{Name: "lm_head.weight", DType: BF16, Shape: []int64{512, 64}}
	c.Validate([]TensorSpec{spec, spec}, hint)
}

func TestOpenTruncatedFile(t *testing.T) {
	file := readTiny(t)
	const cut = 200000
	dir := writeTemp(t, "model.safetensors", file[:cut])
	_, err := Open(dir)
	want := fmt.Sprintf(`checkpoint %s cannot be loaded (1 problem):
  model.safetensors is truncated: the header describes %d bytes, the file has %d
%s`, dir, len(file), cut, damagedHint)
	if err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
	if ce := asCheckpointError(t, err); !ce.Has(Truncated) {
		t.Errorf("problems %+v lack Truncated", ce.Problems)
	}
}

func TestOpenFileCutInsideHeader(t *testing.T) {
	file := readTiny(t)
	for _, tc := range []struct {
		size int
		want string
	}{
		{0, "model.safetensors is too short for a SafeTensors file: 0 bytes, but the format begins with an 8-byte header length"},
		{5, "model.safetensors is too short for a SafeTensors file: 5 bytes, but the format begins with an 8-byte header length"},
		{1000, "model.safetensors: the header length is 8184 bytes, but only 992 bytes follow the 8-byte length prefix (not a SafeTensors file, or cut short inside its header)"},
	} {
		dir := writeTemp(t, "model.safetensors", file[:tc.size])
		_, err := Open(dir)
		ce := asCheckpointError(t, err)
		if len(ce.Problems) != 1 || ce.Problems[0].Message != tc.want || ce.Problems[0].Kind != BadHeader {
			t.Errorf("size %d: problems %+v, want %q", tc.size, ce.Problems, tc.want)
		}
	}
}

// TestOpenCraftedHeaders checks the diagnosis of headers the library
// rejects with a message that names nothing.
func TestOpenCraftedHeaders(t *testing.T) {
	for _, tc := range []struct {
		name    string
		header  string
		dataLen int
		want    []string // problem messages
		kinds   []ProblemKind
	}{
		{
			name:    "overlap",
			header:  `{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}`,
			dataLen: 24,
			want:    []string{"x.safetensors: b: data_offsets [8 24] overlap a [0 16]"},
			kinds:   []ProblemKind{Overlap},
		},
		{
			name:    "past the end",
			header:  `{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"U8","shape":[1000],"data_offsets":[4000,5000]}}`,
			dataLen: 16,
			want: []string{
				"x.safetensors: bytes [16 4000] of the data section belong to no tensor (before b)",
				"x.safetensors: b: data_offsets [4000 5000] end past the end of the file (its data section has 16 bytes)",
			},
			kinds: []ProblemKind{Gap, OutOfRange},
		},
		{
			name:    "offsets disagree with the shape",
			header:  `{"a":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,8]}}`,
			dataLen: 8,
			want:    []string{"x.safetensors: a: data_offsets [0 8] hold 8 bytes, but bf16 [2 3] needs 12"},
			kinds:   []ProblemKind{BadSize},
		},
		{
			name:    "trailing bytes",
			header:  `{"a":{"dtype":"I32","shape":[],"data_offsets":[0,4]}}`,
			dataLen: 10,
			want:    []string{"x.safetensors has 6 bytes after the data of its last tensor: the header describes 65 bytes, the file has 71"},
			kinds:   []ProblemKind{TrailingBytes},
		},
		{
			name:    "garbage",
			header:  `{"a":{"dtype":"F32",,}`,
			dataLen: 0,
			want:    []string{"x.safetensors: the header is not valid JSON: invalid character ',' looking for beginning of object key string (at file offset 28)"},
			kinds:   []ProblemKind{BadHeader},
		},
		{
			name:    "not an object",
			header:  `[1,2,3]`,
			dataLen: 0,
			want:    []string{"x.safetensors: the header is JSON but not an object of tensors: found a JSON array"},
			kinds:   []ProblemKind{BadHeader},
		},
		{
			name: "bad entries",
			header: `{"__metadata__":{"n":1},"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]},` +
				`"b":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]},"c":{"dtype":"U8","shape":[1],"data_offsets":[1]},` +
				`"d":{"dtype":"U8","shape":[1],"data_offsets":[1,0]},"e":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":0}}`,
			dataLen: 1,
			want: []string{
				"x.safetensors: __metadata__ must be an object of strings: found a JSON number at n",
				`x.safetensors: a: unsupported dtype "F8_E4M3" (supported: BOOL U8 I8 I16 U16 F16 BF16 I32 U32 F32 F64 I64 U64)`,
				"x.safetensors: b: shape [-1] is not an array of natural numbers",
				"x.safetensors: c: data_offsets [1] is not a pair of natural numbers",
				"x.safetensors: d: data_offsets [1 0] end before they begin",
				`x.safetensors: e: the header entry has the unknown key "x"; expected only dtype, shape and data_offsets`,
			},
			kinds: []ProblemKind{BadHeader, BadHeader, BadHeader, BadHeader, BadHeader, BadHeader},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, open := range []struct {
				how string
				do  func(data []byte) error
			}{
				{"FromBytes", func(data []byte) error { _, err := FromBytes("x.safetensors", data); return err }},
				{"Open", func(data []byte) error {
					_, err := Open(filepath.Join(writeTemp(t, "x.safetensors", data), "x.safetensors"))
					return err
				}},
			} {
				err := open.do(craft(tc.header, tc.dataLen))
				ce := asCheckpointError(t, err)
				var got []string
				var kinds []ProblemKind
				for _, p := range ce.Problems {
					got = append(got, p.Message)
					kinds = append(kinds, p.Kind)
				}
				if !slices.Equal(got, tc.want) || !slices.Equal(kinds, tc.kinds) {
					t.Errorf("%s: problems\n%q %v\nwant\n%q %v", open.how, got, kinds, tc.want, tc.kinds)
				}
			}
		})
	}
}

func TestOpenNoCheckpoint(t *testing.T) {
	dir := writeTemp(t, "config.json", []byte("{}"))
	_, err := Open(dir)
	want := dir + " contains no SafeTensors checkpoint (model.safetensors, model.safetensors.index.json or *.safetensors)"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	if !errors.Is(err, ErrNoCheckpoint) {
		t.Error("error does not match ErrNoCheckpoint")
	}
	if _, err := Open(filepath.Join(dir, "absent")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a missing path: %v, want fs.ErrNotExist", err)
	}
}

// splitTiny writes tiny-random as two shards with the library's own
// serializer and an index in the form transformers writes, into dir.
func splitTiny(t *testing.T, dir string) {
	t.Helper()
	st, err := safetensors.Deserialize(readTiny(t))
	if err != nil {
		t.Fatal(err)
	}
	shards := []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}
	parts := []map[string]safetensors.TensorView{{}, {}}
	weightMap := map[string]string{}
	for _, nt := range st.Tensors() {
		part := 0
		if nt.Name >= "model.layers.2" {
			part = 1
		}
		parts[part][nt.Name] = nt.TensorView
		weightMap[nt.Name] = shards[part]
	}
	for i, part := range parts {
		data, err := safetensors.Serialize(part, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, shards[i]), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeIndex(t, dir, weightMap)
}

func writeIndex(t *testing.T, dir string, weightMap map[string]string) {
	t.Helper()
	index, err := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": 344768}, "weight_map": weightMap})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), index, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestOpenSharded(t *testing.T) {
	dir := t.TempDir()
	splitTiny(t, dir)
	sharded, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sharded.Close()
	single, err := Open(tinyDir)
	if err != nil {
		t.Fatal(err)
	}
	defer single.Close()
	assertSameTensors(t, single, sharded)
	if err := sharded.Validate(tinyManifest(t), hint); err != nil {
		t.Error(err)
	}
	files := sharded.Files()
	if len(files) != 2 || filepath.Base(files[1].Path) != "model-00002-of-00002.safetensors" {
		t.Fatalf("Files() = %+v", files)
	}
	for _, name := range sharded.Names() {
		tensor, _ := sharded.Tensor(name)
		want := 0
		if name >= "model.layers.2" {
			want = 1
		}
		mapped := files[tensor.File].Data
		if tensor.File != want || !bytes.Equal(mapped[tensor.Offset:tensor.Offset+int64(len(tensor.Data))], tensor.Data) {
			t.Errorf("%s: file %d offset %d do not locate its data", name, tensor.File, tensor.Offset)
		}
	}
	// The index file itself may be opened too.
	byIndex, err := Open(filepath.Join(dir, "model.safetensors.index.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer byIndex.Close()
	assertSameTensors(t, single, byIndex)
}

func TestOpenShardedProblems(t *testing.T) {
	t.Run("missing shard", func(t *testing.T) {
		dir := t.TempDir()
		splitTiny(t, dir)
		os.Remove(filepath.Join(dir, "model-00002-of-00002.safetensors"))
		_, err := Open(dir)
		want := fmt.Sprintf(`checkpoint %s cannot be loaded (1 problem):
  model-00002-of-00002.safetensors is missing: model.safetensors.index.json puts 39 tensors in it, model.layers.2.input_layernorm.weight first
%s`, dir, damagedHint)
		if err == nil || err.Error() != want {
			t.Fatalf("got\n%v\nwant\n%s", err, want)
		}
		if !asCheckpointError(t, err).Has(MissingShard) {
			t.Error("no MissingShard problem")
		}
	})
	t.Run("index and shards disagree", func(t *testing.T) {
		dir := t.TempDir()
		splitTiny(t, dir)
		var index struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		text, _ := os.ReadFile(filepath.Join(dir, "model.safetensors.index.json"))
		json.Unmarshal(text, &index)
		index.WeightMap["model.layers.9.self_attn.sinks"] = "model-00001-of-00002.safetensors"
		index.WeightMap["model.norm.weight"] = "model-00001-of-00002.safetensors"
		delete(index.WeightMap, "lm_head.weight")
		index.WeightMap["x"] = "../model.safetensors"
		writeIndex(t, dir, index.WeightMap)
		_, err := Open(dir)
		ce := asCheckpointError(t, err)
		var got []string
		for _, p := range ce.Problems {
			got = append(got, p.Message)
		}
		want := []string{
			`model.safetensors.index.json names the shard "../model.safetensors", which is not a file of the checkpoint directory`,
			"model.layers.9.self_attn.sinks: model.safetensors.index.json puts it in model-00001-of-00002.safetensors, which does not hold it",
			"model.norm.weight: model.safetensors.index.json puts it in model-00001-of-00002.safetensors, but it is stored in model-00002-of-00002.safetensors",
			"lm_head.weight: stored in model-00001-of-00002.safetensors, but model.safetensors.index.json does not list it",
		}
		if !slices.Equal(got, want) {
			t.Errorf("problems\n%q\nwant\n%q", got, want)
		}
	})
	t.Run("bad index", func(t *testing.T) {
		dir := writeTemp(t, "model.safetensors.index.json", []byte(`{"weight_map": {"a": 1}}`))
		_, err := Open(dir)
		ce := asCheckpointError(t, err)
		if len(ce.Problems) != 1 || ce.Problems[0].Kind != BadIndex {
			t.Errorf("problems %+v, want one BadIndex", ce.Problems)
		}
	})
}

func TestOpenGlobDuplicate(t *testing.T) {
	file := readTiny(t)
	dir := writeTemp(t, "a.safetensors", file)
	if err := os.WriteFile(filepath.Join(dir, "b.safetensors"), file, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir)
	ce := asCheckpointError(t, err)
	if len(ce.Problems) != 79 || ce.Problems[0].Message != "lm_head.weight: stored in both a.safetensors and b.safetensors" {
		t.Errorf("%d problems, first %q", len(ce.Problems), ce.Problems[0].Message)
	}

	os.Remove(filepath.Join(dir, "b.safetensors"))
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Validate(tinyManifest(t), hint); err != nil {
		t.Error(err)
	}
}

func TestUseAfterClosePanics(t *testing.T) {
	c, err := Open(tinyDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	defer func() {
		if r := recover(); r == nil {
			t.Error("Tensor after Close did not panic")
		}
	}()
	c.Tensor("lm_head.weight")
}

func TestDType(t *testing.T) {
	for d := Bool; d < numDTypes; d++ {
		for _, s := range []string{d.String(), d.SafeTensorsName()} {
			if got, err := ParseDType(s); err != nil || got != d {
				t.Errorf("ParseDType(%q) = %v, %v; want %v", s, got, err, d)
			}
		}
	}
	if BF16.String() != "bf16" || BF16.SafeTensorsName() != "BF16" || BF16.Size() != 2 || I64.Size() != 8 {
		t.Error("BF16 or I64 misdescribed")
	}
	if _, err := ParseDType("f8"); err == nil {
		t.Error("ParseDType accepted f8")
	}
	if DType(0).Valid() || DType(0).String() != "DType(0)" {
		t.Error("the zero DType passes for valid")
	}
}
