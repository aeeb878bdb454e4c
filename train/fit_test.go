package train

import (
	"context"
	"encoding/csv"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/emotions-dev/emotions/internal/testutil"
	"github.com/emotions-dev/emotions/preprocess"
	"github.com/emotions-dev/emotions/tfgraph"
)

var (
	facesOnce  sync.Once
	facesTrain *preprocess.Dataset
	facesValid *preprocess.Dataset
	facesErr   error
)

// faces loads the embedded faces4 train and valid splits once per test binary.
func faces(t *testing.T, classes []string) (*preprocess.Dataset, *preprocess.Dataset) {
	t.Helper()
	facesOnce.Do(func() {
		p, err := preprocess.New(preprocess.Options{InputSize: 80, Face: preprocess.DefaultFaceOptions()})
		if err != nil {
			facesErr = err
			return
		}
		root := filepath.Join(testutil.RepoRoot(t), "data", "faces4")
		facesTrain, facesErr = preprocess.LoadClassDirs(filepath.Join(root, "train"), classes, p, preprocess.LoadOptions{})
		if facesErr == nil {
			facesValid, facesErr = preprocess.LoadClassDirs(filepath.Join(root, "valid"), classes, p, preprocess.LoadOptions{})
		}
	})
	if facesErr != nil {
		t.Fatal(facesErr)
	}
	return facesTrain, facesValid
}

func tinyRun(t *testing.T, out string, cfg Config) *Run {
	t.Helper()
	m, err := tfgraph.Load(testutil.TinyModel(t), tfgraph.Options{Device: "cpu", XLA: "off"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	tr, va := faces(t, m.Meta.Classes)
	return &Run{Model: m, Train: tr, Valid: va, Config: cfg, Out: out}
}

// A short real run on faces4: the training loss goes down and the run directory holds the
// history, plots, summary and a best model that Python reloads with trained weights.
func TestShortRealRun(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Epochs = 3
	out := filepath.Join(t.TempDir(), "run")
	s, err := tinyRun(t, out, cfg).Execute(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.EpochsRun != 3 || s.BestEpoch < 1 || s.BestValLoss == nil {
		t.Fatalf("summary %+v", s)
	}
	rows := readCSV(t, filepath.Join(out, "history.csv"))
	if len(rows) != 4 || rows[0][0] != "epoch" {
		t.Fatalf("history.csv: %v", rows)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	for _, k := range []string{"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"} {
		if _, ok := col[k]; !ok {
			t.Fatalf("history.csv lacks %s: %v", k, rows[0])
		}
	}
	first, last := parseF(t, rows[1][col["loss"]]), parseF(t, rows[3][col["loss"]])
	if !(last < first) {
		t.Fatalf("training loss did not go down: %g -> %g", first, last)
	}
	for _, f := range []string{"best/saved_model.pb", "best/emotions.json", "last/train_state.json", "history.json", "summary.json", "loss.png", "accuracy.png"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Fatalf("run dir lacks %s", f)
		}
	}
	// Python reloads best/ and it is not the untrained model.
	got := testutil.RunPython(t, "-c", `
import sys, numpy as np, tensorflow as tf
x = np.random.default_rng(0).random((8, 80, 80, 3), dtype=np.float32)
a = tf.saved_model.load(sys.argv[1]).signatures["serving_default"](tf.constant(x))["probabilities"].numpy()
b = tf.saved_model.load(sys.argv[2]).signatures["serving_default"](tf.constant(x))["probabilities"].numpy()
print("moved" if np.abs(a - b).max() > 1e-4 else "same")`, testutil.TinyModel(t), filepath.Join(out, "best"))
	if got != "moved\n" {
		t.Fatalf("best/ reloaded in Python predicts like the untrained model: %q", got)
	}
}

// Interrupting mid-epoch and resuming gives the same per-epoch logs as an uninterrupted run.
func TestInterruptResumeEqualsUninterrupted(t *testing.T) {
	os.Setenv("TF_DETERMINISTIC_OPS", "1")
	cfg := DefaultConfig()
	cfg.Epochs, cfg.Seed = 3, 7
	a := preprocess.DefaultAugment()
	cfg.Augment = &a
	cfg.ClassWeights = "balanced"

	whole, err := tinyRun(t, filepath.Join(t.TempDir(), "whole"), cfg).Execute(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(t.TempDir(), "parts")
	ctx, cancel := context.WithCancel(context.Background())
	r := tinyRun(t, out, cfg)
	r.AfterStep = func(epoch, step int) {
		if epoch == 1 && step == 4 {
			cancel()
		}
	}
	if _, err := r.Execute(ctx, nil); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("want ErrInterrupted, got %v", err)
	}
	st, err := LoadState(out)
	if err != nil {
		t.Fatal(err)
	}
	if st.Epoch != 1 || st.Step != 4 {
		t.Fatalf("saved at epoch %d step %d, want 1/4", st.Epoch, st.Step)
	}
	m, err := tfgraph.Load(LastDir(out), tfgraph.Options{Device: "cpu", XLA: "off"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	resumed := &Run{Model: m, Train: r.Train, Valid: r.Valid, Config: st.Config, Out: out}
	parts, err := resumed.Execute(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	if parts.EpochsRun != whole.EpochsRun {
		t.Fatalf("resumed run has %d epochs, uninterrupted %d", parts.EpochsRun, whole.EpochsRun)
	}
	wantRows := readCSV(t, filepath.Join(filepath.Dir(whole.Best), "history.csv"))
	gotRows := readCSV(t, filepath.Join(out, "history.csv"))
	if len(wantRows) != len(gotRows) {
		t.Fatalf("history rows: resumed %d, uninterrupted %d", len(gotRows), len(wantRows))
	}
	for i := 1; i < len(wantRows); i++ {
		for j := range wantRows[i] {
			w, g := parseF(t, wantRows[i][j]), parseF(t, gotRows[i][j])
			if math.Abs(w-g) > 1e-6*math.Max(1, math.Abs(w)) {
				t.Fatalf("epoch %d column %s: resumed %v, uninterrupted %v", i-1, wantRows[0][j], g, w)
			}
		}
	}
}

func TestNonFiniteLossStops(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Epochs = 2
	out := filepath.Join(t.TempDir(), "run")
	r := tinyRun(t, out, cfg)
	// An infinite step size turns the weights into inf, then NaN, within a step or two.
	if _, err := r.Model.SetLearningRate(math.Inf(1)); err != nil {
		t.Fatal(err)
	}
	_, err := r.Execute(context.Background(), nil)
	if !errors.Is(err, ErrNonFinite) {
		t.Fatalf("want a non-finite loss error, got %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "summary.json")); err != nil {
		t.Fatal("no summary.json after the NaN stop")
	}
}

func TestBadRunInput(t *testing.T) {
	r := tinyRun(t, filepath.Join(t.TempDir(), "run"), DefaultConfig())
	bad := *r
	bad.Valid = &preprocess.Dataset{Classes: []string{"a", "b", "c", "d"}, Size: 80}
	if _, err := bad.Execute(context.Background(), nil); err == nil {
		t.Fatal("classes that do not match the model's were accepted")
	}
	ro := t.TempDir()
	os.Chmod(ro, 0o500)
	bad = *r
	bad.Out = filepath.Join(ro, "run")
	if os.Geteuid() != 0 { // root writes anywhere; the check below covers it
		if _, err := bad.Execute(context.Background(), nil); err == nil {
			t.Fatal("an unwritable --out was accepted")
		}
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	bad.Out = filepath.Join(file, "run")
	if _, err := bad.Execute(context.Background(), nil); err == nil {
		t.Fatal("an --out under a regular file was accepted")
	}
	bad = *r
	bad.Config.Epochs = 0
	if _, err := bad.Execute(context.Background(), nil); err == nil {
		t.Fatal("0 epochs accepted")
	}
}

func TestWilson(t *testing.T) {
	// By hand: p = 0.8125, n = 240, z = 1.96: centre (p + z²/2n)/(1 + z²/n) = 0.80757,
	// half-width z·sqrt(p(1-p)/n + z²/4n²)/(1 + z²/n) = 0.04924.
	ci := Wilson(195, 240)
	if math.Abs(ci[0]-0.75833) > 1e-4 || math.Abs(ci[1]-0.85681) > 1e-4 {
		t.Fatalf("Wilson(195, 240) = %v", ci)
	}
	if ci := Wilson(0, 10); ci[0] != 0 || ci[1] <= 0 {
		t.Fatalf("Wilson(0, 10) = %v", ci)
	}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func parseF(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return v
}

// The summary's best epoch is the one ModelCheckpoint saved: with a tie on the monitored value
// (common for val_accuracy on 145 images) that is the first, since saving needs a strict
// improvement.
func TestSummaryBestEpochOnTies(t *testing.T) {
	ck, err := NewModelCheckpoint(ModelCheckpointConfig{Filepath: "best", Monitor: "val_accuracy", SaveBestOnly: true, Mode: ModeMax, Out: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	m := newFakeModel(1e-3, []string{"accuracy"})
	var history []EpochRecord
	for epoch, v := range []float64{0.4, 0.6, 0.6, 0.5} {
		m.weights = epoch
		logs := EpochLogs{"val_accuracy": v, "val_loss": 1 - v}
		if err := ck.OnEpochEnd(epoch, logs, m); err != nil {
			t.Fatal(err)
		}
		history = append(history, EpochRecord{Epoch: epoch + 1, Logs: logs})
	}
	var s Summary
	s.fill(history, ck, nil, "val_accuracy")
	if m.saved["best"] != 1 || s.BestEpoch != 2 {
		t.Fatalf("best/ holds epoch %d (0-based), summary says best epoch %d (1-based)", m.saved["best"], s.BestEpoch)
	}
}
