package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/emotions-dev/emotions/internal/testutil"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// emotions builds the binary once (with the cgo environment `make test` exports) and runs it.
func emotions(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "emotions-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "emotions")
		out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
		if err != nil {
			buildErr = err
			t.Log(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("build: %v", buildErr)
	}
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "TF_CPP_MIN_LOG_LEVEL=2", "EMOTIONS_PYTHON="+testutil.Python(t))
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(e.String(), "goroutine ") || strings.Contains(e.String(), "panic:") {
		t.Fatalf("emotions %v panicked:\n%s", args, e.String())
	}
	return o.String(), e.String(), code
}

func mustFail(t *testing.T, want string, args ...string) {
	t.Helper()
	_, stderr, code := emotions(t, args...)
	if code == 0 {
		t.Fatalf("emotions %v exited 0", args)
	}
	if !strings.Contains(stderr, want) {
		t.Fatalf("emotions %v: error does not say %q:\n%s", args, want, stderr)
	}
}

// makeFaces builds DIR/{train,valid}/<class>/ with a few faces4 images each.
func makeFaces(t *testing.T, classes []string, perClass int) string {
	t.Helper()
	src := filepath.Join(testutil.RepoRoot(t), "data", "faces4", "train")
	dir := t.TempDir()
	for _, split := range []string{"train", "valid"} {
		for _, c := range classes {
			os.MkdirAll(filepath.Join(dir, split, c), 0o755)
			from := c
			if _, err := os.Stat(filepath.Join(src, c)); err != nil {
				from = "happy"
			}
			entries, _ := os.ReadDir(filepath.Join(src, from))
			for _, e := range entries[:perClass] {
				b, _ := os.ReadFile(filepath.Join(src, from, e.Name()))
				os.WriteFile(filepath.Join(dir, split, c, e.Name()), b, 0o644)
			}
		}
	}
	return dir
}

func TestInfo(t *testing.T) {
	model := testutil.TinyModel(t)
	out, _, code := emotions(t, "info", "--json", model)
	if code != 0 {
		t.Fatalf("info exited %d", code)
	}
	var info modelInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatal(err)
	}
	for _, sig := range []string{"serve", "train_step", "evaluate", "set_learning_rate"} {
		if _, ok := info.Signatures[sig]; !ok {
			t.Errorf("info lacks signature %s", sig)
		}
	}
	if info.InputSize != 80 || len(info.Classes) != 4 || info.TensorFlow == "" || len(info.Devices) == 0 {
		t.Fatalf("info: %+v", info)
	}
	empty := t.TempDir()
	mustFail(t, "empty", "info", empty)
	mustFail(t, "no such directory", "info", filepath.Join(empty, "nope"))
	mustFail(t, "no saved_model.pb", "info", testutil.RepoRoot(t))
}

// Bad training input is refused with a clear error before any training starts.
func TestTrainBadInput(t *testing.T) {
	model := testutil.TinyModel(t)
	classes := []string{"angry", "happy", "normal", "sad"}
	good := makeFaces(t, classes, 3)
	out := filepath.Join(t.TempDir(), "run")

	noValid := makeFaces(t, classes, 2)
	os.RemoveAll(filepath.Join(noValid, "valid"))
	mustFail(t, "valid", "train", "--data", noValid, "--model", model, "--out", out)

	emptyClass := makeFaces(t, classes, 2)
	entries, _ := os.ReadDir(filepath.Join(emptyClass, "train", "sad"))
	for _, e := range entries {
		os.Remove(filepath.Join(emptyClass, "train", "sad", e.Name()))
	}
	mustFail(t, "sad", "train", "--data", emptyClass, "--model", model, "--out", out)

	wrong := makeFaces(t, []string{"angry", "happy", "normal", "bored"}, 2)
	mustFail(t, "bored", "train", "--data", wrong, "--model", model, "--out", out)

	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	mustFail(t, file, "train", "--data", good, "--model", model, "--out", filepath.Join(file, "run"))

	mustFail(t, "--model", "train", "--data", good, "--out", out)
	if _, err := os.Stat(filepath.Join(out, "history.csv")); err == nil {
		t.Fatal("a refused run wrote history")
	}
}
