package weights

import (
	"fmt"
	"slices"
)

// TensorSpec is one tensor of a model's weight manifest: what the compiled
// model expects to find in the checkpoint.
type TensorSpec struct {
	Name     string // checkpoint tensor name, e.g. "model.layers.0.self_attn.q_proj.weight"
	DType    DType
	Shape    []int64
	Optional bool // may be absent (biases, a tied lm_head)
}

// Validate checks every tensor of the checkpoint against the manifest: each
// required tensor is present with the expected dtype and shape, and the
// checkpoint holds no tensor the manifest does not name. All problems come
// back in one *CheckpointError, in manifest order and then unexpected
// tensors by name, and hint (how to fix it) ends its message.
//
// A manifest that names a tensor twice or has an invalid dtype is a bug of
// its producer and panics.
func (c *Checkpoint) Validate(specs []TensorSpec, hint string) error {
	c.checkOpen()
	var probs []Problem
	inManifest := make(map[string]bool, len(specs))
	for _, s := range specs {
		if inManifest[s.Name] {
			panic(fmt.Sprintf("BUG: the weight manifest names %q twice", s.Name))
		}
		if !s.DType.Valid() {
			panic(fmt.Sprintf("BUG: the weight manifest gives %q the invalid %v", s.Name, s.DType))
		}
		inManifest[s.Name] = true
		t, ok := c.tensors[s.Name]
		if !ok {
			if !s.Optional {
				probs = append(probs, Problem{Kind: MissingTensor, Tensor: s.Name,
					Message: fmt.Sprintf("%s: missing, expected %s %s", s.Name, s.DType, formatShape(s.Shape))})
			}
			continue
		}
		if t.DType != s.DType {
			probs = append(probs, Problem{Kind: WrongDType, File: c.displayName(t.File), Tensor: s.Name,
				Message: fmt.Sprintf("%s: dtype %s, expected %s", s.Name, t.DType, s.DType)})
		}
		if !slices.Equal(t.Shape, s.Shape) {
			probs = append(probs, Problem{Kind: WrongShape, File: c.displayName(t.File), Tensor: s.Name,
				Message: fmt.Sprintf("%s: shape %s, expected %s", s.Name, formatShape(t.Shape), formatShape(s.Shape))})
		}
	}
	for _, name := range c.names {
		if inManifest[name] {
			continue
		}
		t := c.tensors[name]
		if t.Stacked {
			continue
		}
		probs = append(probs, Problem{Kind: UnexpectedTensor, File: c.displayName(t.File), Tensor: name,
			Message: fmt.Sprintf("%s: unexpected %s %s tensor in %s, not in the model's weight manifest",
				name, t.DType, formatShape(t.Shape), c.displayName(t.File))})
	}
	if len(probs) == 0 {
		return nil
	}
	return &CheckpointError{Checkpoint: c.path, Summary: "does not match the model's weight manifest", Problems: probs, Hint: hint}
}
