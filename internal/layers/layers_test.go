package layers

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/minerva-ml/minerva/"

// frontEnd are the packages (and their subpackages) that no backend and no
// generated artifact package may depend on: the parser, the passes, the
// code generators and the templates, and the libraries only they use.
var frontEnd = []string{
	module + "dsl",
	module + "compiler",
	module + "codegen",
	module + "templates",
	"github.com/alecthomas/participle",
	"github.com/dave/jennifer",
}

// leaves are the front end's packages that hold data both halves share.
var leaves = []string{
	module + "compiler/ir",
	module + "compiler/plan",
}

// checkpointFormat is the runtime's package that the program leaf reads
// (a program validates a checkpoint against its weight manifest). It
// imports nothing of Minerva's.
const checkpointFormat = module + "runtime/weights"

// joiners may import both halves: they turn a source into a running model.
var joiners = []string{
	module + "runtime/loader",
	module + "runtime/synth",
}

// backEnd are the packages that run programs: every runtime package, the
// program leaf, and the generated example artifact and its app.
var backEnd = []string{"./runtime/...", "./program/...", "./examples/..."}

func under(pkg, root string) bool { return pkg == root || strings.HasPrefix(pkg, root+"/") }

func inAny(pkg string, roots []string) bool {
	for _, r := range roots {
		if under(pkg, r) {
			return true
		}
	}
	return false
}

// graph is `go list -deps` of patterns: each package's imports, and the
// packages the patterns named.
func graph(t *testing.T, env []string, patterns ...string) (imports map[string][]string, roots []string) {
	t.Helper()
	args := append([]string{"list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{if .DepOnly}}{{else}} ROOT{{end}}:{{join .Imports \" \"}}|{{.Dir}}|{{join .GoFiles \"|\"}}{{end}}"}, patterns...)
	cmd := exec.Command("go", args...)
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, msg)
	}
	imports = map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		head, rest, _ := strings.Cut(line, ":")
		name, root := strings.CutSuffix(head, " ROOT")
		fields := strings.Split(rest, "|")
		imports[name] = strings.Fields(fields[0])
		if strings.HasPrefix(name, module) {
			// go test caches a result by the files the test itself opens
			// or stats; go list reads them in another process. Stat them
			// here, so an edit to any import line reruns the test.
			for _, f := range append([]string{""}, fields[2:]...) {
				os.Stat(filepath.Join(fields[1], f))
			}
		}
		if root {
			roots = append(roots, name)
		}
	}
	sort.Strings(roots)
	return imports, roots
}

// forbiddenPath finds a chain of imports from pkg to a package that bad
// accepts, or nil.
func forbiddenPath(imports map[string][]string, pkg string, bad func(string) bool) []string {
	prev := map[string]string{pkg: ""}
	queue := []string{pkg}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p != pkg && bad(p) {
			var chain []string
			for q := p; q != ""; q = prev[q] {
				chain = append([]string{strings.TrimPrefix(q, module)}, chain...)
			}
			return chain
		}
		for _, d := range imports[p] {
			if _, seen := prev[d]; !seen {
				prev[d] = p
				queue = append(queue, d)
			}
		}
	}
	return nil
}

var platforms = [][]string{
	nil, // this machine
	{"GOOS=darwin", "GOARCH=arm64", "CGO_ENABLED=0"},
}

// TestBackendsDoNotImportTheFrontEnd: no runtime package (but the
// joiners), no part of the program leaf, and neither the generated fortune
// package nor its app depends on the parser, the passes, codegen or the
// templates, on this platform or on darwin/arm64.
func TestBackendsDoNotImportTheFrontEnd(t *testing.T) {
	bad := func(p string) bool { return inAny(p, frontEnd) && !inAny(p, leaves) }
	for _, env := range platforms {
		imports, roots := graph(t, env, backEnd...)
		checked := 0
		for _, pkg := range roots {
			if inAny(pkg, joiners) {
				continue
			}
			checked++
			if chain := forbiddenPath(imports, pkg, bad); chain != nil {
				t.Errorf("%v: %s depends on the front end: %s", env, strings.TrimPrefix(pkg, module), strings.Join(chain, " -> "))
			}
		}
		for _, must := range []string{"runtime/cpu", "runtime/gpu", "runtime/mslemu", "runtime/metal", "runtime/engine", "runtime/serve", "examples/fortune/artifact/go"} {
			if _, ok := imports[module+must]; !ok {
				t.Errorf("%v: %s was not checked", env, must)
			}
		}
		t.Logf("%v: %d packages checked", env, checked)
	}
}

// TestFrontEndDoesNotImportBackends: the compiler and codegen produce a
// program without linking any backend (codegen/gocode names runtime/gpu in
// the code it generates, but does not import it). Only the checkpoint
// format is shared.
func TestFrontEndDoesNotImportBackends(t *testing.T) {
	bad := func(p string) bool { return under(p, module+"runtime") && p != checkpointFormat }
	imports, roots := graph(t, nil, "./dsl/...", "./compiler/...", "./codegen/...", "./templates/...")
	for _, pkg := range roots {
		if chain := forbiddenPath(imports, pkg, bad); chain != nil {
			t.Errorf("%s depends on a backend: %s", strings.TrimPrefix(pkg, module), strings.Join(chain, " -> "))
		}
	}
}

// TestSharedLeavesStayLeaves: the packages both halves import depend on
// nothing of Minerva's but each other.
func TestSharedLeavesStayLeaves(t *testing.T) {
	shared := append([]string{module + "program"}, leaves...)
	imports, roots := graph(t, nil, "./program/...", "./compiler/ir", "./compiler/plan", "./runtime/weights")
	for _, pkg := range roots {
		for _, d := range imports[pkg] {
			if strings.HasPrefix(d, module) && !inAny(d, shared) && d != checkpointFormat {
				t.Errorf("%s imports %s; the shared leaves may import only each other (and runtime/weights, the checkpoint format)", strings.TrimPrefix(pkg, module), strings.TrimPrefix(d, module))
			}
		}
	}
}
