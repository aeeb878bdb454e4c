// Package testutil finds the project's venv and exports small models for tests. Tests that
// need Python fail (never skip) when the venv is missing: `make setup` creates it.
package testutil

import (
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
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// Python is the venv's interpreter (EMOTIONS_PYTHON overrides).
func Python(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("EMOTIONS_PYTHON"); p != "" {
		return p
	}
	p := filepath.Join(RepoRoot(t), ".venv", "bin", "python")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no %s: run `make setup` first", p)
	}
	return p
}

// RunPython runs the venv's python with args and returns its stdout; stderr goes to the log
// on failure.
func RunPython(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command(Python(t), args...)
	cmd.Env = append(os.Environ(), "TF_CPP_MIN_LOG_LEVEL=2", "KERAS_BACKEND=tensorflow")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

var (
	exportMu sync.Mutex
	exported = map[string]string{}
)

// ExportModel runs savedmodel/export.py with args (e.g. "--backbone", "tiny") once per test
// binary and returns the model directory. Callers must not modify it.
func ExportModel(t testing.TB, args ...string) string {
	t.Helper()
	key := strings.Join(args, " ")
	exportMu.Lock()
	defer exportMu.Unlock()
	if dir, ok := exported[key]; ok {
		return dir
	}
	base, err := os.MkdirTemp("", "emotions-test-model-")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "model")
	full := append([]string{filepath.Join(RepoRoot(t), "savedmodel", "export.py"), "--out", dir}, args...)
	RunPython(t, full...)
	exported[key] = dir
	return dir
}

// TinyModel is the tiny backbone with seed 1, the suite's default model.
func TinyModel(t testing.TB) string {
	return ExportModel(t, "--backbone", "tiny", "--seed", "1")
}
