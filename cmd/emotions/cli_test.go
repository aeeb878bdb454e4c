package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emotions-dev/emotions/internal/testutil"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

func TestMain(m *testing.M) { os.Exit(testutil.Main(m)) }

// emotions builds the binary once (with the cgo environment `make test` exports) and runs it.
func emotions(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := testutil.SharedDir("emotions-bin-")
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

	badTargets := filepath.Join(t.TempDir(), "targets.csv")
	os.WriteFile(badTargets, []byte("file,angry,happy,normal,sad\nhappy/x.jpg,0.5,0.5,oops,0\n"), 0o644)
	mustFail(t, badTargets+":2: happy/x.jpg: normal", "train", "--data", good, "--model", model, "--out", out, "--soft-targets", badTargets)
	otherFolder := filepath.Join(t.TempDir(), "targets.csv")
	os.WriteFile(otherFolder, []byte("file,angry,happy,normal,sad\nbored/x.jpg,0.5,0.5,0,0\n"), 0o644)
	mustFail(t, "none of its 1 files", "train", "--data", good, "--model", model, "--out", out, "--soft-targets", otherFolder)
	if _, err := os.Stat(filepath.Join(out, "history.csv")); err == nil {
		t.Fatal("a refused run wrote history")
	}
}

// train --soft-targets trains on the listed distributions and records the CSV for --resume.
func TestTrainSoftTargets(t *testing.T) {
	model := testutil.TinyModel(t)
	classes := []string{"angry", "happy", "normal", "sad"}
	data := makeFaces(t, classes, 3)
	entries, _ := os.ReadDir(filepath.Join(data, "train", "happy"))
	csv := filepath.Join(t.TempDir(), "teacher.csv")
	body := "file,sad,normal,happy,angry\n" +
		"happy/" + entries[0].Name() + ",0.1,0.2,0.6,0.1\n" +
		"happy/" + entries[1].Name() + ",0,0,1,3\n" +
		"happy/not-there.jpg,0,0,1,0\n"
	os.WriteFile(csv, []byte(body), 0o644)
	run := filepath.Join(t.TempDir(), "run")
	out, stderr, code := emotions(t, "train", "--data", data, "--model", model, "--out", run,
		"--soft-targets", csv, "--epochs", "1", "--batch-size", "4", "--cache", "", "--json")
	if code != 0 {
		t.Fatalf("train exited %d:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "soft targets: 2 of 12 training images") || !strings.Contains(stderr, "1 rows name no training image") {
		t.Errorf("train does not report what it matched:\n%s", stderr)
	}
	var summary struct {
		Settings struct {
			SoftTargets string `json:"soft_targets"`
		} `json:"settings"`
	}
	if err := json.Unmarshal([]byte(out), &summary); err != nil || summary.Settings.SoftTargets != csv {
		t.Errorf("summary does not record the soft targets (%v):\n%s", err, out)
	}
}

// A validation set covering only some of the model's classes is refused, with the way out
// named, and accepted with --valid-subset (recorded for --resume); an empty one never is.
func TestTrainValidSubset(t *testing.T) {
	model := testutil.TinyModel(t)
	data := makeFaces(t, []string{"angry", "happy", "normal", "sad"}, 2)
	os.RemoveAll(filepath.Join(data, "valid", "sad"))
	run := filepath.Join(t.TempDir(), "run")
	mustFail(t, "--valid-subset", "train", "--data", data, "--model", model, "--out", run, "--cache", "")
	out, stderr, code := emotions(t, "train", "--data", data, "--model", model, "--out", run,
		"--valid-subset", "--epochs", "1", "--batch-size", "4", "--cache", "", "--json")
	if code != 0 {
		t.Fatalf("train --valid-subset exited %d:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "sad 0") {
		t.Errorf("train does not show the absent class:\n%s", stderr)
	}
	var summary struct {
		Settings struct {
			ValidSubset bool `json:"valid_subset"`
		} `json:"settings"`
	}
	if err := json.Unmarshal([]byte(out), &summary); err != nil || !summary.Settings.ValidSubset {
		t.Errorf("summary does not record valid_subset (%v):\n%s", err, out)
	}
	for _, c := range []string{"angry", "happy", "normal"} {
		os.RemoveAll(filepath.Join(data, "valid", c))
	}
	mustFail(t, "no usable validation image", "train", "--data", data, "--model", model,
		"--out", filepath.Join(t.TempDir(), "run"), "--valid-subset", "--cache", "")
}

// evaluate gives the accuracy and loss Keras computes from the same SavedModel on the .npz that
// `emotions preprocess` writes (which is what evaluate feeds the model).
func TestEvaluateMatchesKerasOnNPZ(t *testing.T) {
	model := testutil.TinyModel(t)
	data := filepath.Join(testutil.RepoRoot(t), "data", "faces4", "valid")
	out, stderr, code := emotions(t, "evaluate", "--model", model, "--data", data, "--json", "--cache", "", "--confusion", filepath.Join(t.TempDir(), "c.png"))
	if code != 0 {
		t.Fatalf("evaluate: %s", stderr)
	}
	var r struct {
		Accuracy  float64
		Loss      float64
		N         int
		Confusion [][]int
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	npz := filepath.Join(t.TempDir(), "valid.npz")
	if _, stderr, code := emotions(t, "preprocess", "--data", data, "--model", model, "--out", npz, "--cache", ""); code != 0 {
		t.Fatalf("preprocess: %s", stderr)
	}
	// Keras' own evaluate of the restored model: the loss is the compiled categorical
	// cross-entropy averaged over samples.
	py := testutil.RunPython(t, "-c", `
import sys, json, numpy as np, tensorflow as tf, keras
d = np.load(sys.argv[2], allow_pickle=False)
x, y = d["x"], d["y"]
m = tf.saved_model.load(sys.argv[1])
p = m.signatures["serve"](images=tf.constant(x))["probabilities"].numpy()
onehot = np.eye(p.shape[1], dtype=np.float32)[y]
loss = float(np.mean(keras.losses.categorical_crossentropy(onehot, p).numpy()))
e = m.signatures["evaluate"](images=tf.constant(x), labels=tf.constant(onehot))
print(json.dumps({"n": len(y), "accuracy": float((p.argmax(1) == y).mean()), "loss": loss,
                  "sig_loss": float(e["loss_sum"]) / len(y), "sig_acc": float(e["correct"]) / len(y)}))`, model, npz)
	var raw map[string]float64
	if err := json.Unmarshal([]byte(py), &raw); err != nil {
		t.Fatal(err)
	}
	if r.N != int(raw["n"]) || r.Accuracy != raw["accuracy"] {
		t.Fatalf("evaluate n=%d acc=%v; Keras n=%v acc=%v", r.N, r.Accuracy, raw["n"], raw["accuracy"])
	}
	for name, want := range map[string]float64{"keras.losses": raw["loss"], "evaluate signature": raw["sig_loss"]} {
		if math.Abs(r.Loss-want) > 1e-5 {
			t.Fatalf("evaluate loss %.7f, %s %.7f", r.Loss, name, want)
		}
	}
	if math.Abs(raw["sig_acc"]-r.Accuracy) > 1e-9 {
		t.Fatalf("evaluate signature accuracy %v, evaluate %v", raw["sig_acc"], r.Accuracy)
	}
}

// Every file of the bad-input corpus gets a prediction or a one-line error naming it.
func TestPredictBadCorpus(t *testing.T) {
	model := testutil.TinyModel(t)
	corpus := filepath.Join(testutil.RepoRoot(t), "preprocess", "testdata")
	entries, _ := os.ReadDir(corpus)
	var files []string
	for _, e := range entries {
		if !e.IsDir() {
			files = append(files, filepath.Join(corpus, e.Name()))
		}
	}
	missing := filepath.Join(corpus, "does-not-exist.jpg")
	args := append([]string{"predict", "--model", model, "--json", "--annotate", t.TempDir()}, append(files, missing)...)
	out, stderr, code := emotions(t, args...)
	if code != 0 {
		t.Fatalf("predict exited %d: %s", code, stderr)
	}
	var preds []struct {
		File          string
		Label         *string
		Probabilities map[string]float64
		Face          *struct{ X, Y, Width, Height int }
		Error         *string
	}
	if err := json.Unmarshal([]byte(out), &preds); err != nil {
		t.Fatal(err)
	}
	if len(preds) != len(files)+1 {
		t.Fatalf("%d predictions for %d files", len(preds), len(files)+1)
	}
	errs := map[string]string{}
	for i, p := range preds {
		if p.File != append(files, missing)[i] {
			t.Fatalf("prediction %d is for %s, want %s", i, p.File, files[i])
		}
		switch {
		case p.Error != nil:
			if p.Label != nil || p.Probabilities != nil || !strings.Contains(*p.Error, filepath.Base(p.File)) || strings.Contains(*p.Error, "\n") {
				t.Fatalf("%s: bad error object %+v", p.File, p)
			}
			errs[filepath.Base(p.File)] = *p.Error
		case p.Label != nil && len(p.Probabilities) == 4:
		default:
			t.Fatalf("%s: neither a label nor an error", p.File)
		}
	}
	for _, must := range []string{"zero-bytes.jpg", "text-file.jpg", "bomb-30000x30000.png", "does-not-exist.jpg"} {
		if _, ok := errs[must]; !ok {
			t.Errorf("%s got no error", must)
		}
	}
	if len(errs) > 5 {
		t.Errorf("%d errors: decodable files were refused: %v", len(errs), errs)
	}
}

// kill -9 at any moment leaves best/ and last/ loadable: each is swapped in whole, so it is a
// complete SavedModel from some epoch, never half written. The kills land after the first
// checkpoint, at staggered times, while later epochs save over it.
func TestKill9LeavesLoadableModels(t *testing.T) {
	model := testutil.TinyModel(t)
	data := filepath.Join(testutil.RepoRoot(t), "data", "faces4")
	emotions(t, "info", model) // builds the binary
	for i, extra := range []time.Duration{0, 150 * time.Millisecond, 400 * time.Millisecond, 900 * time.Millisecond} {
		out := filepath.Join(t.TempDir(), "run")
		cmd := exec.Command(binary, "train", "--data", data, "--model", model, "--out", out, "--epochs", "50",
			"--no-early-stopping", "--save-every-epoch", "--cache", "")
		cmd.Env = append(os.Environ(), "TF_CPP_MIN_LOG_LEVEL=2")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The first checkpoint takes seconds; the bound only catches a run that never saves.
		deadline := time.Now().Add(10 * time.Minute)
		for {
			if _, err := os.Stat(filepath.Join(out, "last")); err == nil {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatal("no checkpoint after 10 minutes")
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(extra)
		cmd.Process.Kill() // SIGKILL: no chance to clean up
		cmd.Wait()
		for _, sub := range []string{"best", "last"} {
			dir := filepath.Join(out, sub)
			if _, stderr, code := emotions(t, "info", dir); code != 0 {
				t.Fatalf("kill %d (%v after the first checkpoint): %s is not loadable: %s", i, extra, dir, stderr)
			}
		}
	}
}

// A run moved together with its data resumes (its folders are also recorded relative to the
// run); data moved on its own is named with the way out (--data), and --data with --resume
// finds it; other data (another image count) is refused.
func TestTrainResumeMovedRun(t *testing.T) {
	model := testutil.TinyModel(t)
	classes := []string{"angry", "happy", "normal", "sad"}
	work := filepath.Join(t.TempDir(), "work")
	os.MkdirAll(work, 0o755)
	if err := os.Rename(makeFaces(t, classes, 3), filepath.Join(work, "data")); err != nil {
		t.Fatal(err)
	}
	train := func(args ...string) (string, int) {
		_, stderr, code := emotions(t, append([]string{"train", "--batch-size", "4", "--cache", ""}, args...)...)
		return stderr, code
	}
	if stderr, code := train("--data", filepath.Join(work, "data"), "--model", model,
		"--out", filepath.Join(work, "run"), "--epochs", "1"); code != 0 {
		t.Fatalf("train exited %d:\n%s", code, stderr)
	}
	moved := filepath.Join(t.TempDir(), "moved")
	if err := os.Rename(work, moved); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(moved, "run")
	if stderr, code := train("--resume", run, "--epochs", "2"); code != 0 {
		t.Fatalf("resume of a run moved with its data exited %d:\n%s", code, stderr)
	}
	state, err := os.ReadFile(filepath.Join(run, "last", "train_state.json"))
	if err != nil || !strings.Contains(string(state), filepath.Join(moved, "data", "train")) {
		t.Errorf("the resumed state does not record where the data is now (%v):\n%s", err, state)
	}

	data := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.Rename(filepath.Join(moved, "data"), data); err != nil {
		t.Fatal(err)
	}
	stderr, code := train("--resume", run, "--epochs", "3")
	if code == 0 || !strings.Contains(stderr, filepath.Join(moved, "data", "train")) || !strings.Contains(stderr, "--data") {
		t.Fatalf("resume without its data: exit %d, want the missing folder and --data named:\n%s", code, stderr)
	}
	if stderr, code := train("--resume", run, "--epochs", "3", "--data", data); code != 0 {
		t.Fatalf("resume --data exited %d:\n%s", code, stderr)
	}
	os.Remove(filepath.Join(data, "train", "happy", firstFile(t, filepath.Join(data, "train", "happy"))))
	stderr, code = train("--resume", run, "--epochs", "4", "--data", data)
	if code == 0 || !strings.Contains(stderr, "not the same data") {
		t.Fatalf("resume on other data: exit %d, want it refused:\n%s", code, stderr)
	}
}

func firstFile(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("read %s: %v", dir, err)
	}
	return entries[0].Name()
}

// A run directory named with braces trains and resumes (only a user's own checkpoint template
// is formatted), and --test evaluates best/ in the same process: the report is printed and
// recorded in summary.json with the time it took.
func TestTrainBracesDirAndTest(t *testing.T) {
	model := testutil.TinyModel(t)
	data := makeFaces(t, []string{"angry", "happy", "normal", "sad"}, 3)
	out := filepath.Join(t.TempDir(), "runs", "{x}")
	stdout, stderr, code := emotions(t, "train", "--data", data, "--model", model, "--out", out, "--epochs", "2",
		"--batch-size", "4", "--cache", "", "--test", filepath.Join(data, "valid"), "--backup-every", "1m")
	if code != 0 {
		t.Fatalf("train --out %s exited %d:\n%s", out, code, stderr)
	}
	if !strings.Contains(stdout, "confusion (rows: true, columns: predicted)") || !strings.Contains(stdout, "test: accuracy") {
		t.Errorf("no test report printed:\n%s", stdout)
	}
	var s struct {
		EpochsRun int    `json:"epochs_run"`
		Best      string `json:"best_model"`
		Test      *struct {
			N        int     `json:"n"`
			Accuracy float64 `json:"accuracy"`
		} `json:"test"`
		Timing struct {
			TestS      float64 `json:"test_s"`
			TrainStepS float64 `json:"train_step_s"`
		} `json:"timing"`
	}
	b, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil || json.Unmarshal(b, &s) != nil {
		t.Fatalf("summary.json: %v\n%s", err, b)
	}
	if s.EpochsRun != 2 || s.Best != filepath.Join(out, "best") || s.Test == nil || s.Test.N != 12 || s.Timing.TestS <= 0 || s.Timing.TrainStepS <= 0 {
		t.Fatalf("summary: %+v", s)
	}
	for _, f := range []string{"loss.png", "accuracy.png", "confusion.png"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("run lacks %s", f)
		}
	}
	if _, stderr, code := emotions(t, "train", "--resume", out, "--epochs", "3", "--cache", ""); code != 0 {
		t.Fatalf("resume of %s exited %d:\n%s", out, code, stderr)
	}
	mustFail(t, "--backup-every", "train", "--data", data, "--model", model, "--out", filepath.Join(t.TempDir(), "r"), "--backup-every", "soon")
	mustFail(t, "--test", "train", "--data", data, "--model", model, "--out", filepath.Join(t.TempDir(), "r"), "--test", "/nonexistent")
}

// Your own model, whatever its input: a FER2013-style Keras model (48x48 grayscale in, logits
// out), built in Keras by the test, is wrapped, trained from Go, evaluated, used by predict,
// exported and served; Go's predictions equal Keras' on the same tensors within 1e-5, and the
// server answers the same probabilities.
func TestGrayscaleLogitsModelEndToEnd(t *testing.T) {
	script := filepath.Join(testutil.RepoRoot(t), "cmd", "emotions", "testdata", "fer_logits.py")
	work := t.TempDir()
	keras := filepath.Join(work, "fer.keras")
	testutil.RunPython(t, script, "build", keras)
	model, run := filepath.Join(work, "model"), filepath.Join(work, "run")
	if _, stderr, code := emotions(t, "new-model", "--from", keras, "--classes", "angry,happy,normal,sad", "--out", model, "--no-cache"); code != 0 {
		t.Fatalf("new-model --from exited %d:\n%s", code, stderr)
	}
	info, _, _ := emotions(t, "info", "--json", model)
	var meta struct {
		H      int    `json:"input_height"`
		W      int    `json:"input_width"`
		C      int    `json:"channels"`
		Output string `json:"output"`
	}
	if json.Unmarshal([]byte(info), &meta) != nil || meta.H != 48 || meta.W != 48 || meta.C != 1 || meta.Output != "logits" {
		t.Fatalf("info of the wrapped model: %s", info)
	}
	data := makeFaces(t, []string{"angry", "happy", "normal", "sad"}, 4)
	if _, stderr, code := emotions(t, "train", "--data", data, "--model", model, "--out", run, "--epochs", "2",
		"--batch-size", "8", "--cache", "", "--augment", "--test", filepath.Join(data, "valid")); code != 0 {
		t.Fatalf("train exited %d:\n%s", code, stderr)
	}
	evalOut, stderr, code := emotions(t, "evaluate", "--model", run, "--data", filepath.Join(data, "valid"), "--json", "--cache", "")
	var report struct {
		N    int     `json:"n"`
		Loss float64 `json:"loss"`
	}
	if code != 0 || json.Unmarshal([]byte(evalOut), &report) != nil || report.N != 16 || !(report.Loss > 0) {
		t.Fatalf("evaluate exited %d: %s\n%s", code, evalOut, stderr)
	}

	// Keras, given the weights Go trained, on exactly the tensors emotions feeds.
	npz := filepath.Join(work, "valid.npz")
	if _, stderr, code := emotions(t, "preprocess", "--model", run, "--data", filepath.Join(data, "valid"), "--out", npz, "--cache", ""); code != 0 {
		t.Fatalf("preprocess exited %d:\n%s", code, stderr)
	}
	kerasOut := filepath.Join(work, "keras.json")
	testutil.RunPython(t, script, "keras", keras, filepath.Join(run, "best"), npz, kerasOut)
	var k struct {
		Probabilities [][]float64 `json:"probabilities"`
		Files         []string    `json:"files"`
	}
	if b, err := os.ReadFile(kerasOut); err != nil || json.Unmarshal(b, &k) != nil || len(k.Files) != 16 {
		t.Fatalf("Keras' predictions: %v", err)
	}
	predOut, stderr, code := emotions(t, append([]string{"predict", "--model", run, "--json"}, k.Files...)...)
	var preds []struct {
		File          string             `json:"file"`
		Probabilities map[string]float64 `json:"probabilities"`
	}
	if code != 0 || json.Unmarshal([]byte(predOut), &preds) != nil || len(preds) != len(k.Files) {
		t.Fatalf("predict exited %d: %s\n%s", code, predOut, stderr)
	}
	classes := []string{"angry", "happy", "normal", "sad"}
	worst := 0.0
	for i, p := range preds {
		for j, c := range classes {
			worst = math.Max(worst, math.Abs(p.Probabilities[c]-k.Probabilities[i][j]))
		}
	}
	if worst > 1e-5 {
		t.Fatalf("Go's predictions differ from Keras' by %g", worst)
	}

	// Exported for TF Serving and served: :classify_image answers the same probabilities.
	base := filepath.Join(work, "serving")
	if _, stderr, code := emotions(t, "export", "--model", run, "--out", base); code != 0 {
		t.Fatalf("export exited %d:\n%s", code, stderr)
	}
	// Port 0: the server binds a free port itself and names it in its log, once it listens.
	root := startServe(t, "--model-base", base, "--model-name", "fer", "--port", "0", "--grpc-port", "-1")
	photo, err := os.ReadFile(k.Files[0])
	if err != nil {
		t.Fatal(err)
	}
	var served []struct {
		Probabilities map[string]float64 `json:"probabilities"`
	}
	resp, err := http.Post(root+"/v1/models/fer:classify_image", "image/jpeg", bytes.NewReader(photo))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || json.Unmarshal(body, &served) != nil || len(served) != 1 {
		t.Fatalf(":classify_image: %d %.300s", resp.StatusCode, body)
	}
	for j, c := range classes {
		if d := math.Abs(served[0].Probabilities[c] - k.Probabilities[0][j]); d > 1e-5 {
			t.Fatalf("the server's %s probability differs from Keras' by %g", c, d)
		}
	}
}

// startServe runs `emotions serve args...` until the test ends and returns its REST root
// (http://127.0.0.1:PORT) once the server says it listens. With --port 0 the server picks a
// free port itself: a port chosen here and bound there could be taken in between.
func startServe(t *testing.T, args ...string) string {
	t.Helper()
	emotions(t, "--help") // builds the binary
	srv := exec.Command(binary, append([]string{"serve"}, args...)...)
	srv.Env = append(os.Environ(), "TF_CPP_MIN_LOG_LEVEL=2")
	stderr, err := srv.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Signal(os.Interrupt); srv.Wait() })
	lines := bufio.NewScanner(stderr)
	var log strings.Builder
	for lines.Scan() {
		line := lines.Text()
		log.WriteString(line + "\n")
		if _, addr, ok := strings.Cut(line, "REST on http://"); ok {
			addr, _, _ = strings.Cut(addr, ",")
			go io.Copy(io.Discard, stderr) // the server must never block on a full pipe
			return "http://" + addr
		}
	}
	t.Fatalf("serve exited before listening:\n%s", log.String())
	return ""
}

// A non-square model (96 high, 64 wide) with its own three classes trains and predicts: crops
// keep the model's aspect ratio around the face.
func TestNonSquareModelTrainsAndPredicts(t *testing.T) {
	script := filepath.Join(testutil.RepoRoot(t), "cmd", "emotions", "testdata", "fer_logits.py")
	work := t.TempDir()
	keras := filepath.Join(work, "wide.keras")
	testutil.RunPython(t, script, "build-wide", keras)
	model, run := filepath.Join(work, "model"), filepath.Join(work, "run")
	if _, stderr, code := emotions(t, "new-model", "--from", keras, "--classes", "calm,excited,tired", "--out", model, "--no-cache"); code != 0 {
		t.Fatalf("new-model exited %d:\n%s", code, stderr)
	}
	data := makeFaces(t, []string{"calm", "excited", "tired"}, 3)
	if _, stderr, code := emotions(t, "train", "--data", data, "--model", model, "--out", run, "--epochs", "1", "--batch-size", "3", "--cache", ""); code != 0 {
		t.Fatalf("train exited %d:\n%s", code, stderr)
	}
	out, stderr, code := emotions(t, "predict", "--model", run, filepath.Join(data, "valid", "calm"))
	if code != 0 || strings.Count(out, ": ") != 3 || !strings.Contains(out, "[calm ") {
		t.Fatalf("predict exited %d:\n%s\n%s", code, out, stderr)
	}
}

// Every flag's placeholder in every command's --help is one word (DIR, BASE, value): urfave/cli
// takes the first `backquoted` words of a flag's usage for it, and a command named that way
// in the usage ("from `emotions new-model`") became "--model emotions new-model".
func TestHelpPlaceholders(t *testing.T) {
	commands := [][]string{{}}
	seen := 0
	for len(commands) > 0 {
		path := commands[0]
		commands = commands[1:]
		out, stderr, code := emotions(t, append(append([]string{}, path...), "--help")...)
		if code != 0 {
			t.Fatalf("emotions %v --help exited %d:\n%s", path, code, stderr)
		}
		section := ""
		for _, line := range strings.Split(out, "\n") {
			if !strings.HasPrefix(line, " ") {
				section = strings.TrimSpace(line)
				continue
			}
			fields := strings.Fields(line)
			switch {
			case len(fields) == 0:
			case section == "COMMANDS:" && fields[0] != "help," && fields[0] != "help":
				commands = append(commands, append(append([]string{}, path...), strings.TrimSuffix(fields[0], ",")))
			case strings.HasSuffix(section, "OPTIONS:") && strings.HasPrefix(fields[0], "-"):
				// The flag column ends where two spaces separate it from the usage.
				column, _, _ := strings.Cut(strings.TrimSpace(line), "  ")
				for _, name := range strings.Split(column, ", ") {
					seen++
					if words := strings.Fields(name); len(words) > 2 || strings.Contains(name, "emotions") {
						t.Errorf("emotions %v --help: flag %q has a placeholder of several words", path, name)
					}
				}
			}
		}
	}
	if seen < 50 {
		t.Fatalf("only %d flags found in the help: the help's layout changed and this test no longer reads it", seen)
	}
}

// TensorFlow's start-up lines (the oneDNN notice, absl's MLIR pass notice when the first
// session optimises its graph) are not shown unless the user asks with TF_CPP_MIN_LOG_LEVEL=0.
func TestTensorFlowNoiseHidden(t *testing.T) {
	model := testutil.TinyModel(t)
	emotions(t, "--help") // builds the binary
	noise := []string{"oneDNN custom operations", "mlir_graph_optimization_pass", "absl::InitializeLog"}
	run := func(level string) string {
		t.Helper()
		cmd := exec.Command(binary, "info", model)
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "TF_CPP_MIN_LOG_LEVEL=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		if level != "" {
			cmd.Env = append(cmd.Env, "TF_CPP_MIN_LOG_LEVEL="+level)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("info (TF_CPP_MIN_LOG_LEVEL=%q): %v\n%s", level, err, stderr.String())
		}
		return stderr.String()
	}
	for _, level := range []string{"", "1", "2"} {
		stderr := run(level)
		for _, line := range noise {
			if strings.Contains(stderr, line) {
				t.Errorf("TF_CPP_MIN_LOG_LEVEL=%q: stderr shows %q:\n%s", level, line, stderr)
			}
		}
	}
	stderr := run("0")
	for _, line := range noise {
		if !strings.Contains(stderr, line) {
			t.Errorf("TF_CPP_MIN_LOG_LEVEL=0: stderr lacks %q, which TensorFlow prints at INFO:\n%s", line, stderr)
		}
	}
}
