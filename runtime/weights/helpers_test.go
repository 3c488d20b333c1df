package weights

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

const tinyDir = "testdata/tiny-random"

// gptOssConfig holds the config.json keys that fix the tensor shapes.
type gptOssConfig struct {
	HiddenSize        int64 `json:"hidden_size"`
	IntermediateSize  int64 `json:"intermediate_size"`
	NumHiddenLayers   int   `json:"num_hidden_layers"`
	NumAttentionHeads int64 `json:"num_attention_heads"`
	NumKeyValueHeads  int64 `json:"num_key_value_heads"`
	HeadDim           int64 `json:"head_dim"`
	NumLocalExperts   int64 `json:"num_local_experts"`
	VocabSize         int64 `json:"vocab_size"`
}

func readGptOssConfig(t testing.TB, path string) gptOssConfig {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg gptOssConfig
	if err := json.Unmarshal(text, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// gptOssManifest writes down the released gpt-oss checkpoint layout as the
// fixtures README describes it: 19 tensors per layer, experts in MXFP4,
// everything else bf16. It is the test's independent oracle of the layout.
func gptOssManifest(cfg gptOssConfig) []TensorSpec {
	h, inter, e := cfg.HiddenSize, cfg.IntermediateSize, cfg.NumLocalExperts
	q, kv := cfg.NumAttentionHeads*cfg.HeadDim, cfg.NumKeyValueHeads*cfg.HeadDim
	specs := []TensorSpec{
		{Name: "model.embed_tokens.weight", DType: BF16, Shape: []int64{cfg.VocabSize, h}},
	}
	for l := range cfg.NumHiddenLayers {
		p := fmt.Sprintf("model.layers.%d.", l)
		add := func(name string, dt DType, shape ...int64) {
			specs = append(specs, TensorSpec{Name: p + name, DType: dt, Shape: shape})
		}
		add("input_layernorm.weight", BF16, h)
		add("self_attn.q_proj.weight", BF16, q, h)
		add("self_attn.q_proj.bias", BF16, q)
		add("self_attn.k_proj.weight", BF16, kv, h)
		add("self_attn.k_proj.bias", BF16, kv)
		add("self_attn.v_proj.weight", BF16, kv, h)
		add("self_attn.v_proj.bias", BF16, kv)
		add("self_attn.o_proj.weight", BF16, h, q)
		add("self_attn.o_proj.bias", BF16, h)
		add("self_attn.sinks", BF16, cfg.NumAttentionHeads)
		add("post_attention_layernorm.weight", BF16, h)
		add("mlp.router.weight", BF16, e, h)
		add("mlp.router.bias", BF16, e)
		add("mlp.experts.gate_up_proj_blocks", U8, e, 2*inter, h/32, 16)
		add("mlp.experts.gate_up_proj_scales", U8, e, 2*inter, h/32)
		add("mlp.experts.gate_up_proj_bias", BF16, e, 2*inter)
		add("mlp.experts.down_proj_blocks", U8, e, h, inter/32, 16)
		add("mlp.experts.down_proj_scales", U8, e, h, inter/32)
		add("mlp.experts.down_proj_bias", BF16, e, h)
	}
	return append(specs,
		TensorSpec{Name: "model.norm.weight", DType: BF16, Shape: []int64{h}},
		TensorSpec{Name: "lm_head.weight", DType: BF16, Shape: []int64{cfg.VocabSize, h}, Optional: true},
	)
}

func tinyManifest(t testing.TB) []TensorSpec {
	return gptOssManifest(readGptOssConfig(t, filepath.Join(tinyDir, "config.json")))
}

// craft builds a SafeTensors file from a header text and a data section of
// dataLen bytes (byte i holds i%251), with no padding added.
func craft(header string, dataLen int) []byte {
	buf := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	buf = append(buf, header...)
	for i := range dataLen {
		buf = append(buf, byte(i%251))
	}
	return buf
}

// writeTemp writes data to name in a fresh temporary directory and returns
// the directory.
func writeTemp(t testing.TB, name string, data []byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func asCheckpointError(t testing.TB, err error) *CheckpointError {
	t.Helper()
	var ce *CheckpointError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *CheckpointError", err, err)
	}
	return ce
}

func readTiny(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(tinyDir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}
