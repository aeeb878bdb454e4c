package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emotions-dev/emotions/internal/testutil"
)

// gpuCheck runs scripts/gpu_check.sh with args and extra environment; it returns stdout's
// JSON lines, stderr and the exit code.
func gpuCheck(t *testing.T, env []string, args ...string) (lines []map[string]any, stderr string, code int) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{filepath.Join(testutil.RepoRoot(t), "scripts", "gpu_check.sh")}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(o.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("stdout line %q is not JSON: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines, e.String(), code
}

// Without a GPU, make gpu-check says so and stops before installing or building anything.
func TestGPUCheckFailsFastWithoutGPU(t *testing.T) {
	noDriver := t.TempDir() // a PATH with bash's tools but no nvidia-smi
	for _, tool := range []string{"bash", "python3", "sed", "grep", "cat", "date", "dirname", "make", "tail"} {
		if p, err := exec.LookPath(tool); err == nil {
			if err := os.Symlink(p, filepath.Join(noDriver, tool)); err != nil {
				t.Fatal(err)
			}
		}
	}
	lines, stderr, code := gpuCheck(t, []string{"PATH=" + noDriver})
	if code != 2 || len(lines) != 1 || lines[0]["ok"] != false || !strings.Contains(stderr, "nvidia-smi is not installed") {
		t.Fatalf("no nvidia-smi: exit %d, lines %v, stderr %q", code, lines, stderr)
	}

	// A driver that lists a GPU, but a venv holding the CPU wheel: refused with the way out,
	// before `make setup` would mix two TensorFlow wheels.
	fake := filepath.Join(noDriver, "nvidia-smi")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho 'GPU 0: NVIDIA H200 (UUID: GPU-0)'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	venv := t.TempDir()
	if err := os.WriteFile(filepath.Join(venv, ".emotions-tf-package"), []byte("tensorflow-cpu==2.18.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lines, stderr, code = gpuCheck(t, []string{"PATH=" + noDriver, "VENV=" + venv})
	if code != 2 || len(lines) != 1 || !strings.Contains(stderr, "not the GPU wheel") || !strings.Contains(stderr, "rm -rf "+venv) {
		t.Fatalf("CPU wheel: exit %d, lines %v, stderr %q", code, lines, stderr)
	}

	// A driver that lists none.
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho 'No devices were found'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code = gpuCheck(t, []string{"PATH=" + noDriver}); code != 2 || !strings.Contains(stderr, "lists no GPU") {
		t.Fatalf("no GPU listed: exit %d, stderr %q", code, stderr)
	}
}

func TestGPUCheckArguments(t *testing.T) {
	for _, args := range [][]string{{"--bogus"}, {"--steps", "info,nope"}, {"--steps"}, {"--cpu-plumbing", "--steps", "irv2"}} {
		if _, stderr, code := gpuCheck(t, nil, args...); code != 2 || stderr == "" {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a reason", args, code, stderr)
		}
	}
	if _, stderr, code := gpuCheck(t, nil, "--help"); code != 0 || !strings.Contains(stderr, "make gpu-check") {
		t.Errorf("--help: exit %d, stderr %q", code, stderr)
	}
}

// The steps that need no GPU run on the CPU through the same code, and the report adds them
// up (the GPU figures themselves need a GPU: README, "GPU").
func TestGPUCheckReportOnCPU(t *testing.T) {
	emotions(t, "--version") // builds the binary
	lines, stderr, code := gpuCheck(t, []string{"BIN=" + binary, "GPU_CHECK_DIR=" + t.TempDir(), "EMOTIONS_PYTHON=" + testutil.Python(t)},
		"--cpu-plumbing", "--steps", "info,tiny")
	if code != 0 || len(lines) != 3 {
		t.Fatalf("exit %d, %d lines %v\n%s", code, len(lines), lines, stderr)
	}
	info, tiny, report := lines[0], lines[1], lines[2]
	if info["check"] != "info" || info["ok"] != true || info["device"] != "cpu" || info["gpu"] == nil {
		t.Errorf("info line %v", info)
	}
	if tiny["check"] != "tiny" || tiny["ok"] != true || tiny["epochs"] != 2.0 || len(tiny["loss"].([]any)) != 2 {
		t.Errorf("tiny line %v", tiny)
	}
	if report["check"] != "report" || report["ok"] != true || len(report["failed"].([]any)) != 0 || len(report["steps"].([]any)) != 2 {
		t.Errorf("report line %v", report)
	}
}
