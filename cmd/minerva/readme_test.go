package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestREADMEBinaries runs the README's "Binaries" commands as written,
// except that what they write goes to a temporary directory: -o bin/
// becomes -o TMP/bin/ and go install gets GOBIN=TMP/gobin. Then the
// binaries they built answer the prompt the README shows.
func TestREADMEBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("links two binaries twice")
	}
	if os.Getenv("MINERVA_AS_MAIN") == "1" {
		t.Skip("running as minerva")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "### Binaries\n")
	if !ok {
		t.Fatal("README.md has no ### Binaries section")
	}
	_, block, _ := strings.Cut(section, "```\n")
	block, _, _ = strings.Cut(block, "```")
	tmp := t.TempDir()
	root, _ := filepath.Abs("../..")
	env := os.Environ()
	ran := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(block), "\n") {
		cmdline, _, _ := strings.Cut(l, "  #") // the comment
		words := shellWords(t, strings.TrimSpace(cmdline))
		var cmd *exec.Cmd
		switch words[0] {
		case "export":
			env = append(env, words[1:]...)
			continue
		case "go":
			for i := range words {
				if words[i] == "bin/" && words[i-1] == "-o" {
					words[i] = filepath.Join(tmp, "bin") + "/"
				}
			}
			cmd = exec.Command(goTool, words[1:]...)
			cmd.Env = append(env, "GOBIN="+filepath.Join(tmp, "gobin"))
		case "./bin/minerva":
			cmd = exec.Command(filepath.Join(tmp, "bin", "minerva"), words[1:]...)
		case "minerva":
			cmd = exec.Command(filepath.Join(tmp, "gobin", "minerva"), words[1:]...)
		default:
			t.Fatalf("README.md's Binaries block has a command this test does not know: %q", l)
		}
		if cmd.Env == nil {
			cmd.Env = env
		}
		cmd.Dir = root
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v\n%s", l, err, stderr.String())
		}
		if words[1] == "run" && strings.TrimSpace(stdout.String()) == "" {
			t.Errorf("%s: no answer on stdout; stderr:\n%s", l, stderr.String())
		}
		ran[words[0]+" "+words[1]] = true
	}
	for _, want := range []string{"go build", "go install", "./bin/minerva run", "minerva run"} {
		if !ran[want] {
			t.Errorf("README.md's Binaries block has no %q command", want)
		}
	}
	for _, bin := range []string{"bin/minerva", "bin/minervac", "gobin/minerva", "gobin/minervac"} {
		if _, err := os.Stat(filepath.Join(tmp, bin)); err != nil {
			t.Errorf("the README's commands did not make %s", bin)
		}
	}
}

// shellWords splits a command line at spaces, keeping "double-quoted"
// words whole; it refuses the shell syntax it does not handle.
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	if strings.ContainsAny(s, "'$|;&<>\\`") {
		t.Fatalf("README.md's Binaries block: %q has shell syntax this test does not run", s)
	}
	var words []string
	for i, part := range strings.Split(s, `"`) {
		if i%2 == 1 {
			words = append(words, part)
			continue
		}
		words = append(words, strings.Fields(part)...)
	}
	return words
}
