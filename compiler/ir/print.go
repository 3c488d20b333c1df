package ir

import (
	"fmt"
	"strconv"
	"strings"
)

// Print renders the function in its canonical text form. Parse reads it
// back; passes are tested as text before and after.
func Print(f *Func) string {
	var b strings.Builder
	fmt.Fprintf(&b, "model %q\n", f.Model)
	for _, w := range f.Weights {
		fmt.Fprintf(&b, "weight %s %s%s %q", w.Ref(), w.DType, w.Shape, w.Checkpoint)
		if w.Layer >= 0 {
			fmt.Fprintf(&b, " layer %d", w.Layer)
		}
		b.WriteByte('\n')
	}
	out := "?"
	if f.Output != nil {
		out = f.Output.Type.String()
	}
	fmt.Fprintf(&b, "\nfunc forward(%s: %s) -> %s {\n", f.Input.Ref(), f.Input.Type, out)
	for _, op := range f.Ops {
		printOp(&b, op, "  ", nil)
	}
	if f.Output != nil {
		fmt.Fprintf(&b, "  return %s\n", f.Output.Ref())
	}
	b.WriteString("}\n")
	return b.String()
}

// PrintOp renders one op (with its body) as it appears in Print.
func PrintOp(op *Op) string {
	var b strings.Builder
	printOp(&b, op, "", nil)
	return strings.TrimRight(b.String(), "\n")
}

// printOp writes one op. local numbers the values of a fused body.
func printOp(b *strings.Builder, op *Op, indent string, local map[*Value]string) {
	ref := func(v *Value) string {
		if local != nil {
			if s, ok := local[v]; ok {
				return s
			}
		}
		return v.Ref()
	}
	b.WriteString(indent)
	for i, r := range op.Results {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(ref(r))
	}
	b.WriteString(" = ")
	b.WriteString(string(op.Kind))
	for i, a := range op.Args {
		if i == 0 {
			b.WriteByte(' ')
		} else {
			b.WriteString(", ")
		}
		if a.V != nil {
			b.WriteString(ref(a.V))
		} else {
			b.WriteString(a.Ref())
		}
	}
	if len(op.Attrs) > 0 {
		b.WriteString(" {")
		for i, a := range op.Attrs {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(a.Key)
			b.WriteByte('=')
			b.WriteString(FormatAttr(a.Value))
		}
		b.WriteByte('}')
	}
	b.WriteString(" : ")
	for i, r := range op.Results {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(r.Type.String())
	}
	if len(op.Body) > 0 {
		b.WriteString(" {")
		writeComment(b, op)
		b.WriteByte('\n')
		inner := map[*Value]string{}
		n := 0
		for _, bop := range op.Body {
			for _, r := range bop.Results {
				inner[r] = "%b" + strconv.Itoa(n)
				n++
			}
		}
		for _, bop := range op.Body {
			printOp(b, bop, indent+"  ", inner)
		}
		b.WriteString(indent + "  yield ")
		for i, y := range op.Yield {
			if i > 0 {
				b.WriteString(", ")
			}
			if s, ok := inner[y]; ok {
				b.WriteString(s)
			} else {
				b.WriteString(y.Ref())
			}
		}
		b.WriteString("\n" + indent + "}\n")
		return
	}
	writeComment(b, op)
	b.WriteByte('\n')
}

// writeComment notes the source name and layer, for people reading dumps.
func writeComment(b *strings.Builder, op *Op) {
	name := ""
	if len(op.Results) > 0 {
		name = op.Results[0].Name
	}
	switch {
	case name != "" && op.Layer >= 0:
		fmt.Fprintf(b, "  # %s (layer %d)", name, op.Layer)
	case name != "":
		fmt.Fprintf(b, "  # %s", name)
	case op.Layer >= 0:
		fmt.Fprintf(b, "  # (layer %d)", op.Layer)
	}
}

// FormatAttr prints an attribute value so that ParseAttr reads it back.
func FormatAttr(v any) string {
	switch x := v.(type) {
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		s := strconv.FormatFloat(x, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eEn") { // keep floats recognisable: 1 -> 1.0
			s += ".0"
		}
		return s
	case bool:
		return strconv.FormatBool(x)
	case string:
		return strconv.Quote(x)
	}
	panic(fmt.Sprintf("BUG: attribute of type %T", v))
}
