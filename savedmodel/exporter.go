package savedmodel

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ExportScript is export.py, embedded so the binary runs it wherever it is installed.
//
//go:embed export.py
var ExportScript []byte

// FindPython locates the interpreter with the pinned TensorFlow: EMOTIONS_PYTHON, else the
// .venv that `make setup` made beside the binary's repository (bin/emotions -> ../.venv), else
// the working directory's .venv.
func FindPython() (string, error) {
	if p := os.Getenv("EMOTIONS_PYTHON"); p != "" {
		return p, nil
	}
	var candidates []string
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		candidates = append(candidates, filepath.Join(filepath.Dir(exe), "..", ".venv", "bin", "python"))
	}
	if wd, err := os.Getwd(); err == nil {
		candidates = append(candidates, filepath.Join(wd, ".venv", "bin", "python"))
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return filepath.Clean(c), nil
		}
	}
	return "", errors.New("no Python with TensorFlow found: run `make setup` in the emotions checkout, " +
		"or set EMOTIONS_PYTHON to a python that has tensorflow-cpu==2.18.1 and keras==3.15.1")
}

// DefaultModelCache is where `new-model` keeps its exports by default (~/.cache/emotions/models),
// "" when the system has no cache directory.
func DefaultModelCache() string {
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "emotions", "models")
	}
	return ""
}

// Export runs the embedded exporter with args (see export.py --help), streaming its progress
// lines to progress.
func Export(args []string, progress io.Writer) error { return ExportEnv(args, nil, progress) }

// ExportEnv is Export with env ("KEY=value", each overriding the process's own) in the
// exporter's environment only, such as a PYTHONPATH that finds a --custom-module: a program
// that starts other processes, or exports from several goroutines, keeps its own environment.
func ExportEnv(args, env []string, progress io.Writer) error {
	py, err := FindPython()
	if err != nil {
		return err
	}
	script, err := os.CreateTemp("", "emotions-export-*.py")
	if err != nil {
		return err
	}
	defer os.Remove(script.Name())
	if _, err := script.Write(ExportScript); err != nil {
		return err
	}
	script.Close()
	cmd := exec.Command(py, append([]string{script.Name()}, args...)...)
	cmd.Env = append(append(os.Environ(), "TF_CPP_MIN_LOG_LEVEL=2", "KERAS_BACKEND=tensorflow"), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	cmd.Stdout = progress
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", py, err)
	}
	// Keep the exporter's last lines: on failure they hold Python's reason.
	var tail []string
	sc := bufio.NewScanner(stderr)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "[export] ") {
			fmt.Fprintln(progress, strings.TrimPrefix(line, "[export] "))
		}
		tail = append(tail, line)
		if len(tail) > 20 {
			tail = tail[1:]
		}
	}
	if err := cmd.Wait(); err != nil {
		last := ""
		for i := len(tail) - 1; i >= 0; i-- {
			if s := strings.TrimSpace(tail[i]); s != "" {
				last = s
				break
			}
		}
		return fmt.Errorf("exporter failed (%v): %s", err, last)
	}
	return nil
}
