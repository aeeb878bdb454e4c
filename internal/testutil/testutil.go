// Package testutil finds the project's venv and exports small models for tests. Tests that
// need Python fail (never skip) when the venv is missing: `make setup` creates it.
package testutil

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// RepoRoot is the directory holding go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// Python is the venv's interpreter (EMOTIONS_PYTHON overrides).
func Python(t testing.TB) string {
	t.Helper()
	p, err := python()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func python() (string, error) {
	if p := os.Getenv("EMOTIONS_PYTHON"); p != "" {
		return p, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, ".venv", "bin", "python")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("no %s: run `make setup` first", p)
	}
	return p, nil
}

// RunPython runs the venv's python with args and returns its stdout; stderr goes to the log
// on failure.
func RunPython(t testing.TB, args ...string) string {
	t.Helper()
	out, err := runPython(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func runPython(args ...string) (string, error) {
	py, err := python()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(py, args...)
	cmd.Env = append(os.Environ(), "TF_CPP_MIN_LOG_LEVEL=2", "KERAS_BACKEND=tensorflow")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("python %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

var (
	exportMu sync.Mutex
	exported = map[string]string{}
)

// ExportModel runs savedmodel/export.py with args (e.g. "--backbone", "tiny") once per test
// binary and returns the model directory. Callers must not modify it.
func ExportModel(t testing.TB, args ...string) string {
	t.Helper()
	dir, err := exportModel(args...)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func exportModel(args ...string) (string, error) {
	key := strings.Join(args, " ")
	exportMu.Lock()
	defer exportMu.Unlock()
	if dir, ok := exported[key]; ok {
		return dir, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	base, err := os.MkdirTemp("", "emotions-test-model-")
	if err != nil {
		return "", err
	}
	dir := filepath.Join(base, "model")
	full := append([]string{filepath.Join(root, "savedmodel", "export.py"), "--out", dir}, args...)
	if _, err := runPython(full...); err != nil {
		return "", err
	}
	exported[key] = dir
	return dir, nil
}

var tinyArgs = []string{"--backbone", "tiny", "--seed", "1"}

// TinyModel is the tiny backbone with seed 1, the suite's default model.
func TinyModel(t testing.TB) string {
	return ExportModel(t, tinyArgs...)
}

// RunWithTinyModel is a package's TestMain for its Example functions, which have no
// testing.TB to fail with: it exports the tiny model, stores its directory in *dir, and runs
// the tests (the exit code for os.Exit).
func RunWithTinyModel(m *testing.M, dir *string) int {
	var err error
	if *dir, err = exportModel(tinyArgs...); err != nil {
		fmt.Fprintln(os.Stderr, "export the examples' model:", err)
		return 1
	}
	return m.Run()
}
