// Package testutil finds the project's venv and exports small models for tests. Tests that
// need Python fail (never skip) when the venv is missing: `make setup` creates it.
//
// What a package's tests share outlives each test, so t.TempDir cannot hold it: it goes in
// a SharedDir, which the package's TestMain (Main or RunWithTinyModel) removes at the end.
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

	sharedMu   sync.Mutex
	sharedDirs []string
	// inMain is set while Main or RunWithTinyModel runs the tests: a shared directory made
	// outside them would outlive the test binary.
	inMain bool
)

// SharedDir makes a temporary directory (os.MkdirTemp's pattern) for something several tests
// of a package share, such as an exported model or a built binary. The package's TestMain
// must be Main or RunWithTinyModel, which remove it when the tests end: otherwise it is an
// error, as every run would leave the directory behind.
func SharedDir(pattern string) (string, error) {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if !inMain {
		return "", errors.New("a shared test directory needs the package's TestMain to be testutil.Main (or RunWithTinyModel), which removes it")
	}
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return "", err
	}
	sharedDirs = append(sharedDirs, dir)
	return dir, nil
}

// Main is a package's TestMain when its tests use SharedDir, ExportModel or TinyModel: it
// runs the tests, then removes the shared directories. It returns the exit code for os.Exit.
func Main(m *testing.M) int {
	begin()
	defer removeShared()
	return m.Run()
}

func begin() {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	inMain = true
}

func removeShared() {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	for _, dir := range sharedDirs {
		if err := os.RemoveAll(dir); err != nil {
			fmt.Fprintln(os.Stderr, "remove a shared test directory:", err)
		}
	}
	sharedDirs, inMain = nil, false
}

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
	base, err := SharedDir("emotions-test-model-")
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
// the tests (the exit code for os.Exit). Like Main, it removes the shared directories at the end.
func RunWithTinyModel(m *testing.M, dir *string) int {
	begin()
	defer removeShared()
	var err error
	if *dir, err = exportModel(tinyArgs...); err != nil {
		fmt.Fprintln(os.Stderr, "export the examples' model:", err)
		return 1
	}
	return m.Run()
}
