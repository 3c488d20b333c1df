// Package msl is the contract between the Metal that codegen emits and the
// Metal that mslemu models: Lint rejects every construct outside it. It
// stands apart from both so that codegen can check its own output without
// importing a runtime backend, and mslemu's tests can check their kernels
// by the same rule.
package msl

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// LintIssue is one construct of kernels.metal that mslemu does not model.
type LintIssue struct {
	Line      int    // 1-based line in kernels.metal
	Construct string // what was found, e.g. "function constant"
	Hint      string // what to do instead
}

func (i LintIssue) String() string {
	return fmt.Sprintf("kernels.metal:%d: %s is not modelled by mslemu: %s", i.Line, i.Construct, i.Hint)
}

// LintError lists every unmodelled construct, in line order.
type LintError struct {
	Issues []LintIssue
}

func (e *LintError) Error() string {
	lines := make([]string, len(e.Issues))
	for i, is := range e.Issues {
		lines[i] = is.String()
	}
	return strings.Join(lines, "\n")
}

// lintRule matches one construct in comment- and string-free source.
type lintRule struct {
	construct string
	re        *regexp.Regexp
	hint      string
	// keys are words one of which every match contains: the regular
	// expression only runs when the source has one (regexps are slow on
	// large sources, and most rules never match).
	keys []string
}

// lintRules are the constructs Lint rejects besides threadgroup storage
// declarations (see threadgroupDecls). Each would compile into something
// that silently behaves differently from Metal, or not at all.
//
// They are compiled on first use: twelve regular expressions are too
// much work for every start of every command that links mslemu.
var lintRules = sync.OnceValue(func() []lintRule { return compileLintRules() })

func compileLintRules() []lintRule {
	return []lintRule{
		{"function constant ([[function_constant(n)]])", regexp.MustCompile(`\[\[\s*function_constant\s*\(`),
			"specialise the source text instead", []string{"function_constant"}},
		{"texture", regexp.MustCompile(`\[\[\s*texture\s*\(|\b(?:texture1d|texture1d_array|texture2d|texture2d_array|texture2d_ms|texture2d_ms_array|texture3d|texturecube|texturecube_array|texture_buffer|depth2d|depth2d_array|depth2d_ms|depth2d_ms_array|depthcube|depthcube_array)\b`),
			"use device buffers", []string{"texture", "depth"}},
		{"sampler", regexp.MustCompile(`\[\[\s*sampler\s*\(|\bsampler\b`), "use device buffers", []string{"sampler"}},
		{"imageblock", regexp.MustCompile(`\bimageblock\b|\[\[\s*imageblock_data|\bthreadgroup_imageblock\b`),
			"use threadgroup memory parameters", []string{"imageblock"}},
		{"[[stage_in]]", regexp.MustCompile(`\[\[\s*stage_in\s*\]\]`), "only compute kernels are modelled", []string{"stage_in"}},
		{"vertex or fragment function", regexp.MustCompile(`\b(?:vertex|fragment)\s+[A-Za-z_]\w*\s+[A-Za-z_]\w*\s*\(`),
			"only compute kernels are modelled", []string{"vertex", "fragment"}},
		{"indirect command buffer", regexp.MustCompile(`\b(?:command_buffer|compute_command|render_command|compute_pipeline_state|render_pipeline_state)\b`),
			"encode dispatches on the host", []string{"command_buffer", "compute_command", "render_command", "pipeline_state"}},
		{"ray tracing", regexp.MustCompile(`<metal_raytracing>|\braytracing::|\b(?:intersector|acceleration_structure|primitive_acceleration_structure|instance_acceleration_structure|intersection_function_table|intersection_result)\b`),
			"not available on the CPU", []string{"raytracing", "intersect", "acceleration_structure"}},
		{"#pragma METAL", regexp.MustCompile(`(?m)^\s*#\s*pragma\s+METAL\b`), "the layer has no Metal internals", []string{"pragma"}},
		{"visible function", regexp.MustCompile(`\[\[\s*(?:visible|stitchable)\s*\]\]|\bvisible_function_table\b`),
			"call functions directly", []string{"visible", "stitchable"}},
		{"[[host_name]] kernel instantiation", regexp.MustCompile(`\[\[\s*host_name\s*\(`),
			"emit a plain (non-template) kernel function; the glue calls kernels by their C++ name", []string{"host_name"}},
		{"simdgroup_matrix thread_elements()", regexp.MustCompile(`\bthread_elements\s*\(`),
			"it exposes the hardware's element layout, which mslemu does not reproduce; use simdgroup_load/simdgroup_store", []string{"thread_elements"}},
	}
}

// Lint rejects constructs of kernels.metal that the layer does not model
// and that would silently go wrong (or fail obscurely) under mslemu. It
// returns a *LintError listing every one, or nil. See docs/mslemu.md.
func Lint(metalSource string) error {
	src := stripCommentsAndStrings(metalSource)
	lineAt := lineIndex(src)
	var issues []LintIssue
	for _, r := range lintRules() {
		if !containsAny(src, r.keys) {
			continue
		}
		for _, m := range r.re.FindAllStringIndex(src, -1) {
			issues = append(issues, LintIssue{Line: lineAt(m[0]), Construct: r.construct, Hint: r.hint})
		}
	}
	for _, off := range threadgroupDecls(src) {
		issues = append(issues, LintIssue{
			Line:      lineAt(off),
			Construct: "threadgroup variable declared in a function body",
			Hint:      "pass it as a `threadgroup T* name [[threadgroup(n)]]` kernel parameter and set its length with ThreadgroupMemory",
		})
	}
	if len(issues) == 0 {
		return nil
	}
	sort.SliceStable(issues, func(a, b int) bool { return issues[a].Line < issues[b].Line })
	// One report per construct and line: `texture2d<float> t [[texture(0)]]`
	// matches twice.
	kept := issues[:0]
	for i, is := range issues {
		dup := false
		for _, k := range kept {
			if k.Line == is.Line && k.Construct == is.Construct {
				dup = true
				break
			}
		}
		if !dup || i == 0 {
			kept = append(kept, is)
		}
	}
	return &LintError{Issues: kept}
}

// lineIndex returns a function from byte offset to 1-based line.
func lineIndex(src string) func(int) int {
	var starts []int
	starts = append(starts, 0)
	for i := 0; i < len(src); i++ {
		if src[i] == '\n' {
			starts = append(starts, i+1)
		}
	}
	return func(off int) int {
		return sort.Search(len(starts), func(i int) bool { return starts[i] > off })
	}
}

// stripCommentsAndStrings blanks comments and string and character
// literals with spaces, keeping newlines so that offsets keep their lines.
func stripCommentsAndStrings(src string) string {
	b := []byte(src)
	blank := func(from, to int) {
		for i := from; i < to && i < len(b); i++ {
			if b[i] != '\n' {
				b[i] = ' '
			}
		}
	}
	for i := 0; i < len(b); {
		switch {
		case b[i] == '/' && i+1 < len(b) && b[i+1] == '/':
			j := i
			for j < len(b) && b[j] != '\n' {
				j++
			}
			blank(i, j)
			i = j
		case b[i] == '/' && i+1 < len(b) && b[i+1] == '*':
			j := i + 2
			for j+1 < len(b) && !(b[j] == '*' && b[j+1] == '/') {
				j++
			}
			j = min(j+2, len(b))
			blank(i, j)
			i = j
		case b[i] == '"' || b[i] == '\'':
			q := b[i]
			j := i + 1
			for j < len(b) && b[j] != q && b[j] != '\n' {
				if b[j] == '\\' {
					j++
				}
				j++
			}
			j = min(j+1, len(b))
			blank(i+1, j-1)
			i = j
		default:
			i++
		}
	}
	return string(b)
}

// threadgroupDecls returns the offsets of `threadgroup` storage
// declarations: the qualifier outside any parentheses (so not a parameter
// or a cast) in a declaration that declares neither a pointer nor a
// reference. `threadgroup float* p = shared + 4;` is fine;
// `threadgroup float buf[256];` is not.
func threadgroupDecls(src string) []int {
	toks := lintTokens(src)
	var found []int
	paren := 0
	for i, t := range toks {
		tok := src[t[0]:t[1]]
		switch tok {
		case "(":
			paren++
		case ")":
			if paren > 0 {
				paren--
			}
		case "{", "}":
			paren = 0 // resynchronise after unbalanced input
		case "threadgroup":
			if paren > 0 {
				continue
			}
			// A preprocessor line (#define ...) is not a declaration.
			lineStart := strings.LastIndexByte(src[:t[0]], '\n') + 1
			if strings.HasPrefix(strings.TrimSpace(src[lineStart:t[0]]), "#") {
				continue
			}
			indirect := false
		scan:
			for _, u := range toks[i+1:] {
				switch src[u[0]:u[1]] {
				case "*", "&":
					indirect = true
					break scan
				case ";", "=", "{", "(", "[", ",", ")", ">":
					break scan
				}
			}
			if !indirect {
				found = append(found, t[0])
			}
		}
	}
	return found
}

func containsAny(s string, keys []string) bool {
	if len(keys) == 0 {
		return true
	}
	for _, k := range keys {
		if strings.Contains(s, k) {
			return true
		}
	}
	return false
}

// lintTokens splits source into identifiers, numbers, :: and any other
// non-space character, by hand: a regexp took most of Lint's time on a
// model's kernels.
func lintTokens(src string) [][2]int {
	var out [][2]int
	isIdent := func(c byte) bool {
		return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
	}
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f':
			i++
		case c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
			j := i + 1
			for j < len(src) && isIdent(src[j]) {
				j++
			}
			out = append(out, [2]int{i, j})
			i = j
		case c >= '0' && c <= '9':
			j := i + 1
			for j < len(src) && (isIdent(src[j]) || src[j] == '.') {
				j++
			}
			out = append(out, [2]int{i, j})
			i = j
		case c == ':' && i+1 < len(src) && src[i+1] == ':':
			out = append(out, [2]int{i, i + 2})
			i += 2
		default:
			// One non-space character (a whole UTF-8 sequence).
			j := i + 1
			for j < len(src) && src[j]&0xC0 == 0x80 {
				j++
			}
			out = append(out, [2]int{i, j})
			i = j
		}
	}
	return out
}
