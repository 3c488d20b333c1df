package plan

import (
	"fmt"
	"sort"

	"github.com/minerva-ml/minerva/compiler/ir"
)

// Slot is where a value lives in the arena.
type Slot struct {
	Offset int64
	// Bytes is the size at the plan's batch: RowBytes * Batch.
	Bytes int64
	// RowBytes is the size of one token's row; a call of n tokens uses
	// the first n rows.
	RowBytes int64
	// Start and End are the indices of the op that defines the value and
	// of its last reader (len(ops) for the function's output).
	Start, End int
	// InPlace names the operand value whose space this value reuses, or -1.
	InPlace int
}

// Arena is the placement of every activation in one buffer.
type Arena struct {
	Batch int64
	Bytes int64
	// Naive is the size if every value had its own space.
	Naive int64
	// Slots maps value IDs to places.
	Slots map[int]Slot
	// Scratch is the space a fused op needs for the values inside its body
	// that are not its results (on Metal they live in threadgroup memory or
	// registers; the CPU keeps them here). Fused ops run one at a time, so
	// one region of the largest need serves them all.
	Scratch int64
}

// PlanArena places every value of f by liveness: values whose live ranges
// do not intersect may share bytes. batch is the most tokens one call
// processes.
func PlanArena(f *ir.Func, batch int64) (*Arena, error) {
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
			alias[r] = v
			break
		}
	}
	// Values that alias share their root's slot; extend the root's range.
	// An operand is defined before its reader, so one pass in order of
	// definition finds every root (walking each chain of in-place ops
	// from its end was quadratic in the chain's length).
	roots := make(map[*ir.Value]*ir.Value, len(order))
	for _, l := range order {
		if a, ok := alias[l.v]; ok {
			roots[l.v] = roots[a]
		} else {
			roots[l.v] = l.v
		}
	}
	rootOf := func(v *ir.Value) *ir.Value { return roots[v] }
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
	var placing []*live
	for _, l := range order {
		if rootOf(l.v) == l.v {
			placing = append(placing, l)
		}
	}
	// First fit in order of definition, larger values first among equals:
	// the classic greedy for interval placement.
	sort.SliceStable(placing, func(i, j int) bool {
		if placing[i].start != placing[j].start {
			return placing[i].start < placing[j].start
		}
		return placing[i].v.Type.RowBytes() > placing[j].v.Type.RowBytes()
	})
	type placed struct {
		off, size  int64
		start, end int
	}
	// Values are placed in order of start, so every placed block started
	// no later than this one; a block that ended before this one starts
	// ends before every later one starts too. Dropping those for good keeps
	// each step to the values live at once: scanning every placed block
	// made planning quadratic in the ops (5000 ops took seconds).
	var active []placed
	offsets := map[*ir.Value]int64{}
	for _, l := range placing {
		size := align(l.v.Type.RowBytes() * batch)
		kept := active[:0]
		for _, p := range active {
			if p.end >= l.start {
				kept = append(kept, p)
			}
		}
		active = kept
		// The placed blocks whose lifetime overlaps, by offset.
		busy := append([]placed(nil), active...)
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
		active = append(active, placed{off, size, l.start, l.end})
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

// Check proves the plan safe: no two values that are live at the same time
// overlap, except a value written in place over an operand that dies at
// that op. It returns every conflict.
func (a *Arena) Check(f *ir.Func) error {
	type item struct {
		id   int
		slot Slot
	}
	var items []item
	for id, s := range a.Slots {
		items = append(items, item{id, s})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].id < items[j].id })
	inPlaceOf := map[int]int{}
	for _, it := range items {
		if it.slot.InPlace >= 0 {
			inPlaceOf[it.id] = it.slot.InPlace
		}
	}
	related := func(x, y int) bool {
		// x was written in place over y (or over something y was written
		// over): they are one storage location handed from value to value.
		for x2 := x; ; {
			p, ok := inPlaceOf[x2]
			if !ok {
				return false
			}
			if p == y {
				return true
			}
			x2 = p
		}
	}
	var errs []string
	for i := 0; i < len(items); i++ {
		for j := i + 1; j < len(items); j++ {
			x, y := items[i], items[j]
			if x.slot.Bytes == 0 || y.slot.Bytes == 0 {
				continue
			}
			if x.slot.Offset+x.slot.Bytes > a.Bytes || y.slot.Offset+y.slot.Bytes > a.Bytes {
				errs = append(errs, fmt.Sprintf("a value lies past the arena's end (%d bytes)", a.Bytes))
			}
			overlapBytes := x.slot.Offset < y.slot.Offset+y.slot.Bytes && y.slot.Offset < x.slot.Offset+x.slot.Bytes
			overlapTime := x.slot.Start <= y.slot.End && y.slot.Start <= x.slot.End
			if !overlapBytes || !overlapTime {
				continue
			}
			if related(x.id, y.id) || related(y.id, x.id) {
				continue
			}
			errs = append(errs, fmt.Sprintf("%%%d [%d, %d) live %d..%d overlaps %%%d [%d, %d) live %d..%d",
				x.id, x.slot.Offset, x.slot.Offset+x.slot.Bytes, x.slot.Start, x.slot.End,
				y.id, y.slot.Offset, y.slot.Offset+y.slot.Bytes, y.slot.Start, y.slot.End))
		}
	}
	for _, op := range f.Ops {
		for _, r := range op.Results {
			if _, ok := a.Slots[r.ID]; !ok {
				errs = append(errs, fmt.Sprintf("%%%d has no slot", r.ID))
			}
		}
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return fmt.Errorf("BUG: the arena plan is unsafe:\n  %s", joinLines(errs))
	}
	return nil
}

func joinLines(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += "\n  "
		}
		out += x
	}
	return out
}

// BodyScratch is the bytes a fused op's body values other than its yields
// take at a batch, each aligned, or false when that passes MaxBytes.
func BodyScratch(op *ir.Op, batch int64) (int64, bool) {
	yield := map[*ir.Value]bool{}
	for _, y := range op.Yield {
		yield[y] = true
	}
	var n int64
	for _, b := range op.Body {
		for _, r := range b.Results {
			if !yield[r] {
				size, ok := product(r.Type.RowBytes(), batch)
				if !ok {
					return 0, false
				}
				if n, ok = sum(n, size); !ok {
					return 0, false
				}
			}
		}
	}
	return n, true
}
