package kernels

// The data of each template family: one struct per family, so that a
// template's fields are declared, typed and spelt once, and a template
// that reads a field its family does not have fails when the templates
// are parsed and run (text/template reports an unknown field), never
// quietly renders "<no value>". Field names are the names the templates
// use.

// templateData is the data of one kernel's template.
type templateData interface {
	header() *Header
}

// Header is what every kernel template reads; render fills it in.
type Header struct {
	// Name is the kernel's name (a placeholder until the source is
	// hashed), Sig its parameter list, Implements the IR ops it runs.
	Name, Sig, Implements string
	// Variant is the calls the kernel serves: any, decode or prefill.
	Variant string
}

func (h *Header) header() *Header { return h }

// Weight says how a template reads a weight: one element (Load) or four
// (Load4, from a WType4 vector).
type Weight struct {
	DType       string
	Load, Load4 string
	WType       string
	Cols        int
	MXFP4       bool
	// Vec: dense with a row length divisible by 4, so rows are read as
	// vectors.
	Vec bool
}

// KVData describes a layer's cache for the kvstore and kvread templates.
type KVData struct {
	Format    string
	D, VD     int
	MaxGroups int
	// RotK and RotV: the format stores keys (values) Hadamard-rotated
	// (plan.KVFormat.Rotated).
	RotK, RotV bool
	// Lanes: how many lanes read one cached row together in the attend
	// kernel (attendLanes); kvread's functions take a lane's part.
	Lanes int
}

// EmbeddingData is the embedding template's.
type EmbeddingData struct {
	Header
	Weight
}

// LinearData is the linear template's: linear, linear_add (Residual) and
// rmsnorm_linear (Norm, with its weight's loads).
type LinearData struct {
	Header
	Weight
	In, Out   int
	RowsPerSG int // decode only
	// Preload is how many of a decode SIMD-group's steps of weights it
	// reads before wait_inputs (vectorised dense weights only).
	Preload   int
	Bias      bool
	BiasLoad  string
	Residual  bool
	Norm      bool
	Eps       string
	Offset    string
	NormLoad  string
	NormLoad4 string
	NormWType string
}

// GLUData is the glu template's.
type GLUData struct {
	Header
	Weight
	In, Out      int
	RowsPerSG    int // decode only
	BiasG, BiasU bool
	BiasGLoad    string
	BiasULoad    string
}

// NormData is the norm template's: rmsnorm, layernorm (Layer) and
// add_rmsnorm (Add).
type NormData struct {
	Header
	N, G int
	// Held, when set, holds the row in registers (an ungrouped RMS norm
	// whose row fits); without it the kernel reads the row from memory.
	Held   *HeldNorm
	Add    bool
	Layer  bool
	Bias   bool
	BLoad  string
	WLoad  string
	Eps    string
	Offset string
}

// QKVData is the qkv template's.
type QKVData struct {
	Header
	KV                  KVData
	Norm                bool
	NormW               Weight // how the norm weight is read
	Eps, Offset         string
	In, HD, VD, QH, KVH int
	W                   Weight // how q, k and v's weights are read (they share a dtype)
	BiasLoad            string
	BiasQ, BiasK, BiasV bool
	InvQ, InvK          []float32
	HalfQ, HalfK        int
	ScaleQ, ScaleK      string
	Ring                bool
	Capacity            int
	KRow, VRow          int
	// Preload is how many steps of a SIMD-group's first two rows it reads
	// before wait_inputs (vectorised weights only).
	Preload int
}

// AttendData is the attend template's.
type AttendData struct {
	Header
	KV                   KVData
	D, VD, KVH, Heads    int
	Group, Window        int
	Scale                string
	Softcap              string
	Ring                 bool
	Capacity, KRow, VRow int
	Sinks                bool
	SinkLoad             string
	// Unroll is how many rounds of 32/KV.Lanes positions a SIMD-group
	// step covers (attendUnroll).
	Unroll int
	// HeadsPerTG query heads of one KV head share a threadgroup, so each
	// cached row is read once for all of them (1 but in split decode).
	HeadsPerTG int
	// Splits, when set, splits decode over positions (attendSplits): the
	// attend kernel leaves partial results in scratch, attend_combine
	// merges them.
	Splits int
}

// RouterData is the router template's.
type RouterData struct {
	Header
	In, E, K int
	W        Weight
	Bias     bool
	BiasLoad string
	// Norm is add_rmsnorm_router's norm in front.
	Norm HeldNorm
	// PerGroup is add_rmsnorm_logits' experts per threadgroup.
	PerGroup int
}

// HeldNorm is the held_norm template's: an RMS norm of rows of N values
// (of a + b with Add, else of x), in groups of G, PER values a thread
// in registers; W names the weight's parameter.
type HeldNorm struct {
	N, G, Per   int
	Add         bool
	W, WLoad    string
	Eps, Offset string
}

// ExpertUpData is the expert_up template's: expert_linear, and
// moe_gate_up (SwiGLU in the epilogue).
type ExpertUpData struct {
	Header
	Weight
	In, Rows, K int
	OutW        int
	RowsPerSG   int
	// Exact: the outputs divide into SIMD-groups' rows, so no row is
	// clamped and a SIMD-group's rows are at fixed offsets.
	Exact       bool
	Shared      bool
	Bias        bool
	BiasLoad    string
	SwiGLU      bool
	Interleaved bool
	Limit       string
	Alpha       string
	UpOffset    string
}

// ExpertDownData is the expert_down template's.
type ExpertDownData struct {
	Header
	Weight
	In, Rows, K int
	RowsPerSG   int
	Bias        bool
	BiasLoad    string
}

// RopeData is the rope template's.
type RopeData struct {
	Header
	N, HD, Half int
	Inv         []float32
	Scale       string
}

// CacheKVData is the cache_kv template's.
type CacheKVData struct {
	Header
	KV                   KVData
	HD, VD, KVH          int
	Ring                 bool
	Capacity, KRow, VRow int
	QN                   int
}

// RowsData is the topk and softmax templates'.
type RowsData struct {
	Header
	N      int
	K      int  // topk
	Routes bool // softmax over routes
}

// ElementwiseData is the elementwise template's: swiglu, mix, the binary
// ops, affine and the activations.
type ElementwiseData struct {
	Header
	Op string
	N  int
	// swiglu
	Half        int
	Interleaved bool
	Limit       string
	Alpha       string
	UpOffset    string
	// mix
	K int
	// binary ops
	Binary    bool
	Symbol    string
	Broadcast bool
	BLoad     string
	// affine and the activations
	Expr string
	// narrow: the input's features per token and the first one copied
	InN, Start int
}
