package gguf

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/models"
	"github.com/minerva-ml/minerva/runtime/weights"
)

func fortune(t testing.TB, dense, experts TensorType) (*GptOss, []byte) {
	t.Helper()
	ck, err := weights.FromBytes("fortune", models.FortuneFile("model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	g := &GptOss{Name: "fortune", Checkpoint: ck, Config: models.FortuneFile("config.json"),
		Tokenizer: models.FortuneFile("tokenizer.json"), Dense: dense, Experts: experts}
	var buf bytes.Buffer
	if err := g.Export(&buf); err != nil {
		t.Fatal(err)
	}
	return g, buf.Bytes()
}

// ggmlMXFP4 decodes one block_mxfp4 as ggml's dequantize_row_mxfp4 does
// (ggml-quants.c): kvalues_mxfp4 holds the E2M1 values doubled, the scale
// is GGML_E8M0_TO_FP32_HALF(e) = 2^(e-128), byte j's low nibble is
// element j and its high nibble element j+16.
func ggmlMXFP4(block []byte) [32]float32 {
	kvalues := [16]float32{0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12}
	d := float32(math.Ldexp(1, int(block[0])-128))
	var y [32]float32
	for j := 0; j < 16; j++ {
		y[j] = kvalues[block[1+j]&0x0f] * d
		y[j+16] = kvalues[block[1+j]>>4] * d
	}
	return y
}

// hfMXFP4 decodes one block as transformers' convert_moe_packed_tensors
// does: low nibble to even element, high nibble to odd, times 2^(e-127).
func hfMXFP4(codes []byte, scale byte) [32]float32 {
	lut := [16]float32{0, 0.5, 1, 1.5, 2, 3, 4, 6, 0, -0.5, -1, -1.5, -2, -3, -4, -6}
	var y [32]float32
	for i, b := range codes {
		y[2*i] = float32(math.Ldexp(float64(lut[b&0x0f]), int(scale)-127))
		y[2*i+1] = float32(math.Ldexp(float64(lut[b>>4]), int(scale)-127))
	}
	return y
}

// TestExportFortuneLayout reads the export back with a reader written from
// the GGUF specification and checks it against what llama.cpp's gpt-oss
// loader asks for (llama-arch.cpp's tensor names, llama-model.cpp's shapes
// and hparams keys) and against the checkpoint's values.
func TestExportFortuneLayout(t *testing.T) {
	g, data := fortune(t, BF16, MXFP4)
	f, err := Read(data)
	if err != nil {
		t.Fatal(err)
	}
	var cfg gptOssConfig
	if err := json.Unmarshal(g.Config, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.check(); err != nil {
		t.Fatal(err)
	}
	u32 := func(key string, want int) {
		t.Helper()
		v, ok := f.Lookup(key)
		if !ok || v.Type != TypeUint32 || v.Uint() != uint64(want) {
			t.Errorf("%s = %v %d, want uint32 %d", key, v.Type, v.Uint(), want)
		}
	}
	f32 := func(key string, want float64) {
		t.Helper()
		v, ok := f.Lookup(key)
		if !ok || v.Type != TypeFloat32 || v.Float() != float32(want) {
			t.Errorf("%s = %v %v, want float32 %v", key, v.Type, v.Float(), want)
		}
	}
	str := func(key, want string) {
		t.Helper()
		v, ok := f.Lookup(key)
		if !ok || v.Type != TypeString || v.Str() != want {
			t.Errorf("%s = %v %q, want string %q", key, v.Type, v.Str(), want)
		}
	}
	str("general.architecture", "gpt-oss")
	u32("gpt-oss.block_count", 4)
	u32("gpt-oss.embedding_length", 256)
	u32("gpt-oss.context_length", 131072)
	u32("gpt-oss.attention.head_count", 8)
	u32("gpt-oss.attention.head_count_kv", 2)
	u32("gpt-oss.attention.key_length", 32)
	u32("gpt-oss.attention.value_length", 32)
	u32("gpt-oss.attention.sliding_window", 64)
	u32("gpt-oss.expert_count", 8)
	u32("gpt-oss.expert_used_count", 2)
	u32("gpt-oss.expert_feed_forward_length", 256)
	u32("gpt-oss.rope.scaling.original_context_length", 4096)
	f32("gpt-oss.rope.freq_base", 150000)
	f32("gpt-oss.rope.scaling.factor", 32)
	f32("gpt-oss.attention.layer_norm_rms_epsilon", 1e-5)
	str("gpt-oss.rope.scaling.type", "yarn")
	str("tokenizer.ggml.model", "gpt2")
	str("tokenizer.ggml.pre", "gpt-4o")
	u32("tokenizer.ggml.eos_token_id", 1)
	u32("tokenizer.ggml.padding_token_id", 1)
	if _, ok := f.Lookup("tokenizer.ggml.bos_token_id"); ok {
		t.Error("bos_token_id written though config.json's is null")
	}
	if v, _ := f.Lookup("tokenizer.chat_template"); !strings.Contains(v.Str(), "<|start|>assistant") {
		t.Errorf("chat template %q", v.Str())
	}

	var tj struct {
		Model struct {
			Vocab  map[string]int `json:"vocab"`
			Merges [][2]string    `json:"merges"`
		} `json:"model"`
	}
	if err := json.Unmarshal(g.Tokenizer, &tj); err != nil {
		t.Fatal(err)
	}
	toks, _ := f.Lookup("tokenizer.ggml.tokens")
	types, _ := f.Lookup("tokenizer.ggml.token_type")
	merges, _ := f.Lookup("tokenizer.ggml.merges")
	if len(toks.StringArray()) != 4096 || len(types.Int32Array()) != 4096 {
		t.Fatalf("%d tokens, %d types; want 4096", len(toks.StringArray()), len(types.Int32Array()))
	}
	for s, id := range tj.Model.Vocab {
		if strings.HasPrefix(s, "<|") {
			continue // an added token, checked below
		}
		if toks.StringArray()[id] != s || types.Int32Array()[id] != tokenNormal {
			t.Fatalf("token %d = %q type %d, want %q normal", id, toks.StringArray()[id], types.Int32Array()[id], s)
		}
	}
	if toks.StringArray()[1] != "<|endoftext|>" || types.Int32Array()[1] != tokenControl {
		t.Errorf("token 1 = %q type %d, want <|endoftext|> control", toks.StringArray()[1], types.Int32Array()[1])
	}
	if len(merges.StringArray()) != len(tj.Model.Merges) {
		t.Fatalf("%d merges, want %d", len(merges.StringArray()), len(tj.Model.Merges))
	}
	for i, m := range tj.Model.Merges {
		if merges.StringArray()[i] != m[0]+" "+m[1] {
			t.Fatalf("merge %d = %q, want %q", i, merges.StringArray()[i], m[0]+" "+m[1])
		}
	}

	// The tensors llama.cpp's gpt-oss loader creates, with its shapes
	// (GGML order), and the types it needs.
	H, V, I, E, Q, KV := uint64(256), uint64(4096), uint64(256), uint64(8), uint64(256), uint64(64)
	want := map[string]TensorInfo{
		"token_embd.weight":  {Dims: []uint64{H, V}, Type: BF16},
		"output_norm.weight": {Dims: []uint64{H}, Type: F32},
		"output.weight":      {Dims: []uint64{H, V}, Type: BF16},
	}
	for l := 0; l < 4; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		for name, ti := range map[string]TensorInfo{
			"attn_norm.weight": {Dims: []uint64{H}, Type: F32}, "post_attention_norm.weight": {Dims: []uint64{H}, Type: F32},
			"attn_q.weight": {Dims: []uint64{H, Q}, Type: BF16}, "attn_q.bias": {Dims: []uint64{Q}, Type: F32},
			"attn_k.weight": {Dims: []uint64{H, KV}, Type: BF16}, "attn_k.bias": {Dims: []uint64{KV}, Type: F32},
			"attn_v.weight": {Dims: []uint64{H, KV}, Type: BF16}, "attn_v.bias": {Dims: []uint64{KV}, Type: F32},
			"attn_output.weight": {Dims: []uint64{Q, H}, Type: BF16}, "attn_output.bias": {Dims: []uint64{H}, Type: F32},
			"attn_sinks.weight":   {Dims: []uint64{8}, Type: F32},
			"ffn_gate_inp.weight": {Dims: []uint64{H, E}, Type: BF16}, "ffn_gate_inp.bias": {Dims: []uint64{E}, Type: F32},
			"ffn_gate_exps.weight": {Dims: []uint64{H, I, E}, Type: MXFP4}, "ffn_gate_exps.bias": {Dims: []uint64{I, E}, Type: F32},
			"ffn_up_exps.weight": {Dims: []uint64{H, I, E}, Type: MXFP4}, "ffn_up_exps.bias": {Dims: []uint64{I, E}, Type: F32},
			"ffn_down_exps.weight": {Dims: []uint64{I, H, E}, Type: MXFP4}, "ffn_down_exps.bias": {Dims: []uint64{H, E}, Type: F32},
		} {
			want[p+name] = ti
		}
	}
	got := map[string][]byte{}
	for _, ti := range f.Tensors {
		w, ok := want[ti.Name]
		if !ok {
			t.Errorf("unexpected tensor %s", ti.Name)
			continue
		}
		if fmt.Sprint(ti.Dims) != fmt.Sprint(w.Dims) || ti.Type != w.Type {
			t.Errorf("%s: %v %s, want %v %s", ti.Name, ti.Dims, ti.Type, w.Dims, w.Type)
		}
		got[ti.Name] = data[f.DataOffset+ti.Offset:][:ti.Size()]
	}
	if len(f.Tensors) != len(want) {
		t.Errorf("%d tensors, want %d", len(f.Tensors), len(want))
	}

	ck := g.Checkpoint
	tensor := func(name string) *weights.Tensor {
		tt, ok := ck.Tensor(name)
		if !ok {
			t.Fatalf("no %s", name)
		}
		return tt
	}
	// Dense bf16 matrices keep the checkpoint's bytes (GGML's row-major
	// [rows][cols] is the checkpoint's layout).
	if !bytes.Equal(got["blk.2.attn_k.weight"], tensor("model.layers.2.self_attn.k_proj.weight").Data) {
		t.Error("blk.2.attn_k.weight differs from the checkpoint's bytes")
	}
	// Vectors are float32 of the checkpoint's values; the gate/up bias
	// is split even/odd.
	gub := tensor("model.layers.1.mlp.experts.gate_up_proj_bias")
	for e := 0; e < int(E); e++ {
		for i := 0; i < int(I); i++ {
			g := math.Float32frombits(binary.LittleEndian.Uint32(got["blk.1.ffn_gate_exps.bias"][4*(e*int(I)+i):]))
			u := math.Float32frombits(binary.LittleEndian.Uint32(got["blk.1.ffn_up_exps.bias"][4*(e*int(I)+i):]))
			wg := weights.BF16BitsToF32(binary.LittleEndian.Uint16(gub.Data[2*(e*2*int(I)+2*i):]))
			wu := weights.BF16BitsToF32(binary.LittleEndian.Uint16(gub.Data[2*(e*2*int(I)+2*i+1):]))
			if g != wg || u != wu {
				t.Fatalf("expert %d bias %d: gate %v up %v, want %v %v", e, i, g, u, wg, wu)
			}
		}
	}
	// Every MXFP4 block decodes, by GGML's rule, to what transformers
	// decodes from the checkpoint.
	for l := 0; l < 4; l++ {
		for _, c := range []struct {
			gname, hname     string
			rows, pick, step int
		}{{"ffn_gate_exps", "gate_up_proj", int(I), 0, 2}, {"ffn_up_exps", "gate_up_proj", int(I), 1, 2}, {"ffn_down_exps", "down_proj", int(H), 0, 1}} {
			blocks := tensor(fmt.Sprintf("model.layers.%d.mlp.experts.%s_blocks", l, c.hname))
			scales := tensor(fmt.Sprintf("model.layers.%d.mlp.experts.%s_scales", l, c.hname))
			out := got[fmt.Sprintf("blk.%d.%s.weight", l, c.gname)]
			nb := int(blocks.Shape[2])
			for e := 0; e < int(E); e++ {
				for r := 0; r < c.rows; r++ {
					src := e*c.rows*c.step + r*c.step + c.pick
					dst := e*c.rows + r
					for b := 0; b < nb; b++ {
						gv := ggmlMXFP4(out[(dst*nb+b)*17:][:17])
						hv := hfMXFP4(blocks.Data[(src*nb+b)*16:][:16], scales.Data[src*nb+b])
						if gv != hv {
							t.Fatalf("layer %d %s expert %d row %d block %d: GGML decodes %v, transformers %v", l, c.gname, e, r, b, gv, hv)
						}
					}
				}
			}
		}
	}
}

func TestExportIsDeterministic(t *testing.T) {
	_, a := fortune(t, BF16, MXFP4)
	_, b := fortune(t, BF16, MXFP4)
	if !bytes.Equal(a, b) {
		t.Fatal("two exports differ")
	}
}

func TestExportF32(t *testing.T) {
	_, data := fortune(t, F32, F32)
	f, err := Read(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range f.Tensors {
		if ti.Type != F32 {
			t.Errorf("%s is %s, want F32", ti.Name, ti.Type)
		}
	}
}

func TestExportErrors(t *testing.T) {
	ck, err := weights.FromBytes("fortune", models.FortuneFile("model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(models.FortuneFile("config.json"))
	for _, c := range []struct {
		name, config, tokenizer, want string
	}{
		{"no tokenizer", cfg, "", "no tokenizer.json"},
		{"bad config", "{", "{}", "config.json"},
		{"missing field", strings.Replace(cfg, `"num_local_experts": 8`, `"num_local_experts": 0`, 1), string(models.FortuneFile("tokenizer.json")), "num_local_experts"},
		{"wrong shape", strings.Replace(cfg, `"hidden_size": 256`, `"hidden_size": 512`, 1), string(models.FortuneFile("tokenizer.json")), "shape"},
		{"layer pattern", strings.Replace(cfg, `"sliding_attention",`, `"full_attention",`, 1), string(models.FortuneFile("tokenizer.json")), "alternate"},
		{"not bpe", cfg, `{"model": {"type": "Unigram"}}`, "byte-level BPE"},
	} {
		g := &GptOss{Checkpoint: ck, Config: []byte(c.config), Tokenizer: []byte(c.tokenizer), Dense: BF16, Experts: MXFP4}
		err := g.Export(io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one that mentions %q", c.name, err, c.want)
		}
	}
}

func smallFile(t testing.TB) []byte {
	var buf bytes.Buffer
	err := Write(&buf, []KV{{"general.architecture", String("x")}, {"a.n", Uint32(7)}, {"a.list", Int32s([]int32{1, -2})}, {"a.s", Strings([]string{"p", "q"})}, {"a.b", Bool(true)}},
		[]TensorInfo{{Name: "t", Dims: []uint64{3}, Type: F32}, {Name: "m", Dims: []uint64{32, 2}, Type: MXFP4}},
		func(i int, w io.Writer) error {
			_, err := w.Write(make([]byte, []int{12, 34}[i]))
			return err
		})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	b := smallFile(t)
	f, err := Read(b)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := f.Lookup("a.list"); fmt.Sprint(v.Int32Array()) != "[1 -2]" {
		t.Errorf("a.list = %v", v.Int32Array())
	}
	if f.Tensors[1].Offset != 32 || f.DataOffset%32 != 0 || uint64(len(b)) != f.DataOffset+32+34+30 {
		t.Errorf("offsets: tensor 1 at %d, data at %d, file %d bytes", f.Tensors[1].Offset, f.DataOffset, len(b))
	}
}

func TestWriteErrors(t *testing.T) {
	short := func(int, io.Writer) error { return nil }
	if err := Write(io.Discard, nil, []TensorInfo{{Name: "t", Dims: []uint64{4}, Type: F32}}, short); err == nil || !strings.Contains(err.Error(), "bytes written") {
		t.Errorf("short tensor: %v", err)
	}
	if err := Write(io.Discard, []KV{{"k", Bool(true)}, {"k", Bool(false)}}, nil, short); err == nil {
		t.Error("duplicate key accepted")
	}
	if err := Write(io.Discard, nil, []TensorInfo{{Name: "m", Dims: []uint64{31}, Type: MXFP4}}, short); err == nil {
		t.Error("partial MXFP4 block accepted")
	}
}

func TestReadErrors(t *testing.T) {
	b := smallFile(t)
	for n := 0; n < len(b); n++ {
		if _, err := Read(b[:n]); err == nil {
			t.Fatalf("file cut to %d of %d bytes was read without error", n, len(b))
		}
	}
	bad := bytes.Clone(b)
	binary.LittleEndian.PutUint32(bad[4:], 2)
	if _, err := Read(bad); err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Errorf("version 2: %v", err)
	}
	bad = bytes.Clone(b)
	bad[0] = 'X'
	if _, err := Read(bad); err == nil || !strings.Contains(err.Error(), "not a GGUF") {
		t.Errorf("bad magic: %v", err)
	}
}

func FuzzRead(f *testing.F) {
	f.Add(smallFile(f))
	f.Add([]byte("GGUF\x03\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Read(b)
		if err != nil {
			return
		}
		for _, ti := range file.Tensors {
			_ = b[file.DataOffset+ti.Offset:][:ti.Size()]
		}
	})
}
