package plan

import (
	"fmt"
	"math/rand"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/compiler/ir"
)

// TestPlanArenaMatchesReference checks PlanArena against the version it
// replaced (below, as it was), which scanned every placed value for each
// value to place and walked each chain of in-place ops from its end: both
// quadratic in the ops, and simple to trust. On random programs of
// elementwise ops (which write in place) reading random earlier values,
// the plans must be identical.
func TestPlanArenaMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	inPlace := 0
	for n := 0; n < 300; n++ {
		src := randomProgram(rng, 2+rng.Intn(60))
		f, err := ir.Parse(src)
		if err != nil {
			t.Fatalf("%v\n%s", err, src)
		}
		for _, batch := range []int64{1, 7, 128} {
			got, err1 := PlanArena(f, batch)
			want, err2 := planArenaReference(f, batch)
			if err1 != nil || err2 != nil {
				t.Fatalf("%v, %v", err1, err2)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("batch %d:\n%s\ngot  %+v\nwant %+v", batch, src, got, want)
			}
			if err := got.Check(f); err != nil {
				t.Fatal(err)
			}
			for _, sl := range got.Slots {
				if sl.InPlace >= 0 {
					inPlace++
				}
			}
		}
	}
	if inPlace == 0 {
		t.Fatal("no value was written in place: the programs do not test aliasing")
	}
}

func randomProgram(rng *rand.Rand, ops int) string {
	var b strings.Builder
	b.WriteString("model \"t\"\nweight @e f32[16, 64] \"e\"\nweight @w f32[64, 64] \"w\"\n\n")
	b.WriteString("func forward(%0: i32[seq]) -> f32[seq, 64] {\n  %1 = embedding @e, %0 : f32[seq, 64]\n")
	pick := func(last int) int {
		if rng.Intn(3) > 0 && last > 1 {
			return last - rng.Intn(min(last, 3))
		}
		return 1 + rng.Intn(last)
	}
	for i := 2; i < ops+2; i++ {
		x, y := pick(i-1), pick(i-1)
		switch rng.Intn(4) {
		case 0:
			fmt.Fprintf(&b, "  %%%d = linear %%%d, @w, _ : f32[seq, 64]\n", i, x)
		case 1:
			fmt.Fprintf(&b, "  %%%d = add %%%d, %%%d : f32[seq, 64]\n", i, x, y)
		case 2:
			fmt.Fprintf(&b, "  %%%d = silu %%%d : f32[seq, 64]\n", i, x)
		default:
			fmt.Fprintf(&b, "  %%%d = mul %%%d, %%%d : f32[seq, 64]\n", i, x, y)
		}
	}
	fmt.Fprintf(&b, "  return %%%d\n}\n", ops+1-rng.Intn(2))
	return b.String()
}

// planArenaReference is PlanArena as it was before it dropped expired
// blocks and found roots in one pass.
func planArenaReference(f *ir.Func, batch int64) (*Arena, error) {
	if batch <= 0 {
		return nil, fmt.Errorf("the batch must be positive, not %d", batch)
	}
	a := &Arena{Batch: batch, Slots: map[int]Slot{}}
	type live struct {
		v          *ir.Value
		start, end int
	}
	ranges := map[*ir.Value]*live{}
	order := []*live{}
	def := func(v *ir.Value, at int) {
		l := &live{v: v, start: at, end: at}
		ranges[v] = l
		order = append(order, l)
	}
	def(f.Input, -1)
	for i, op := range f.Ops {
		for _, arg := range op.Args {
			if arg.V != nil {
				l, ok := ranges[arg.V]
				if !ok {
					return nil, fmt.Errorf("BUG: op %d reads a value with no definition", i)
				}
				l.end = i
			}
		}
		for _, r := range op.Results {
			def(r, i)
		}
	}
	ranges[f.Output].end = len(f.Ops)
	// In-place: the result takes its operand's slot when the operand's
	// range ends at this op.
	alias := map[*ir.Value]*ir.Value{}
	for i, op := range f.Ops {
		// ir.OpDef.InPlace says which ops may overwrite an operand.
		if !ir.MustLookup(op.Kind).InPlace || len(op.Results) != 1 {
			continue
		}
		r := op.Results[0]
		for _, arg := range op.Args {
			v := arg.V
			if v == nil || v == f.Input || !v.Type.Equal(r.Type) || ranges[v].end != i {
				continue
			}
			// The operand must not itself be read again by this op through
			// another argument after being overwritten: elementwise ops read
			// each element before writing it, so a repeated operand is fine.
			root := v
			for alias[root] != nil {
				root = alias[root]
			}
			alias[r] = v
			break
		}
	}
	// Values that alias share their root's slot; extend the root's range.
	rootOf := func(v *ir.Value) *ir.Value {
		for alias[v] != nil {
			v = alias[v]
		}
		return v
	}
	for _, l := range order {
		if r := rootOf(l.v); r != l.v && ranges[r].end < l.end {
			ranges[r].end = l.end
		}
	}
	// Every size below is at most MaxBytes, so the sums cannot overflow.
	tooBig := fmt.Errorf("the activations for --batch %d would take more than %d bytes; use a smaller --batch", batch, int64(MaxBytes))
	for _, l := range order {
		n, ok := product(l.v.Type.RowBytes(), batch)
		if !ok {
			return nil, tooBig
		}
		if a.Naive, ok = sum(a.Naive, n); !ok {
			return nil, tooBig
		}
	}
	for _, op := range f.Ops {
		n, ok := BodyScratch(op, batch)
		if !ok {
			return nil, tooBig
		}
		a.Scratch = max(a.Scratch, n)
	}
	var roots []*live
	for _, l := range order {
		if rootOf(l.v) == l.v {
			roots = append(roots, l)
		}
	}
	// First fit in order of definition, larger values first among equals:
	// the classic greedy for interval placement.
	sort.SliceStable(roots, func(i, j int) bool {
		if roots[i].start != roots[j].start {
			return roots[i].start < roots[j].start
		}
		return roots[i].v.Type.RowBytes() > roots[j].v.Type.RowBytes()
	})
	type placed struct {
		off, size  int64
		start, end int
	}
	var done []placed
	offsets := map[*ir.Value]int64{}
	for _, l := range roots {
		size := align(l.v.Type.RowBytes() * batch)
		// Collect the placed blocks whose lifetime overlaps, by offset.
		var busy []placed
		for _, p := range done {
			if p.start <= l.end && l.start <= p.end {
				busy = append(busy, p)
			}
		}
		sort.Slice(busy, func(i, j int) bool { return busy[i].off < busy[j].off })
		off := int64(0)
		for _, b := range busy {
			if off+size <= b.off {
				break
			}
			if b.off+b.size > off {
				off = b.off + b.size
			}
		}
		offsets[l.v] = off
		done = append(done, placed{off, size, l.start, l.end})
		if off+size > a.Bytes {
			a.Bytes = off + size
		}
	}
	for _, l := range order {
		root := rootOf(l.v)
		slot := Slot{Offset: offsets[root], Bytes: l.v.Type.RowBytes() * batch, RowBytes: l.v.Type.RowBytes(), Start: l.start, End: l.end, InPlace: -1}
		if root != l.v {
			slot.InPlace = alias[l.v].ID
		}
		a.Slots[l.v.ID] = slot
	}
	return a, nil
}
