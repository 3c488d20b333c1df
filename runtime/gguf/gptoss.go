package gguf

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/minerva-ml/minerva/runtime/weights"
)

// GptOss is a gpt-oss checkpoint to export as llama.cpp's "gpt-oss" GGUF.
type GptOss struct {
	Name       string
	Checkpoint *weights.Checkpoint
	// Config is the model's config.json.
	Config []byte
	// Tokenizer is the model's tokenizer.json.
	Tokenizer []byte
	// ChatTemplate is the Jinja template written as tokenizer.chat_template;
	// "" writes HarmonyTemplate.
	ChatTemplate string
	// Dense is the GGML type of the matrices that are not MXFP4 (attention,
	// router, embeddings, output): BF16 keeps the checkpoint's bytes; F32 is
	// exact too and makes llama.cpp multiply in float32 rather than round
	// its activations to bf16 (for checking logits against a reference).
	Dense TensorType
	// Experts is the GGML type of the experts: MXFP4 (the checkpoint's
	// blocks, repacked) or F32
	// (decoded, to tell llama.cpp's MXFP4 arithmetic apart from the rest
	// when comparing logits).
	Experts TensorType
	// Progress, when set, receives a line per layer written.
	Progress io.Writer
}

// HarmonyTemplate renders a conversation in OpenAI's harmony format the way
// runtime/chat does (system message, developer instructions, user turns,
// earlier replies by their final channel, then the assistant header). It
// is written when the model directory brings no chat template of its own.
const HarmonyTemplate = `<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.
Knowledge cutoff: 2024-06
Current date: {{ strftime_now("%Y-%m-%d") }}

Reasoning: {{ reasoning_effort | default("medium") }}

# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>
{%- set ns = namespace(dev="") -%}
{%- for m in messages -%}
{%- if m.role == "system" or m.role == "developer" -%}
{%- if ns.dev -%}{%- set ns.dev = ns.dev + "\n\n" -%}{%- endif -%}
{%- set ns.dev = ns.dev + m.content -%}
{%- endif -%}
{%- endfor -%}
{%- if ns.dev -%}<|start|>developer<|message|># Instructions

{{ ns.dev }}<|end|>{%- endif -%}
{%- for m in messages -%}
{%- if m.role == "user" -%}<|start|>user<|message|>{{ m.content }}<|end|>
{%- elif m.role == "assistant" -%}<|start|>assistant<|channel|>final<|message|>{{ m.content }}<|end|>
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}<|start|>assistant{%- endif -%}`

// gptOssConfig holds the config.json fields the export needs.
type gptOssConfig struct {
	Architectures    []string        `json:"architectures"`
	HiddenSize       int             `json:"hidden_size"`
	Layers           int             `json:"num_hidden_layers"`
	Heads            int             `json:"num_attention_heads"`
	KVHeads          int             `json:"num_key_value_heads"`
	HeadDim          int             `json:"head_dim"`
	Intermediate     int             `json:"intermediate_size"`
	Experts          int             `json:"num_local_experts"`
	ExpertsPerTok    int             `json:"num_experts_per_tok"`
	ExpertsPerToken  int             `json:"experts_per_token"`
	RMSNormEps       float64         `json:"rms_norm_eps"`
	RopeTheta        float64         `json:"rope_theta"`
	SlidingWindow    int             `json:"sliding_window"`
	MaxPositions     int             `json:"max_position_embeddings"`
	VocabSize        int             `json:"vocab_size"`
	LayerTypes       []string        `json:"layer_types"`
	BosTokenID       json.RawMessage `json:"bos_token_id"`
	EosTokenID       json.RawMessage `json:"eos_token_id"`
	PadTokenID       json.RawMessage `json:"pad_token_id"`
	RopeScaling      *ropeScaling    `json:"rope_scaling"`
	TieWordEmbedding bool            `json:"tie_word_embeddings"`
}

type ropeScaling struct {
	Type     string  `json:"rope_type"`
	Factor   float64 `json:"factor"`
	Original int     `json:"original_max_position_embeddings"`
}

// tensorSource is one GGUF tensor and how to produce its bytes.
type tensorSource struct {
	info  TensorInfo
	write func(w io.Writer) error
	layer int // -1 outside the layers
}

// Export writes g as a GGUF file to w.
func (g *GptOss) Export(w io.Writer) error {
	var cfg gptOssConfig
	if err := json.Unmarshal(g.Config, &cfg); err != nil {
		return fmt.Errorf("config.json: %v", err)
	}
	if err := cfg.check(); err != nil {
		return err
	}
	if g.Dense != BF16 && g.Dense != F32 {
		return fmt.Errorf("dense matrices can be written as BF16 or F32, not %s", g.Dense)
	}
	if g.Experts != MXFP4 && g.Experts != F32 {
		return fmt.Errorf("experts can be written as MXFP4 or F32, not %s", g.Experts)
	}
	kvs, err := g.metadata(&cfg)
	if err != nil {
		return err
	}
	srcs, err := g.tensors(&cfg)
	if err != nil {
		return err
	}
	infos := make([]TensorInfo, len(srcs))
	for i, s := range srcs {
		infos[i] = s.info
	}
	last := -1
	return Write(w, kvs, infos, func(i int, w io.Writer) error {
		if g.Progress != nil && srcs[i].layer != last && srcs[i].layer >= 0 {
			last = srcs[i].layer
			fmt.Fprintf(g.Progress, "gguf: layer %d/%d\n", last+1, cfg.Layers)
		}
		return srcs[i].write(w)
	})
}

func (c *gptOssConfig) check() error {
	if c.ExpertsPerTok == 0 {
		c.ExpertsPerTok = c.ExpertsPerToken
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"hidden_size", c.HiddenSize}, {"num_hidden_layers", c.Layers}, {"num_attention_heads", c.Heads},
		{"num_key_value_heads", c.KVHeads}, {"head_dim", c.HeadDim}, {"intermediate_size", c.Intermediate},
		{"num_local_experts", c.Experts}, {"num_experts_per_tok", c.ExpertsPerTok}, {"sliding_window", c.SlidingWindow},
		{"max_position_embeddings", c.MaxPositions}} {
		if f.v <= 0 {
			return fmt.Errorf("config.json: %s is missing or not positive; a gpt-oss config.json sets it", f.name)
		}
	}
	// llama.cpp's gpt-oss alternates sliding and full attention starting
	// with a sliding layer (set_swa_pattern(2)); a checkpoint with another
	// pattern would run with the wrong masks there.
	for i, t := range c.LayerTypes {
		want := "sliding_attention"
		if i%2 == 1 {
			want = "full_attention"
		}
		if t != want {
			return fmt.Errorf("config.json: layer_types[%d] is %q; llama.cpp's gpt-oss needs sliding and full attention to alternate, sliding first", i, t)
		}
	}
	return nil
}

func tokenID(raw json.RawMessage) (uint32, bool) {
	var v any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		return 0, false
	}
	if l, ok := v.([]any); ok && len(l) > 0 {
		v = l[0]
	}
	if f, ok := v.(float64); ok && f >= 0 && f == math.Trunc(f) && f < 1<<31 {
		return uint32(f), true
	}
	return 0, false
}

func (g *GptOss) metadata(c *gptOssConfig) ([]KV, error) {
	const a = "gpt-oss."
	kvs := []KV{
		{"general.architecture", String("gpt-oss")},
		{"general.name", String(g.Name)},
		{"general.quantization_version", Uint32(2)},
		{"general.alignment", Uint32(DefaultAlignment)},
		{a + "block_count", Uint32(uint32(c.Layers))},
		{a + "context_length", Uint32(uint32(c.MaxPositions))},
		{a + "embedding_length", Uint32(uint32(c.HiddenSize))},
		{a + "feed_forward_length", Uint32(uint32(c.Intermediate))},
		{a + "expert_feed_forward_length", Uint32(uint32(c.Intermediate))},
		{a + "attention.head_count", Uint32(uint32(c.Heads))},
		{a + "attention.head_count_kv", Uint32(uint32(c.KVHeads))},
		{a + "attention.key_length", Uint32(uint32(c.HeadDim))},
		{a + "attention.value_length", Uint32(uint32(c.HeadDim))},
		{a + "attention.layer_norm_rms_epsilon", Float32(float32(c.RMSNormEps))},
		{a + "attention.sliding_window", Uint32(uint32(c.SlidingWindow))},
		{a + "rope.freq_base", Float32(float32(c.RopeTheta))},
		{a + "expert_count", Uint32(uint32(c.Experts))},
		{a + "expert_used_count", Uint32(uint32(c.ExpertsPerTok))},
	}
	if rs := c.RopeScaling; rs != nil && rs.Type == "yarn" {
		kvs = append(kvs,
			KV{a + "rope.scaling.type", String("yarn")},
			KV{a + "rope.scaling.factor", Float32(float32(rs.Factor))},
			KV{a + "rope.scaling.original_context_length", Uint32(uint32(rs.Original))})
	} else if rs != nil {
		return nil, fmt.Errorf("config.json: rope_scaling type %q; the gpt-oss export writes yarn or none", rs.Type)
	}
	tok, err := tokenizerMetadata(g.Tokenizer, c.VocabSize)
	if err != nil {
		return nil, err
	}
	kvs = append(kvs, tok...)
	for _, t := range []struct {
		key string
		raw json.RawMessage
	}{{"tokenizer.ggml.bos_token_id", c.BosTokenID}, {"tokenizer.ggml.eos_token_id", c.EosTokenID}, {"tokenizer.ggml.padding_token_id", c.PadTokenID}} {
		if id, ok := tokenID(t.raw); ok {
			kvs = append(kvs, KV{t.key, Uint32(id)})
		}
	}
	// gpt-oss prompts start with <|start|>, never a BOS token.
	kvs = append(kvs, KV{"tokenizer.ggml.add_bos_token", Bool(false)})
	tmpl := g.ChatTemplate
	if tmpl == "" {
		tmpl = HarmonyTemplate
	}
	kvs = append(kvs, KV{"tokenizer.chat_template", String(tmpl)})
	return kvs, nil
}

// The token types of llama.cpp's vocabulary (llama_token_type).
const (
	tokenNormal      = 1
	tokenControl     = 3
	tokenUserDefined = 4
	tokenUnused      = 5
)

// tokenizerMetadata turns a byte-level BPE tokenizer.json into llama.cpp's
// "gpt2" vocabulary: tokens by id, their types, and the merges.
func tokenizerMetadata(data []byte, vocabSize int) ([]KV, error) {
	var tj struct {
		AddedTokens []struct {
			ID      int    `json:"id"`
			Content string `json:"content"`
			Special bool   `json:"special"`
		} `json:"added_tokens"`
		PreTokenizer json.RawMessage `json:"pre_tokenizer"`
		Model        struct {
			Type   string            `json:"type"`
			Vocab  map[string]int    `json:"vocab"`
			Merges []json.RawMessage `json:"merges"`
		} `json:"model"`
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("the model has no tokenizer.json; llama.cpp needs the vocabulary in the GGUF")
	}
	if err := json.Unmarshal(data, &tj); err != nil {
		return nil, fmt.Errorf("tokenizer.json: %v", err)
	}
	if tj.Model.Type != "BPE" {
		return nil, fmt.Errorf("tokenizer.json: model type %q; the export writes byte-level BPE (gpt2) vocabularies", tj.Model.Type)
	}
	n := vocabSize
	for _, id := range tj.Model.Vocab {
		n = max(n, id+1)
	}
	for _, t := range tj.AddedTokens {
		n = max(n, t.ID+1)
	}
	if n > 1<<24 {
		return nil, fmt.Errorf("tokenizer.json: token id %d is out of range", n-1)
	}
	tokens := make([]string, n)
	types := make([]int32, n)
	set := make([]bool, n)
	for s, id := range tj.Model.Vocab {
		if id < 0 {
			return nil, fmt.Errorf("tokenizer.json: token %q has negative id %d", s, id)
		}
		tokens[id], types[id], set[id] = s, tokenNormal, true
	}
	for _, t := range tj.AddedTokens {
		if t.ID < 0 {
			return nil, fmt.Errorf("tokenizer.json: added token %q has negative id %d", t.Content, t.ID)
		}
		typ := int32(tokenUserDefined)
		if t.Special {
			typ = tokenControl
		}
		tokens[t.ID], types[t.ID], set[t.ID] = t.Content, typ, true
	}
	for i := range tokens {
		if !set[i] {
			tokens[i], types[i] = fmt.Sprintf("[PAD%d]", i), tokenUnused
		}
	}
	merges := make([]string, len(tj.Model.Merges))
	for i, raw := range tj.Model.Merges {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			merges[i] = s
			continue
		}
		var pair []string
		if json.Unmarshal(raw, &pair) != nil || len(pair) != 2 {
			return nil, fmt.Errorf("tokenizer.json: merge %d is neither \"a b\" nor [\"a\", \"b\"]", i)
		}
		merges[i] = pair[0] + " " + pair[1]
	}
	pre, err := preTokenizerName(tj.PreTokenizer)
	if err != nil {
		return nil, err
	}
	return []KV{
		{"tokenizer.ggml.model", String("gpt2")},
		{"tokenizer.ggml.pre", String(pre)},
		{"tokenizer.ggml.tokens", Strings(tokens)},
		{"tokenizer.ggml.token_type", Int32s(types)},
		{"tokenizer.ggml.merges", Strings(merges)},
	}, nil
}

// o200kPattern is the split pattern of o200k_base, gpt-oss's encoding,
// which llama.cpp knows as the "gpt-4o" pre-tokenizer.
const o200kPattern = `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`

// preTokenizerName names llama.cpp's pre-tokenizer for the tokenizer's
// split pattern. llama.cpp picks pre-tokenizers by name, not by pattern,
// so only a pattern it implements can be exported.
func preTokenizerName(raw json.RawMessage) (string, error) {
	if strings.Contains(string(raw), jsonEscape(o200kPattern)) {
		return "gpt-4o", nil
	}
	return "", fmt.Errorf("tokenizer.json: the pre-tokenizer is not o200k's split pattern, the only one the gpt-oss export names for llama.cpp")
}

func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return strings.Trim(string(b), `"`)
}

func (g *GptOss) tensor(name string) (*weights.Tensor, error) {
	t, ok := g.Checkpoint.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("the checkpoint has no tensor %s; is it a gpt-oss checkpoint?", name)
	}
	return t, nil
}

// shapeIs checks a tensor's shape.
func shapeIs(t *weights.Tensor, want ...int64) error {
	if len(t.Shape) != len(want) {
		return fmt.Errorf("tensor %s has shape %v, want %v", t.Name, t.Shape, want)
	}
	for i := range want {
		if t.Shape[i] != want[i] {
			return fmt.Errorf("tensor %s has shape %v, want %v", t.Name, t.Shape, want)
		}
	}
	return nil
}

// floats decodes a bf16, f16 or f32 tensor.
func floats(t *weights.Tensor) ([]float32, error) {
	n := int(t.NumElements())
	out := make([]float32, n)
	switch t.DType {
	case weights.BF16:
		weights.BF16ToF32(out, t.Data)
	case weights.F16:
		weights.F16ToF32(out, t.Data)
	case weights.F32:
		weights.F32FromBytes(out, t.Data)
	default:
		return nil, fmt.Errorf("tensor %s is %s; bf16, f16 or f32 expected", t.Name, t.DType)
	}
	return out, nil
}

func writeF32(w io.Writer, v []float32) error {
	_, err := w.Write(f32Bytes(v))
	return err
}

func f32Bytes(v []float32) []byte {
	buf := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
	}
	return buf
}

// dims reverses a row-major shape into GGML's order.
func dims(shape ...int64) []uint64 {
	d := make([]uint64, len(shape))
	for i, s := range shape {
		d[len(shape)-1-i] = uint64(s)
	}
	return d
}

func (g *GptOss) tensors(c *gptOssConfig) ([]tensorSource, error) {
	var out []tensorSource
	var firstErr error
	layer := -1
	// vector adds a 1-D (or per-expert 2-D) float tensor, written as F32,
	// as llama.cpp wants norms, biases and sinks. pick selects a strided
	// subset of the last axis (gate: even, up: odd), step 1 for all.
	vector := func(gname, hname string, shape []int64, pick, step int) {
		t, err := g.tensor(hname)
		if err == nil {
			full := append([]int64(nil), shape...)
			full[len(full)-1] *= int64(step)
			err = shapeIs(t, full...)
		}
		if err != nil {
			firstErr = cmpErr(firstErr, err)
			return
		}
		out = append(out, tensorSource{info: TensorInfo{Name: gname, Dims: dims(shape...), Type: F32}, layer: layer,
			write: func(w io.Writer) error {
				v, err := floats(t)
				if err != nil {
					return err
				}
				if step > 1 {
					sel := make([]float32, 0, len(v)/step)
					for i := pick; i < len(v); i += step {
						sel = append(sel, v[i])
					}
					v = sel
				}
				return writeF32(w, v)
			}})
	}
	// matrix adds a dense matrix in g.Dense.
	matrix := func(gname, hname string, rows, cols int64) {
		t, err := g.tensor(hname)
		if err == nil {
			err = shapeIs(t, rows, cols)
		}
		if err != nil {
			firstErr = cmpErr(firstErr, err)
			return
		}
		out = append(out, tensorSource{info: TensorInfo{Name: gname, Dims: dims(rows, cols), Type: g.Dense}, layer: layer,
			write: func(w io.Writer) error {
				if g.Dense == BF16 && t.DType == weights.BF16 {
					_, err := w.Write(t.Data)
					return err
				}
				rowBytes := int(cols) * t.DType.Size()
				row := make([]float32, cols)
				enc := make([]byte, int(cols)*4)
				for r := 0; r < int(rows); r++ {
					src := t.Data[r*rowBytes : (r+1)*rowBytes]
					switch t.DType {
					case weights.BF16:
						weights.BF16ToF32(row, src)
					case weights.F16:
						weights.F16ToF32(row, src)
					case weights.F32:
						weights.F32FromBytes(row, src)
					default:
						return fmt.Errorf("tensor %s is %s; bf16, f16 or f32 expected", t.Name, t.DType)
					}
					var b []byte
					if g.Dense == BF16 {
						b = enc[:2*cols]
						weights.F32ToBF16(b, row)
					} else {
						b = enc
						for i, x := range row {
							binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
						}
					}
					if _, err := w.Write(b); err != nil {
						return err
					}
				}
				return nil
			}})
	}
	// experts adds an MXFP4 expert tensor: rows pick, pick+step, ... of
	// the checkpoint's [experts, rows*step, cols/32, 16] blocks and
	// [experts, rows*step, cols/32] scales, repacked into block_mxfp4.
	experts := func(gname, prefix string, rows, cols int64, pick, step int) {
		E := int64(c.Experts)
		blocks, err := g.tensor(prefix + "_blocks")
		var scales *weights.Tensor
		if err == nil {
			scales, err = g.tensor(prefix + "_scales")
		}
		if err == nil && cols%32 != 0 {
			err = fmt.Errorf("tensor %s: %d columns are not whole MXFP4 blocks of 32", prefix+"_blocks", cols)
		}
		if err == nil {
			err = shapeIs(blocks, E, rows*int64(step), cols/32, 16)
		}
		if err == nil {
			err = shapeIs(scales, E, rows*int64(step), cols/32)
		}
		if err == nil && (blocks.DType != weights.U8 || scales.DType != weights.U8) {
			err = fmt.Errorf("tensors %s_blocks and _scales must be u8 (MXFP4), not %s and %s", prefix, blocks.DType, scales.DType)
		}
		if err != nil {
			firstErr = cmpErr(firstErr, err)
			return
		}
		out = append(out, tensorSource{info: TensorInfo{Name: gname, Dims: dims(E, rows, cols), Type: g.Experts}, layer: layer,
			write: func(w io.Writer) error {
				nb := int(cols / 32)
				buf := make([]byte, nb*17)
				row := make([]float32, cols)
				for e := 0; e < int(E); e++ {
					for r := 0; r < int(rows); r++ {
						src := (e*int(rows)*step + r*step + pick)
						b, s := blocks.Data[src*nb*16:(src+1)*nb*16], scales.Data[src*nb:(src+1)*nb]
						out := buf
						if g.Experts == F32 {
							weights.DequantMXFP4Row(row, b, s)
							out = f32Bytes(row)
						} else {
							RepackMXFP4(buf, b, s)
						}
						if _, err := w.Write(out); err != nil {
							return err
						}
					}
				}
				return nil
			}})
	}

	H, V := int64(c.HiddenSize), int64(c.VocabSize)
	if V <= 0 {
		if t, err := g.tensor("model.embed_tokens.weight"); err == nil && len(t.Shape) == 2 {
			V = t.Shape[0]
		}
	}
	I, E := int64(c.Intermediate), int64(c.Experts)
	q, kv := int64(c.Heads*c.HeadDim), int64(c.KVHeads*c.HeadDim)
	matrix("token_embd.weight", "model.embed_tokens.weight", V, H)
	vector("output_norm.weight", "model.norm.weight", []int64{H}, 0, 1)
	if _, ok := g.Checkpoint.Tensor("lm_head.weight"); ok || !c.TieWordEmbedding {
		matrix("output.weight", "lm_head.weight", V, H)
	}
	for l := 0; l < c.Layers; l++ {
		layer = l
		hp := fmt.Sprintf("model.layers.%d.", l)
		gp := fmt.Sprintf("blk.%d.", l)
		vector(gp+"attn_norm.weight", hp+"input_layernorm.weight", []int64{H}, 0, 1)
		vector(gp+"post_attention_norm.weight", hp+"post_attention_layernorm.weight", []int64{H}, 0, 1)
		for _, p := range []struct {
			g, h      string
			rows, col int64
		}{{"attn_q", "q_proj", q, H}, {"attn_k", "k_proj", kv, H}, {"attn_v", "v_proj", kv, H}, {"attn_output", "o_proj", H, q}} {
			matrix(gp+p.g+".weight", hp+"self_attn."+p.h+".weight", p.rows, p.col)
			vector(gp+p.g+".bias", hp+"self_attn."+p.h+".bias", []int64{p.rows}, 0, 1)
		}
		vector(gp+"attn_sinks.weight", hp+"self_attn.sinks", []int64{int64(c.Heads)}, 0, 1)
		matrix(gp+"ffn_gate_inp.weight", hp+"mlp.router.weight", E, H)
		vector(gp+"ffn_gate_inp.bias", hp+"mlp.router.bias", []int64{E}, 0, 1)
		// gate_up_proj interleaves the gate (even rows) and up (odd rows)
		// projections; llama.cpp keeps them as two tensors.
		experts(gp+"ffn_gate_exps.weight", hp+"mlp.experts.gate_up_proj", I, H, 0, 2)
		experts(gp+"ffn_up_exps.weight", hp+"mlp.experts.gate_up_proj", I, H, 1, 2)
		experts(gp+"ffn_down_exps.weight", hp+"mlp.experts.down_proj", H, I, 0, 1)
		vector(gp+"ffn_gate_exps.bias", hp+"mlp.experts.gate_up_proj_bias", []int64{E, I}, 0, 2)
		vector(gp+"ffn_up_exps.bias", hp+"mlp.experts.gate_up_proj_bias", []int64{E, I}, 1, 2)
		vector(gp+"ffn_down_exps.bias", hp+"mlp.experts.down_proj_bias", []int64{E, H}, 0, 1)
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// RepackMXFP4 writes len(scales) GGML block_mxfp4 blocks to dst (17 bytes
// each: the E8M0 scale, then 16 bytes of codes) from a row in the
// checkpoint's layout (Hugging Face / OpenAI): 16 bytes per block where
// byte i holds element 2i in its low nibble and 2i+1 in its high nibble,
// and the scales apart. GGML's byte j holds element j in its low nibble
// and element j+16 in its high nibble (dequantize_row_mxfp4).
func RepackMXFP4(dst, blocks, scales []byte) {
	for b, s := range scales {
		src := blocks[16*b : 16*b+16]
		out := dst[17*b : 17*b+17]
		out[0] = s
		var codes [32]byte
		for i, v := range src {
			codes[2*i] = v & 0x0f
			codes[2*i+1] = v >> 4
		}
		for j := 0; j < 16; j++ {
			out[1+j] = codes[j] | codes[j+16]<<4
		}
	}
}
