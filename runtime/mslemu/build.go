package mslemu

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// layerFS holds the C++ sources of the layer and the driver; Build writes
// them into the cache so that a binary built from this package can compile
// kernels without the repository.
//
//go:embed include driver
var layerFS embed.FS

// Compiler flags of the kernel translation unit. -fsingle-precision-constant
// and -fsigned-char give MSL's meaning to `1.0` and `char`; -fwrapv gives
// the GPU's wrapping signed overflow; -fno-strict-aliasing tolerates the
// pointer casts MSL allows; -ffp-contract=off keeps a*b+c two roundings;
// -fstack-clash-protection makes a large stack frame touch the guard page
// instead of jumping over it.
var kernelFlags = []string{
	"-std=c++17", "-O2", "-fsigned-char", "-fsingle-precision-constant", "-fwrapv",
	"-fno-strict-aliasing", "-ffp-contract=off", "-fstack-clash-protection",
	"-Wno-attributes", "-Wno-literal-suffix",
}

var driverFlags = []string{"-std=c++17", "-O2", "-pthread", "-Wall"}

// driverDefines are extra -D flags for the driver; the benchmarks set
// -DMSLEMU_UCONTEXT to compare ucontext fibers with the assembly switch.
var driverDefines []string

// buildVersion changes when the way Build combines its inputs changes.
const buildVersion = "mslemu-build-1"

// errNoCompiler is returned (wrapped) when no C++ compiler is installed.
var errNoCompiler = errors.New("mslemu needs a C++17 compiler: apt-get install g++")

// compilerPath returns the C++ compiler: $CXX, else g++.
func compilerPath() (string, error) {
	name := os.Getenv("CXX")
	if name == "" {
		name = "g++"
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w (%s not found)", errNoCompiler, name)
	}
	return p, nil
}

var compilerIDs sync.Map // path -> string

// compilerID identifies the compiler's version and target for the cache key.
func compilerID(cxx string) (string, error) {
	if id, ok := compilerIDs.Load(cxx); ok {
		return id.(string), nil
	}
	ver, err := exec.Command(cxx, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("mslemu: running %s --version: %v", cxx, err)
	}
	machine, err := exec.Command(cxx, "-dumpmachine").Output()
	if err != nil {
		return "", fmt.Errorf("mslemu: running %s -dumpmachine: %v", cxx, err)
	}
	first, _, _ := strings.Cut(string(ver), "\n")
	id := cxx + "\n" + first + "\n" + strings.TrimSpace(string(machine))
	compilerIDs.Store(cxx, id)
	return id, nil
}

// layerFiles returns the embedded layer and driver sources by path.
func layerFiles() map[string][]byte {
	files := map[string][]byte{}
	err := fs.WalkDir(layerFS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := layerFS.ReadFile(path)
		files[path] = data
		return err
	})
	if err != nil {
		panic("BUG: reading the embedded layer: " + err.Error())
	}
	return files
}

func hashParts(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:", len(p))
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func hashFiles(files map[string][]byte) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		parts = append(parts, n, string(files[n]))
	}
	return hashParts(parts...)
}

var threadgroupAttrRE = regexp.MustCompile(`\[\[\s*threadgroup\s*\(`)

// prepareSource renames [[threadgroup(n)]] to [[mslemu_threadgroup(n)]]:
// the layer's `threadgroup` macro would otherwise empty the attribute. Line
// numbers are unchanged.
func prepareSource(src string) string {
	return threadgroupAttrRE.ReplaceAllString(src, "[[mslemu_threadgroup(")
}

// Build compiles metalSource (the text of kernels.metal) with glue (from
// Glue) and the driver into an executable under cacheDir and returns its
// path. The executable is cached by a hash of every input and the
// compiler's version: a second Build with the same inputs returns at once.
// Compile errors are returned with the compiler's diagnostics, which name
// kernels.metal and its lines.
func Build(metalSource, glue, cacheDir string) (exe string, err error) {
	cxx, err := compilerPath()
	if err != nil {
		return "", err
	}
	cid, err := compilerID(cxx)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("mslemu: creating the build cache: %w", err)
	}
	files := layerFiles()
	layerHash := hashFiles(files)
	driverFlags := append(append([]string{}, driverFlags...), driverDefines...)
	key := hashParts(buildVersion, cid, strings.Join(kernelFlags, " "), strings.Join(driverFlags, " "), layerHash, metalSource, glue)
	final := filepath.Join(cacheDir, "mslemu-"+key[:24])
	exe = filepath.Join(final, "mslemu-driver")
	if _, err := os.Stat(exe); err == nil {
		return exe, nil
	}

	// The layer's sources, shared by every build with the same layer.
	layerDir := filepath.Join(cacheDir, "mslemu-layer-"+layerHash[:24])
	if err := writeTreeOnce(layerDir, files); err != nil {
		return "", err
	}
	include := filepath.Join(layerDir, "include")

	tmp, err := os.MkdirTemp(cacheDir, "mslemu-build-")
	if err != nil {
		return "", fmt.Errorf("mslemu: %w", err)
	}
	defer os.RemoveAll(tmp)
	for name, text := range map[string]string{
		"kernels.metal":  prepareSource(metalSource),
		"glue.inc":       glue,
		"kernels_tu.cpp": "#include \"kernels.metal\"\n#include \"glue.inc\"\n",
	} {
		if err := os.WriteFile(filepath.Join(tmp, name), []byte(text), 0o644); err != nil {
			return "", fmt.Errorf("mslemu: %w", err)
		}
	}

	// The driver object depends only on the layer and the compiler, so it
	// is built once per cache and compiled alongside the kernels.
	driverObj := filepath.Join(cacheDir, "mslemu-driver-"+hashParts(buildVersion, cid, strings.Join(driverFlags, " "), layerHash)[:24]+".o")
	var wg sync.WaitGroup
	var driverErr error
	if _, err := os.Stat(driverObj); err != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			obj := filepath.Join(tmp, "driver.o")
			args := append(append([]string{}, driverFlags...), "-I", include, "-c", filepath.Join(layerDir, "driver", "driver.cpp"), "-o", obj)
			if driverErr = runCompiler(cxx, tmp, "the mslemu driver", args); driverErr == nil {
				driverErr = os.Rename(obj, driverObj)
			}
		}()
	}
	kargs := append(append([]string{}, kernelFlags...), "-I", include, "-c", "kernels_tu.cpp", "-o", "kernels.o")
	kernelErr := runCompiler(cxx, tmp, "kernels.metal", kargs)
	wg.Wait()
	if kernelErr != nil {
		return "", kernelErr
	}
	if driverErr != nil {
		return "", driverErr
	}
	linkArgs := []string{"-pthread", "kernels.o", driverObj, "-o", "mslemu-driver"}
	if err := runCompiler(cxx, tmp, "the mslemu driver (link)", linkArgs); err != nil {
		return "", err
	}
	// Publish atomically; a concurrent Build of the same inputs may win.
	if err := os.Rename(tmp, final); err != nil {
		if _, statErr := os.Stat(exe); statErr == nil {
			return exe, nil
		}
		return "", fmt.Errorf("mslemu: publishing the build: %w", err)
	}
	return exe, nil
}

// maxDiagnostics bounds the compiler output quoted in an error.
const maxDiagnostics = 16000

func runCompiler(cxx, dir, what string, args []string) error {
	cmd := exec.Command(cxx, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		diag := out.String()
		if len(diag) > maxDiagnostics {
			diag = diag[:maxDiagnostics] + "\n... (diagnostics cut)"
		}
		return fmt.Errorf("mslemu: compiling %s failed (%v):\n%s", what, err, diag)
	}
	return nil
}

// writeTreeOnce writes files under dir unless dir already exists; it
// writes into a temporary directory first so that a reader never sees a
// partial tree.
func writeTreeOnce(dir string, files map[string][]byte) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "mslemu-layer-tmp-")
	if err != nil {
		return fmt.Errorf("mslemu: %w", err)
	}
	defer os.RemoveAll(tmp)
	for name, data := range files {
		p := filepath.Join(tmp, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("mslemu: %w", err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return fmt.Errorf("mslemu: %w", err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, statErr := os.Stat(dir); statErr == nil {
			return nil
		}
		return fmt.Errorf("mslemu: %w", err)
	}
	return nil
}
