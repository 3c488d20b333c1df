package weights

import (
	"fmt"
	"strings"
)

// ProblemKind classifies one Problem, so that callers and tests can react to
// a kind without matching message text.
type ProblemKind uint8

const (
	// Problems with a checkpoint against a weight manifest (Validate).
	MissingTensor    ProblemKind = iota + 1 // a required tensor of the manifest is absent
	UnexpectedTensor                        // the checkpoint holds a tensor the manifest does not name
	WrongShape
	WrongDType

	// Problems with the files themselves (Open).
	BadHeader       // too short, header length past the end of the file, not JSON, malformed entry
	BadSize         // data_offsets disagree with shape and dtype
	OutOfRange      // a tensor's data lies past the end of the file
	Overlap         // two tensors share bytes
	Gap             // bytes of the data section that belong to no tensor
	Truncated       // the file is shorter than its header describes
	TrailingBytes   // the file is longer than its header describes
	BadIndex        // model.safetensors.index.json unreadable or inconsistent with its shards
	MissingShard    // a shard named by the index does not exist
	DuplicateTensor // one tensor name stored in more than one file

	// Problems with the values of the tensors checked at load (CheckValues).
	NonFinite // NaN or an infinity, or an MXFP4 scale of 0xFF (NaN)
)

var problemKindNames = [...]string{
	MissingTensor:    "missing tensor",
	UnexpectedTensor: "unexpected tensor",
	WrongShape:       "wrong shape",
	WrongDType:       "wrong dtype",
	BadHeader:        "bad header",
	BadSize:          "bad size",
	OutOfRange:       "out of range",
	Overlap:          "overlap",
	Gap:              "gap",
	Truncated:        "truncated",
	TrailingBytes:    "trailing bytes",
	BadIndex:         "bad index",
	MissingShard:     "missing shard",
	DuplicateTensor:  "duplicate tensor",
	NonFinite:        "non-finite value",
}

func (k ProblemKind) String() string {
	if int(k) < len(problemKindNames) && problemKindNames[k] != "" {
		return problemKindNames[k]
	}
	return fmt.Sprintf("ProblemKind(%d)", uint8(k))
}

// Problem is one thing wrong with a checkpoint.
type Problem struct {
	Kind    ProblemKind
	File    string // the file at fault, relative to the checkpoint directory; "" when not about one file
	Tensor  string // the tensor at fault; "" when about a whole file
	Message string // the full line shown to the user, naming the file or tensor
}

func (p Problem) String() string { return p.Message }

// maxListedProblems bounds the lines of an error message; a checkpoint of
// the wrong model can differ in every one of its hundreds of tensors.
const maxListedProblems = 20

// CheckpointError is returned by Open for damaged files and by Validate for
// a checkpoint that does not fit the model. It lists every problem found.
type CheckpointError struct {
	Checkpoint string // the path given to Open, or the name given to FromBytes
	Summary    string // what the problems amount to, e.g. "does not match the model's weight manifest"
	Problems   []Problem
	Hint       string // how to fix it; the last line of the message
}

func (e *CheckpointError) Error() string {
	var b strings.Builder
	plural := "s"
	if len(e.Problems) == 1 {
		plural = ""
	}
	fmt.Fprintf(&b, "checkpoint %s %s (%d problem%s):", e.Checkpoint, e.Summary, len(e.Problems), plural)
	for i, p := range e.Problems {
		if i == maxListedProblems {
			fmt.Fprintf(&b, "\n  ... and %d more", len(e.Problems)-maxListedProblems)
			break
		}
		b.WriteString("\n  ")
		b.WriteString(p.Message)
	}
	if e.Hint != "" {
		b.WriteString("\n")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// Has reports whether any problem is of kind k.
func (e *CheckpointError) Has(k ProblemKind) bool {
	for _, p := range e.Problems {
		if p.Kind == k {
			return true
		}
	}
	return false
}

// formatShape writes a shape the way the messages show it: [4096 2880].
func formatShape(shape []int64) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, d := range shape {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprint(&b, d)
	}
	b.WriteByte(']')
	return b.String()
}
