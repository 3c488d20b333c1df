// Package wcheck checks the weights an .arch file declares against a
// checkpoint's tensor headers, and reports what does not fit at the
// declaration: once per declaration, not once per layer, with the layers
// it concerns and a did-you-mean over the checkpoint's names.
//
// It reads headers only (names, dtypes, shapes), so `minervac check
// --model DIR` runs it without reading any tensor data. The loader runs it
// too, before the byte-level checks of runtime/weights.
package wcheck

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/dsl/diag"
)

// Header is one tensor of a checkpoint as its header describes it. DType
// is the SafeTensors spelling (BF16, F32, U8, ...).
type Header struct {
	Name  string
	DType string
	Shape []int64
}

// problem is one declaration's trouble of one kind with one finding
// (a dtype or a shape found), over the layers where it occurs.
type problem struct {
	w      *ir.Weight // the first weight of the declaration it concerns
	kind   int        // missing, wrongDType, wrongShape
	tensor string     // the physical tensor's suffix ("", "_blocks", "_scales") or the part
	found  string     // what the checkpoint has
	want   string     // what the declaration says
	guess  string     // did-you-mean, for missing tensors
	layers []int
}

const (
	missing = iota
	wrongDType
	wrongShape
)

// Check reports every declared weight whose tensors are missing or have
// another dtype or shape than declared, and every checkpoint tensor no
// declaration reads (at weightsPos, the weights block). Weights absent by
// their `when` condition are not in f.Weights and are not expected.
func Check(f *ir.Func, headers []Header, weightsPos diag.Pos, diags *diag.List) {
	byName := make(map[string]*Header, len(headers))
	for i := range headers {
		byName[headers[i].Name] = &headers[i]
	}
	claimed := map[string]bool{}
	var probs []*problem
	index := map[string]*problem{}
	add := func(w *ir.Weight, kind int, tensor, found, want string) {
		key := fmt.Sprintf("%s\x00%d\x00%s\x00%s", declKey(w), kind, tensor, found)
		p := index[key]
		if p == nil {
			p = &problem{w: w, kind: kind, tensor: tensor, found: found, want: want}
			index[key] = p
			probs = append(probs, p)
		}
		p.layers = append(p.layers, w.Layer)
	}
	for _, w := range f.Weights {
		for _, t := range w.Tensors() {
			claimed[t.Name] = true
		}
	}
	for _, w := range f.Weights {
		stack, stacked := w.Stacked()
		for j, t := range w.Tensors() {
			suffix := strings.TrimPrefix(t.Name, w.Checkpoint)
			if stacked {
				suffix = fmt.Sprintf(" (part %d)", stack.Lo+int64(j))
			}
			h := byName[t.Name]
			if h == nil {
				add(w, missing, suffix, "", "")
				continue
			}
			if !strings.EqualFold(h.DType, t.DType.String()) {
				add(w, wrongDType, suffix, strings.ToLower(h.DType), t.DType.String())
			}
			if !slices.Equal(h.Shape, []int64(t.Shape)) {
				add(w, wrongShape, suffix, formatShape(h.Shape), t.Shape.String())
			}
		}
	}

	// Unclaimed tensors, generalised over numbers: the candidates of
	// did-you-mean, and what is left is reported as unexpected.
	unclaimed := map[string][]*Header{}
	for i := range headers {
		if !claimed[headers[i].Name] {
			g := Generalise(headers[i].Name)
			unclaimed[g] = append(unclaimed[g], &headers[i])
		}
	}
	var candidates []string
	for g := range unclaimed {
		candidates = append(candidates, g)
	}
	sort.Strings(candidates)
	explained := map[string]bool{}
	for _, p := range probs {
		if p.kind != missing {
			continue
		}
		name := p.w.Checkpoint
		if st, ok := p.w.Stacked(); ok {
			name = st.Part(0)
		} else {
			name += p.tensor
		}
		if s := diag.Suggest(Generalise(name), candidates); s != "" {
			p.guess = s
			explained[s] = true
		}
	}

	total := map[string]int{}
	for _, w := range f.Weights {
		total[declKey(w)]++
	}
	for _, p := range probs {
		w := p.w
		where := layerPhrase(p.layers, total[declKey(w)])
		// The name as declared, with an MXFP4 tensor's suffix; a stacked
		// weight's part follows the name.
		pattern, part := w.Pattern, ""
		if strings.HasPrefix(p.tensor, " ") {
			part = p.tensor
		} else {
			pattern += p.tensor
		}
		switch p.kind {
		case missing:
			hint := "check the name against the checkpoint's, or make the weight conditional with `when`"
			if len(p.layers) < total[declKey(w)] && p.layers[0] >= 0 {
				hint = "the checkpoint has it for the other layers: check the config's layer count against config.json (--config or --model DIR), or `when` if only some layers have it"
			}
			if p.guess != "" {
				hint = fmt.Sprintf("did you mean %q?", p.guess)
			}
			diags.Errorf(diag.Pos(w.Pos), diag.Pos(w.End), hint, "weight %s: the checkpoint has no tensor %q%s%s", w.Decl, pattern, part, where)
		case wrongDType:
			diags.Errorf(diag.Pos(w.Pos), diag.Pos(w.End), fmt.Sprintf("declare it %s, or convert the checkpoint", p.found),
				"weight %s is declared %s but the checkpoint's %q%s is %s%s", w.Decl, p.want, pattern, part, p.found, where)
		case wrongShape:
			diags.Errorf(diag.Pos(w.Pos), diag.Pos(w.End), "check the dimensions against config.json (--config or --model DIR)",
				"weight %s is declared %s but the checkpoint's %q%s is %s%s", w.Decl, p.want, pattern, part, p.found, where)
		}
	}
	// Unread tensors named like declared ones, at other indices: the
	// checkpoint has more layers (or experts) than the config says. One
	// report for all of them.
	declared := map[string]bool{}
	for name := range claimed {
		declared[Generalise(name)] = true
	}
	var more []string
	extra := map[int]bool{}
	for _, g := range candidates {
		if explained[g] || !declared[g] {
			continue
		}
		explained[g] = true
		more = append(more, g)
		for _, h := range unclaimed[g] {
			if l, ok := firstIndex(h.Name); ok {
				extra[l] = true
			}
		}
	}
	if len(more) > 0 {
		var layers []int
		for l := range extra {
			layers = append(layers, l)
		}
		sort.Ints(layers)
		where := ""
		if len(layers) > 0 {
			where = strings.Replace(layerPhrase(layers, -1), " (in ", " for ", 1)
			where = strings.TrimSuffix(where, ")")
		}
		diags.Errorf(weightsPos, diag.Pos{}, "check the config's layer (or expert) count against config.json (--config or --model DIR), or --set",
			"the checkpoint has tensors%s that no weight reads: %d declared names at indices the config does not reach (%q, ...)", where, len(more), more[0])
	}
	for _, g := range candidates {
		if explained[g] {
			continue
		}
		hs := unclaimed[g]
		count := ""
		if len(hs) > 1 {
			count = fmt.Sprintf(" (%d tensors)", len(hs))
		}
		diags.Errorf(weightsPos, diag.Pos{}, "declare it in the weights block (with `when` if only some checkpoints have it)",
			"the checkpoint has %q%s, %s %s, which no weight declares", g, count, strings.ToLower(hs[0].DType), formatShape(hs[0].Shape))
	}
}

func declKey(w *ir.Weight) string {
	return fmt.Sprintf("%s\x00%d:%d", w.Decl, w.Pos.Line, w.Pos.Col)
}

// Generalise replaces the numbers that are whole segments of a dotted
// tensor name: the first by {i} (the layer, in the usual layout), the
// others by {n}: "model.layers.3.mlp.experts.7.up.weight" becomes
// "model.layers.{i}.mlp.experts.{n}.up.weight".
func Generalise(name string) string {
	parts := strings.Split(name, ".")
	first := true
	for i, p := range parts {
		if _, err := strconv.ParseUint(p, 10, 64); err == nil {
			if first {
				parts[i] = "{i}"
				first = false
			} else {
				parts[i] = "{n}"
			}
		}
	}
	return strings.Join(parts, ".")
}

// layerPhrase says which layers a problem concerns: nothing for a weight
// outside the layers, "in all 24 layers", "in layer 3", "in layers 0..11",
// "in layers 1, 5, 9".
func layerPhrase(layers []int, total int) string {
	if len(layers) == 0 || layers[0] < 0 {
		return ""
	}
	if len(layers) == total && total > 1 {
		return fmt.Sprintf(" (in all %d layers)", total)
	}
	if len(layers) == 1 {
		return fmt.Sprintf(" (in layer %d)", layers[0])
	}
	contiguous := true
	for i := 1; i < len(layers); i++ {
		if layers[i] != layers[i-1]+1 {
			contiguous = false
		}
	}
	if contiguous {
		return fmt.Sprintf(" (in layers %d..%d)", layers[0], layers[len(layers)-1]+1)
	}
	var s []string
	for _, l := range layers {
		s = append(s, strconv.Itoa(l))
	}
	if len(s) > 8 {
		s = append(s[:8], "...")
	}
	return fmt.Sprintf(" (in layers %s)", strings.Join(s, ", "))
}

func formatShape(s []int64) string {
	var parts []string
	for _, d := range s {
		parts = append(parts, strconv.FormatInt(d, 10))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// firstIndex is the first number that is a whole segment of a dotted name
// (the layer, in the usual layout).
func firstIndex(name string) (int, bool) {
	for _, p := range strings.Split(name, ".") {
		if n, err := strconv.Atoi(p); err == nil {
			return n, true
		}
	}
	return 0, false
}
