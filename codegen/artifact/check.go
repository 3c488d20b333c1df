package artifact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/minerva-ml/minerva/codegen"
	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/compiler/plan"
)

// checkDerived recomputes from the manifest's IR and plan options
// everything the manifest derives from them (the weight manifest, both
// plans, the kernel table and the dispatches) and returns the first field
// that differs. Backends allocate and index by these figures, so an edited
// arena.Bytes or kv.Bytes would otherwise become an index out of range.
// It costs a compilation's last passes (plan_kv, plan_arena, codegen),
// not a parse of the source: reading gpt-oss-20b's artifact, this check
// included, takes 22 to 34 ms.
func checkDerived(f *ir.Func, m *Manifest) error {
	po := compiler.PlanOptions{Ctx: m.Plan.Ctx, KV: m.Plan.KV, Batch: m.Plan.Batch}
	if err := po.Check(); err != nil {
		return fmt.Errorf("plan: %v", err)
	}
	format, err := plan.ParseKVFormat(m.Plan.KV)
	if err != nil {
		return fmt.Errorf("plan.kv: %v", err)
	}
	kv, err := plan.PlanKV(f, format, int64(po.Ctx), int64(po.Batch))
	if err != nil {
		return fmt.Errorf("plan: %v", err)
	}
	arena, err := plan.PlanArena(f, int64(po.Batch))
	if err != nil {
		return fmt.Errorf("plan: %v", err)
	}
	out, err := codegen.Generate(f, kv)
	if err != nil {
		return fmt.Errorf("the IR does not generate: %v", err)
	}
	want := &Manifest{KV: kv, Arena: arena, Dispatches: out.Dispatches}
	for _, w := range f.Weights {
		for _, t := range w.Tensors() {
			want.Weights = append(want.Weights, Tensor{Name: t.Name, DType: t.DType.String(), Shape: []int64(t.Shape)})
		}
	}
	for _, k := range out.Kernels {
		mk := Kernel{Name: k.Name, Op: k.Kind, Variant: string(k.Variant), Implements: k.Ops, Threads: k.Threads, TGMem: k.TGMem}
		for _, p := range k.Params {
			mk.Params = append(mk.Params, Param{p.Name, p.Index, p.Type})
		}
		want.Kernels = append(want.Kernels, mk)
	}
	got := &Manifest{KV: m.KV, Arena: m.Arena, Dispatches: m.Dispatches, Weights: m.Weights, Kernels: m.Kernels}
	for _, part := range []struct {
		name      string
		want, got any
	}{
		{"weights", want.Weights, got.Weights},
		{"kv", want.KV, got.KV},
		{"arena", want.Arena, got.Arena},
		{"kernels", want.Kernels, got.Kernels},
		{"dispatches", want.Dispatches, got.Dispatches},
	} {
		w, g := asJSON(part.want), asJSON(part.got)
		if path, wv, gv, differ := firstDiff(part.name, w, g); differ {
			return fmt.Errorf("%s is %s, but the program it describes needs %s", path, describe(gv), describe(wv))
		}
	}
	return nil
}

// object is a decoded JSON object that keeps its keys in order: a struct's
// fields in declaration order, so that a plan's header (Ctx, Batch) is
// compared before the sizes derived from it.
type object struct {
	keys []string
	vals map[string]any
}

// asJSON is v as manifest.json holds it, decoded into objects, lists,
// json.Number, string, bool and nil, so that a value compares equal to
// its own round trip through the file.
func asJSON(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		panic("BUG: a manifest part does not encode: " + err.Error())
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	out, err := decodeOrdered(dec)
	if err != nil {
		panic("BUG: a manifest part does not decode: " + err.Error())
	}
	return out
}

func decodeOrdered(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		o := &object{vals: map[string]any{}}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := decodeOrdered(dec)
			if err != nil {
				return nil, err
			}
			o.keys = append(o.keys, k.(string))
			o.vals[k.(string)] = v
		}
		_, err := dec.Token()
		return o, err
	case json.Delim('['):
		l := []any{}
		for dec.More() {
			v, err := decodeOrdered(dec)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		_, err := dec.Token()
		return l, err
	}
	return tok, nil
}

// firstDiff walks two decoded JSON values in order and returns the path
// of the first place they differ.
func firstDiff(path string, want, got any) (string, any, any, bool) {
	switch w := want.(type) {
	case *object:
		g, ok := got.(*object)
		if !ok {
			return path, want, got, true
		}
		keys := slices.Clone(w.keys)
		for _, k := range g.keys {
			if _, ok := w.vals[k]; !ok {
				keys = append(keys, k)
			}
		}
		for _, k := range keys {
			sub := path + "." + k
			if _, err := strconv.Atoi(k); err == nil {
				sub = path + "[" + k + "]" // a map keyed by value id
			}
			if p, wv, gv, d := firstDiff(sub, w.vals[k], g.vals[k]); d {
				return p, wv, gv, true
			}
		}
		return "", nil, nil, false
	case []any:
		g, ok := got.([]any)
		if !ok {
			return path, want, got, true
		}
		if len(w) != len(g) {
			return path + " length", json.Number(strconv.Itoa(len(w))), json.Number(strconv.Itoa(len(g))), true
		}
		for i := range w {
			if p, wv, gv, d := firstDiff(path+"["+strconv.Itoa(i)+"]", w[i], g[i]); d {
				return p, wv, gv, true
			}
		}
		return "", nil, nil, false
	}
	if want != got {
		return path, want, got, true
	}
	return "", nil, nil, false
}

// describe shows one decoded JSON value in a message.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "absent"
	case json.Number:
		return v.String()
	case string:
		return strconv.Quote(v)
	case *object:
		return "an object"
	case []any:
		return "a list"
	}
	return fmt.Sprint(v)
}
