// Package config evaluates the config block of an .arch file: typed
// parameters with defaults, values taken from a Hugging Face config.json,
// --set overrides, derived values and checks. The result is a fixed set of
// named constants that the rest of the compiler specialises the model with.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/minerva-ml/minerva/compiler/eval"
	"github.com/minerva-ml/minerva/dsl"
	"github.com/minerva-ml/minerva/dsl/budget"
	"github.com/minerva-ml/minerva/dsl/diag"
)

// Source says where a value came from.
type Source string

const (
	FromDefault Source = "default"
	// FromFallback is an `or EXPR` value: config.json has none of the
	// parameter's keys, and the fallback differs from the default.
	FromFallback Source = "fallback"
	FromJSON     Source = "config.json"
	FromSet      Source = "--set"
	Derived      Source = "derived"
)

// Entry is one named value.
type Entry struct {
	Name   string
	Type   string // "int", "float", "bool", "string", "[int]" ...; "" for derived
	Value  any
	Source Source
	// Key is the config.json key the value was read from.
	Key string
	// Missing lists the keys config.json lacked when the value is a
	// default or a fallback because of it.
	Missing []string
}

// Config is the evaluated configuration, in declaration order.
type Config struct {
	Entries []Entry
	// Budget is what compile-time evaluation may still spend; lowering
	// evaluates the weights and the forward pass from the same budget.
	Budget *budget.Budget
	index  map[string]int
}

// Lookup implements eval.Scope.
func (c *Config) Lookup(name string) (any, bool) {
	i, ok := c.index[name]
	if !ok {
		return nil, false
	}
	return c.Entries[i].Value, true
}

// Names implements eval.Scope.
func (c *Config) Names() []string {
	out := make([]string, 0, len(c.Entries))
	for _, e := range c.Entries {
		out = append(out, e.Name)
	}
	sort.Strings(out)
	return out
}

// Int returns an integer value, or false.
func (c *Config) Int(name string) (int64, bool) {
	v, ok := c.Lookup(name)
	i, isInt := v.(int64)
	return i, ok && isInt
}

func (c *Config) add(e Entry) {
	if c.index == nil {
		c.index = map[string]int{}
	}
	c.index[e.Name] = len(c.Entries)
	c.Entries = append(c.Entries, e)
}

// JSON is a parsed config.json with the text kept for positions.
type JSON struct {
	Path string
	Text string
	Data map[string]any
	// reported holds the keys whose wrong shape was already reported.
	reported map[string]bool
}

// LoadJSON reads a config.json file.
func LoadJSON(path string) (*JSON, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the config: %w", err)
	}
	return ParseJSON(path, b)
}

// ParseJSON parses config.json text; numbers keep their spelling so that
// 4096 stays an int and 1e-05 a float.
func ParseJSON(path string, b []byte) (*JSON, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var data map[string]any
	if err := dec.Decode(&data); err != nil {
		return nil, fmt.Errorf("%s is not a JSON object: %v", path, err)
	}
	return &JSON{Path: path, Text: string(b), Data: data}, nil
}

// lookup follows a dotted key; a missing or null value is absent. A value
// in the way that is neither an object nor null ("rope_scaling": "yarn"
// where "rope_scaling.rope_type" is read) is an error naming it: skipping
// it would silently fall back to a default.
func (j *JSON) lookup(key string) (any, bool, error) {
	var cur any = j.Data
	parts := strings.Split(key, ".")
	for i, part := range parts {
		m, ok := cur.(map[string]any)
		if !ok {
			outer := strings.Join(parts[:i], ".")
			return nil, false, &keyError{key: outer, msg: fmt.Sprintf("%q is %s; expected an object or null", outer, jsonDesc(cur))}
		}
		cur, ok = m[part]
		if !ok || cur == nil {
			return nil, false, nil
		}
	}
	return cur, true, nil
}

// keyError is a config.json value that is not what a parameter needs; key
// is the (dotted) key the diagnostic points at.
type keyError struct{ key, msg string }

func (e *keyError) Error() string { return e.msg }

// pos finds the line of a key in the JSON text, so that a diagnostic can
// point at it. It returns the file alone when the key is not found.
func (j *JSON) pos(key string) diag.Pos {
	parts := strings.Split(key, ".")
	leaf := strconv.Quote(parts[len(parts)-1])
	off := strings.Index(j.Text, leaf)
	if off < 0 {
		return diag.Pos{File: j.Path}
	}
	line := 1 + strings.Count(j.Text[:off], "\n")
	col := off - strings.LastIndex(j.Text[:off], "\n")
	return diag.Pos{File: j.Path, Line: line, Col: col, Offset: off}
}

// Options specialise a configuration.
type Options struct {
	JSON *JSON
	// Sets are `name=value` overrides, applied last.
	Sets []string
	// Budget bounds evaluation; nil means a budget of the default limits.
	Budget *budget.Budget
}

// Evaluate computes the configuration of a file. Problems go to diags;
// the returned Config holds every value that could be computed.
func Evaluate(f *dsl.File, opts Options, diags *diag.List) *Config {
	if opts.JSON != nil {
		diags.AddSource(opts.JSON.Path, opts.JSON.Text)
	}
	cfg := &Config{Budget: opts.Budget}
	if cfg.Budget == nil {
		cfg.Budget = budget.New(budget.Limits{})
	}
	ev := eval.New(diags, cfg)
	ev.Budget = cfg.Budget
	sets := parseSets(opts.Sets, diags)
	declared := map[string]dsl.Node{}
	var blocks []*dsl.ConfigBlock
	for _, b := range f.Blocks {
		if b.Config != nil {
			blocks = append(blocks, b.Config)
		}
	}
	if len(blocks) == 0 {
		diags.Errorf(dsl.PosOf(f.Name, f.Model.EndPos), diag.Pos{}, "add `config { ... }` with the model's parameters", "the file has no config block")
	}
	for _, blk := range blocks {
		for _, item := range blk.Items {
			switch {
			case item.Param != nil:
				evalParam(f.Name, item.Param, cfg, ev, opts.JSON, sets, declared)
			case item.Derived != nil:
				d := item.Derived
				pos := dsl.PosOf(f.Name, d.Pos)
				if checkDuplicate(f.Name, d.Name, pos, declared, diags) {
					continue
				}
				if s, ok := sets[d.Name]; ok {
					s.used = true
					diags.Errorf(diag.Pos{File: "--set"}, diag.Pos{}, "set the parameters it is computed from", "--set %s: %s is derived (%s = ...), not a parameter", s.text, d.Name, d.Name)
				}
				v := ev.Eval(d.Value.Tree(f.Name))
				cfg.add(Entry{Name: d.Name, Value: v, Source: Derived})
			case item.Check != nil:
				evalCheck(f.Name, item.Check, ev, diags)
			}
		}
	}
	for _, s := range sets {
		if !s.used {
			diags.Errorf(diag.Pos{File: "--set"}, diag.Pos{}, diag.DidYouMean(s.name, cfg.Names()), "--set %s: the model has no parameter '%s'", s.text, s.name)
		}
	}
	return cfg
}

type setValue struct {
	name, value, text string
	used              bool
}

func parseSets(sets []string, diags *diag.List) map[string]*setValue {
	out := map[string]*setValue{}
	for _, s := range sets {
		name, value, ok := strings.Cut(s, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			diags.Errorf(diag.Pos{File: "--set"}, diag.Pos{}, "write --set name=value, e.g. --set layers=2", "--set %q is not name=value", s)
			continue
		}
		out[name] = &setValue{name: name, value: strings.TrimSpace(value), text: s}
	}
	return out
}

func checkDuplicate(file, name string, pos diag.Pos, declared map[string]dsl.Node, diags *diag.List) bool {
	if prev, dup := declared[name]; dup {
		pp, _ := prev.Span()
		diags.Errorf(pos, diag.Pos{}, fmt.Sprintf("the first is at %s", pp), "'%s' is declared twice", name)
		return true
	}
	declared[name] = spanNode{pos}
	return false
}

type spanNode struct{ p diag.Pos }

func (s spanNode) Span() (diag.Pos, diag.Pos) { return s.p, diag.Pos{} }

func evalParam(file string, p *dsl.ParamDecl, cfg *Config, ev *eval.Evaluator, js *JSON, sets map[string]*setValue, declared map[string]dsl.Node) {
	pos := dsl.PosOf(file, p.Pos)
	end := pos
	end.Col += len(p.Name)
	if checkDuplicate(file, p.Name, pos, declared, ev.Diags) {
		return
	}
	typ, ok := typeName(p.Type)
	if !ok {
		tp := dsl.PosOf(file, p.Type.Pos)
		ev.ErrorAt(tp, dsl.PosOf(file, p.Type.EndPos), diag.DidYouMean(p.Type.Name, []string{"int", "float", "bool", "string"}),
			"unknown type '%s' for %s; types are int, float, bool, string and lists like [int]", p.Type.Name, p.Name)
		cfg.add(Entry{Name: p.Name, Value: eval.Poison{}})
		return
	}
	entry := Entry{Name: p.Name, Type: typ}
	var raw any
	switch {
	case sets[p.Name] != nil:
		s := sets[p.Name]
		s.used = true
		v, err := parseText(typ, s.value)
		if err != nil {
			ev.Diags.Errorf(diag.Pos{File: "--set"}, diag.Pos{}, "", "--set %s: %v", s.text, err)
			raw = eval.Poison{}
		} else {
			raw, entry.Source = v, FromSet
		}
	case js != nil && p.From != nil:
		found := false
		for _, key := range p.From.Keys {
			v, ok, err := js.lookup(key)
			if err != nil {
				// Reported once: every parameter read from under the
				// same key meets the same value.
				if ke := err.(*keyError); !js.reported[ke.key] {
					if js.reported == nil {
						js.reported = map[string]bool{}
					}
					js.reported[ke.key] = true
					ev.Diags.Errorf(js.pos(ke.key), diag.Pos{}, declaredAt(p, typ, pos), "%s: %s reads %q", ke.msg, p.Name, key)
				}
				raw, found = eval.Poison{}, true
				break
			}
			if ok {
				conv, err := convertJSON(typ, v)
				if err != nil {
					ev.Diags.Errorf(js.pos(key), diag.Pos{}, declaredAt(p, typ, pos), "%q is %s; expected %s", key, jsonDesc(v), err)
					raw = eval.Poison{}
				} else {
					raw, entry.Source, entry.Key = conv, FromJSON, key
				}
				found = true
				break
			}
		}
		if found {
			break
		}
		switch {
		case p.From.OrDefault:
			raw, entry.Source = evalDefault(file, p, ev, typ)
			entry.Missing = p.From.Keys
		case p.From.Or != nil:
			raw, entry.Source = checkType(ev, p.From.Or.Tree(file), typ, p.Name), FromFallback
			entry.Missing = p.From.Keys
		default:
			keys := `"` + strings.Join(p.From.Keys, `" or "`) + `"`
			fp := dsl.PosOf(file, p.From.Pos)
			ev.ErrorAt(fp, diag.Pos{}, fmt.Sprintf("add %s to %s, or end the from clause with `or default` to fall back to the default", keys, js.Path),
				"%s has no %s (needed for %s)", js.Path, keys, p.Name)
			raw = eval.Poison{}
		}
	default:
		raw, entry.Source = evalDefault(file, p, ev, typ)
	}
	if p.Accept != nil && !eval.IsPoison(raw) {
		raw = checkAccept(file, p, typ, raw, entry, ev, js, sets)
	}
	entry.Value = raw
	cfg.add(entry)
}

// declaredAt is the hint of a config.json error: where the parameter is
// declared, and as what.
func declaredAt(p *dsl.ParamDecl, typ string, pos diag.Pos) string {
	return fmt.Sprintf("%s is declared %s at %s", p.Name, typ, pos)
}

// checkAccept checks a parameter's value against its `in` clause: each
// value (each element of a list) must be one of the listed values, or in
// the half-open range. The error points where the value came from:
// config.json's key, the --set flag, or the default.
func checkAccept(file string, p *dsl.ParamDecl, typ string, v any, entry Entry, ev *eval.Evaluator, js *JSON, sets map[string]*setValue) any {
	accept, ok := evalAccept(file, p, typ, ev)
	if !ok {
		return eval.Poison{}
	}
	vals, isList := v.([]any)
	if !isList {
		vals = []any{v}
	}
	// Each value is compared with each accepted one: both lists can be
	// long, so the comparisons are charged to the evaluation budget.
	n := int64(len(vals)) * int64(max(len(accept.values), 1))
	if !ev.Spent(p.Accept.From.Tree(file), ev.Budget.Steps(n), "checking %d values against %d accepted ones", len(vals), len(accept.values)) {
		return eval.Poison{}
	}
	for i, x := range vals {
		if accept.ok(x) {
			continue
		}
		what := ""
		if isList {
			what = fmt.Sprintf(" element %d", i)
			if entry.Source == FromJSON {
				// A scalar read as a one-element list has no elements.
				if raw, _, _ := js.lookup(entry.Key); !isJSONList(raw) {
					what = ""
				}
			}
		}
		pos := dsl.PosOf(file, p.Pos)
		switch entry.Source {
		case FromJSON:
			ev.Diags.Errorf(js.pos(entry.Key), diag.Pos{}, declaredAt(p, typ, pos), "%q%s is %s; expected %s", entry.Key, what, eval.Format(x), accept.desc)
		case FromSet:
			ev.Diags.Errorf(diag.Pos{File: "--set"}, diag.Pos{}, "", "--set %s:%s %s is not accepted; %s accepts %s", sets[p.Name].text, what, eval.Format(x), p.Name, accept.desc)
		default:
			end := pos
			end.Col += len(p.Name)
			ev.ErrorAt(pos, end, "", "the default of %s%s is %s; %s accepts %s", p.Name, what, eval.Format(x), p.Name, accept.desc)
		}
		return eval.Poison{}
	}
	return v
}

func isJSONList(v any) bool {
	_, ok := v.([]any)
	return ok
}

// acceptSet is an evaluated `in` clause.
type acceptSet struct {
	values []any   // `in [a, b]`
	lo, hi float64 // `in lo..hi`, when values is nil
	// ints holds an integer range exactly: float64 cannot tell large
	// ints apart.
	ints     bool
	ilo, ihi int64
	desc     string // what is accepted, for messages
}

func (a acceptSet) ok(v any) bool {
	if a.values != nil {
		for _, x := range a.values {
			if sameValue(v, x) {
				return true
			}
		}
		return false
	}
	if i, isInt := v.(int64); isInt && a.ints {
		return a.ilo <= i && i < a.ihi
	}
	f, ok := eval.Number(v)
	return ok && a.lo <= f && f < a.hi
}

func sameValue(a, b any) bool {
	if fa, ok := eval.Number(a); ok {
		fb, ok := eval.Number(b)
		return ok && fa == fb
	}
	return a == b
}

// evalAccept evaluates a parameter's `in` clause in the scope of the
// parameters declared above it.
func evalAccept(file string, p *dsl.ParamDecl, typ string, ev *eval.Evaluator) (acceptSet, bool) {
	elem := strings.Trim(typ, "[]")
	from := p.Accept.From.Tree(file)
	lo := ev.Eval(from)
	if eval.IsPoison(lo) {
		return acceptSet{}, false
	}
	if p.Accept.To == nil {
		l, ok := lo.([]any)
		if !ok || len(l) == 0 {
			ev.Errorf(from, "write `in [\"a\", \"b\"]` or `in 1..1024`", "`in` takes a non-empty list of the accepted values or a range lo..hi, not %s", eval.Describe(lo))
			return acceptSet{}, false
		}
		parts := make([]string, len(l))
		for i, x := range l {
			if _, ok := conform(elem, x); !ok {
				ev.Errorf(from, "", "%s is declared %s but its `in` list holds %s", p.Name, typ, eval.Describe(x))
				return acceptSet{}, false
			}
			parts[i] = eval.Format(x)
		}
		return acceptSet{values: l, desc: "one of " + strings.Join(parts, ", ")}, true
	}
	to := p.Accept.To.Tree(file)
	hi := ev.Eval(to)
	if eval.IsPoison(hi) {
		return acceptSet{}, false
	}
	lf, ok1 := eval.Number(lo)
	hf, ok2 := eval.Number(hi)
	if !ok1 || !ok2 || elem != "int" && elem != "float" {
		ev.Errorf(from, "", "a range `in lo..hi` takes numbers and a parameter of type int or float, not %s..%s for %s", eval.Describe(lo), eval.Describe(hi), typ)
		return acceptSet{}, false
	}
	a := acceptSet{lo: lf, hi: hf}
	li, lInt := lo.(int64)
	hiI, hInt := hi.(int64)
	if elem == "int" && lInt && hInt {
		a.ints, a.ilo, a.ihi = true, li, hiI
		if hiI > li {
			a.desc = fmt.Sprintf("an integer from %d to %d", li, hiI-1)
		} else {
			a.desc = fmt.Sprintf("no integer (the range %d..%d is empty)", li, hiI)
		}
	} else {
		a.desc = fmt.Sprintf("a number from %s up to (not including) %s", eval.Format(lo), eval.Format(hi))
	}
	return a, true
}

func evalDefault(file string, p *dsl.ParamDecl, ev *eval.Evaluator, typ string) (any, Source) {
	if p.Default == nil {
		pos := dsl.PosOf(file, p.Pos)
		end := pos
		end.Col += len(p.Name)
		return ev.ErrorAt(pos, end, fmt.Sprintf("give it with --set %s=VALUE or --config config.json, or declare a default: %s: %s = ...", p.Name, p.Name, typ),
			"%s has no value", p.Name), FromDefault
	}
	return checkType(ev, p.Default.Tree(file), typ, p.Name), FromDefault
}

// checkType evaluates a default and converts it to the declared type.
func checkType(ev *eval.Evaluator, n dsl.Node, typ, name string) any {
	v := ev.Eval(n)
	if eval.IsPoison(v) {
		return v
	}
	conv, ok := conform(typ, v)
	if !ok {
		return ev.Errorf(n, "", "%s is declared %s but its default is %s", name, typ, eval.Describe(v))
	}
	return conv
}

// conform converts a value to a declared type: ints widen to floats.
func conform(typ string, v any) (any, bool) {
	if strings.HasPrefix(typ, "[") {
		l, ok := v.([]any)
		if !ok {
			return nil, false
		}
		elem := typ[1 : len(typ)-1]
		out := make([]any, len(l))
		for i, x := range l {
			c, ok := conform(elem, x)
			if !ok {
				return nil, false
			}
			out[i] = c
		}
		return out, true
	}
	switch typ {
	case "int":
		i, ok := v.(int64)
		return i, ok
	case "float":
		switch x := v.(type) {
		case int64:
			return float64(x), true
		case float64:
			return x, true
		}
	case "bool":
		b, ok := v.(bool)
		return b, ok
	case "string":
		s, ok := v.(string)
		return s, ok
	}
	return nil, false
}

func typeName(t *dsl.TypeExpr) (string, bool) {
	if t.List != nil {
		inner, ok := typeName(t.List)
		if !ok || strings.HasPrefix(inner, "[") {
			return "", false
		}
		return "[" + inner + "]", true
	}
	switch t.Name {
	case "int", "float", "bool", "string":
		return t.Name, true
	}
	return "", false
}

// convertJSON converts a config.json value to a declared type. A scalar
// where a list is declared becomes a one-element list: Hugging Face writes
// eos_token_id both ways. The error says what was expected.
func convertJSON(typ string, v any) (any, error) {
	if strings.HasPrefix(typ, "[") {
		elem := typ[1 : len(typ)-1]
		l, ok := v.([]any)
		if !ok {
			c, err := convertJSON(elem, v)
			if err != nil {
				return nil, fmt.Errorf("%s or %s", typeDesc(elem), typeDesc(typ))
			}
			return []any{c}, nil
		}
		out := make([]any, len(l))
		for i, x := range l {
			c, err := convertJSON(elem, x)
			if err != nil {
				return nil, fmt.Errorf("%s, but element %d is %s", typeDesc(typ), i, jsonDesc(x))
			}
			out[i] = c
		}
		return out, nil
	}
	switch typ {
	case "int":
		if n, ok := v.(json.Number); ok {
			if i, err := n.Int64(); err == nil {
				return i, nil
			}
			if f, err := n.Float64(); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
				return int64(f), nil
			}
		}
	case "float":
		if n, ok := v.(json.Number); ok {
			if f, err := n.Float64(); err == nil {
				return f, nil
			}
		}
	case "bool":
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case "string":
		if s, ok := v.(string); ok {
			return s, nil
		}
	default:
		panic("BUG: unknown config type " + typ)
	}
	return nil, errors.New(typeDesc(typ))
}

// typeDesc names a declared type for messages: "an integer", "a list of
// strings".
func typeDesc(typ string) string {
	switch typ {
	case "int":
		return "an integer"
	case "float":
		return "a number"
	case "bool":
		return "true or false"
	case "string":
		return "a string"
	}
	if strings.HasPrefix(typ, "[") {
		plural := map[string]string{"int": "integers", "float": "numbers", "bool": "booleans", "string": "strings"}
		return "a list of " + plural[typ[1:len(typ)-1]]
	}
	return typ
}

func jsonDesc(v any) string {
	b, _ := json.Marshal(v)
	s := string(b)
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return s
}

// parseText reads a --set value for a declared type.
func parseText(typ, s string) (any, error) {
	if strings.HasPrefix(typ, "[") {
		var raw []any
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("a %s is written as a JSON list, e.g. [1, 2]", typ)
		}
		v, err := convertJSON(typ, raw)
		if err != nil {
			return nil, fmt.Errorf("expected %v", err)
		}
		return v, nil
	}
	switch typ {
	case "int":
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not an int", s)
		}
		return i, nil
	case "float":
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a float", s)
		}
		return f, nil
	case "bool":
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not true or false", s)
		}
		return b, nil
	}
	return s, nil
}

func evalCheck(file string, c *dsl.CheckDecl, ev *eval.Evaluator, diags *diag.List) {
	tree := c.Cond.Tree(file)
	v := ev.Eval(tree)
	if eval.IsPoison(v) {
		return
	}
	ok, isBool := v.(bool)
	if !isBool {
		ev.Errorf(tree, "", "a check must be true or false, not %s", eval.Describe(v))
		return
	}
	if ok {
		return
	}
	msg := c.Message
	if msg == "" {
		msg = "the configuration does not satisfy this check"
	}
	p, end := tree.Span()
	diags.Errorf(p, end, "values: "+namesIn(tree, ev.Scope), "check failed: %s", msg)
}

// namesIn lists the config values an expression mentions, for the hint of
// a failed check.
func namesIn(n dsl.Node, s eval.Scope) string {
	seen := map[string]bool{}
	var parts []string
	var walk func(dsl.Node)
	walk = func(n dsl.Node) {
		switch x := n.(type) {
		case *dsl.Name:
			if v, ok := s.Lookup(x.Name); ok && !seen[x.Name] {
				seen[x.Name] = true
				f := eval.Format(v)
				if len(f) > 60 {
					f = f[:57] + "..."
				}
				parts = append(parts, x.Name+" = "+f)
			}
		case *dsl.Binary:
			walk(x.L)
			walk(x.R)
		case *dsl.UnaryOp:
			walk(x.X)
		case *dsl.Call:
			for _, a := range x.Args {
				walk(a.Value)
			}
		case *dsl.Index:
			walk(x.X)
			walk(x.Index)
		case *dsl.Cond:
			walk(x.C)
			walk(x.Then)
			walk(x.Else)
		}
	}
	walk(n)
	return strings.Join(parts, ", ")
}
