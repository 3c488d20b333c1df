package ir

// OpKind names a kind of op. Every kind is one of the constants below and
// has one entry in the registry (ops.go), which holds all its properties;
// code outside the registry names kinds only through these constants (a
// test in this package scans the module for op names spelt as strings).
//
// The kind is a string type so that the IR's text form, kernel names and
// manifests spell it as written here.
type OpKind string

func (k OpKind) String() string { return string(k) }

// Ops an .arch file may call.
const (
	OpEmbedding    OpKind = "embedding"
	OpLinear       OpKind = "linear"
	OpRMSNorm      OpKind = "rmsnorm"
	OpLayerNorm    OpKind = "layernorm"
	OpRope         OpKind = "rope"
	OpAttention    OpKind = "attention"
	OpTopK         OpKind = "topk"
	OpSoftmax      OpKind = "softmax"
	OpExpertLinear OpKind = "expert_linear"
	OpSwiGLU       OpKind = "swiglu"
	OpMix          OpKind = "mix"
	OpAffine       OpKind = "affine"
	OpAdd          OpKind = "add"
	OpSub          OpKind = "sub"
	OpMul          OpKind = "mul"
	OpDiv          OpKind = "div"
	OpSiLU         OpKind = "silu"
	OpGELU         OpKind = "gelu"
	OpGELUTanh     OpKind = "gelu_tanh"
	OpSigmoid      OpKind = "sigmoid"
	OpTanh         OpKind = "tanh"
	OpReLU         OpKind = "relu"
	OpExp          OpKind = "exp"
	OpNarrow       OpKind = "narrow"
)

// Ops the kv_cache pass makes from attention.
const (
	OpCacheKV OpKind = "cache_kv"
	OpAttend  OpKind = "attend"
)

// Fused ops, made by the rules of compiler/fuse/rules.fuse.
const (
	OpQKVRopeStore OpKind = "qkv_rope_store"
	OpRouter       OpKind = "router"
	OpMoEGateUp    OpKind = "moe_gate_up"
	OpMoEDown      OpKind = "moe_down"
	OpGLU          OpKind = "glu"
	OpAddRMSNorm   OpKind = "add_rmsnorm"
	// OpAddRMSNormRouter is add_rmsnorm with the router after it.
	OpAddRMSNormRouter OpKind = "add_rmsnorm_router"
	OpRMSNormLinear    OpKind = "rmsnorm_linear"
	OpLinearAdd        OpKind = "linear_add"
)

// RoPE types: the values of rope's `type` attribute.
const (
	RopeDefault = "default"
	RopeLinear  = "linear"
	RopeYaRN    = "yarn"
	RopeLlama3  = "llama3"
)

// Cost is an op's work for one token.
type Cost struct {
	Flops       int64
	WeightBytes int64
}

// WeightRole says what a weight operand does to the activations, so that
// tools that make up weights (runtime/synth) give each a distribution
// that keeps activations in range.
type WeightRole uint8

const (
	// RoleOther: a matrix gets a fan-in spread, a vector a small one.
	RoleOther WeightRole = iota
	// RoleMatrix multiplies the activations: spread 1/sqrt(fan-in).
	RoleMatrix
	// RoleBias is added to the activations: a small spread around 0.
	RoleBias
	// RoleScale multiplies elementwise: near 1 (a norm's weight is near
	// 1 - offset, because the op scales by weight + offset).
	RoleScale
	// RoleLogits joins a softmax: unit spread, like scores.
	RoleLogits
)
