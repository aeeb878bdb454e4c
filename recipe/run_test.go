package recipe

import (
	"context"
	"encoding/csv"
	"errors"
	"github.com/emotions-dev/emotions/train"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
		p, err := preprocess.New(preprocess.Options{Height: 80, Width: 80, Face: preprocess.DefaultFaceOptions()})
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

// recipeRun is a run of the recipe cfg on the tiny model and faces4, as the CLI runs it.
type recipeRun struct {
	m     *tfgraph.Model
	src   *DatasetSource
	valid train.Tensors
	cfg   Config
	out   string
}

func newRecipeRun(t *testing.T, out string, cfg Config) *recipeRun {
	t.Helper()
	return newRecipeRunFrom(t, testutil.TinyModel(t), out, cfg)
}

func newRecipeRunFrom(t *testing.T, modelDir, out string, cfg Config) *recipeRun {
	t.Helper()
	m, err := tfgraph.Load(modelDir, tfgraph.Options{Device: "cpu", XLA: "off"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	tr, va := faces(t, m.Meta.Classes)
	in := preprocess.InputOf(m.Meta)
	src, err := NewDatasetSource(tr, in, len(m.Meta.Classes), cfg.Data())
	if err != nil {
		t.Fatal(err)
	}
	valid, err := DatasetValidation(va, in, len(m.Meta.Classes))
	if err != nil {
		t.Fatal(err)
	}
	return &recipeRun{m: m, src: src, valid: valid, cfg: cfg, out: out}
}

func (r *recipeRun) fit(ctx context.Context, resume *train.State, extra ...train.Option) (*train.Summary, error) {
	opts, err := r.cfg.FitOptions(r.out, resume != nil, io.Discard)
	if err != nil {
		return nil, err
	}
	if resume != nil {
		opts = append(opts, train.WithResume(resume))
	}
	return train.Fit(ctx, r.m, r.src, r.valid, append(opts, extra...)...)
}

// A short real run on faces4: the training loss goes down and the run directory holds the
// history, summary, resume state and a best model that Python reloads with trained weights.
func TestShortRealRun(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Epochs = 3
	out := filepath.Join(t.TempDir(), "run")
	s, err := newRecipeRun(t, out, cfg).fit(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.EpochsRun != 3 || s.BestEpoch < 1 || s.BestValLoss == nil {
		t.Fatalf("summary %+v", s)
	}
	if s.Timing.Steps != 3*9 || s.Timing.TrainStepS <= 0 || s.Timing.FirstStepS <= 0 || s.Timing.ValidationS <= 0 ||
		len(s.Timing.CheckpointBlockingPerEpochS) != 3 || s.Timing.TrainStepS > s.Timing.FitS {
		t.Fatalf("timing %+v", s.Timing)
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
	for _, f := range []string{"best/saved_model.pb", "best/emotions.json", "last/train_state.json", "history.json", "summary.json"} {
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

	wholeDir := filepath.Join(t.TempDir(), "whole")
	if _, err := newRecipeRun(t, wholeDir, cfg).fit(context.Background(), nil); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(t.TempDir(), "parts")
	ctx, cancel := context.WithCancel(context.Background())
	interrupt := train.StepEndFunc("interrupt", func(s train.StepLogs) error {
		if s.Epoch == 1 && s.Step == 3 { // after the 4th step of the 2nd epoch
			cancel()
		}
		return nil
	})
	if _, err := newRecipeRun(t, out, cfg).fit(ctx, nil, train.WithCallbacks(interrupt)); !errors.Is(err, train.ErrInterrupted) {
		t.Fatalf("want ErrInterrupted, got %v", err)
	}
	st, err := train.LoadState(out)
	if err != nil {
		t.Fatal(err)
	}
	if st.Epoch != 1 || st.Step != 4 {
		t.Fatalf("saved at epoch %d step %d, want 1/4", st.Epoch, st.Step)
	}
	recorded, err := FromState(st)
	if err != nil {
		t.Fatal(err)
	}
	if recorded.Epochs != cfg.Epochs || recorded.Seed != cfg.Seed || *recorded.Augment != *cfg.Augment {
		t.Fatalf("the resume state records the recipe %+v, the run was %+v", recorded, cfg)
	}
	resumed := newRecipeRunFrom(t, train.LastDir(out), out, recorded)
	parts, err := resumed.fit(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	if parts.EpochsRun != 3 {
		t.Fatalf("resumed run has %d epochs, want 3", parts.EpochsRun)
	}
	wantRows := readCSV(t, filepath.Join(wholeDir, "history.csv"))
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
	// Resuming with the untrained model instead of last/ is refused, not silently trained.
	wrong := newRecipeRun(t, filepath.Join(t.TempDir(), "wrong"), cfg)
	if _, err := wrong.fit(context.Background(), st); err == nil || !strings.Contains(err.Error(), "last/") {
		t.Fatalf("resume with a model that is not the run's last/: %v", err)
	}
}

func TestNonFiniteLossStops(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Epochs = 2
	out := filepath.Join(t.TempDir(), "run")
	r := newRecipeRun(t, out, cfg)
	// An infinite step size turns the weights into inf, then NaN, within a step or two.
	if _, err := r.m.SetLearningRate(math.Inf(1)); err != nil {
		t.Fatal(err)
	}
	_, err := r.fit(context.Background(), nil)
	if !errors.Is(err, train.ErrNonFinite) {
		t.Fatalf("want a non-finite loss error, got %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "summary.json")); err != nil {
		t.Fatal("no summary.json after the NaN stop")
	}
}

func TestBadRunInput(t *testing.T) {
	r := newRecipeRun(t, filepath.Join(t.TempDir(), "run"), DefaultConfig())
	tr, _ := faces(t, r.m.Meta.Classes)
	in := preprocess.InputOf(r.m.Meta)
	if _, err := NewDatasetSource(&preprocess.Dataset{Classes: []string{"a", "b", "c"}, Height: 80, Width: 80}, in, 4, r.cfg.Data()); err == nil {
		t.Fatal("classes that do not match the model's were accepted")
	}
	small := in
	small.Height, small.Width = 40, 40
	if _, err := NewDatasetSource(tr, small, 4, r.cfg.Data()); err == nil || !strings.Contains(err.Error(), "80x80") {
		t.Fatalf("crops of another size: %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := train.Fit(context.Background(), r.m, r.src, r.valid, train.WithRunDir(filepath.Join(file, "run"))); err == nil {
		t.Fatal("a run directory under a regular file was accepted")
	}
	if _, err := train.Fit(context.Background(), r.m, r.src, r.valid, train.WithEpochs(0)); err == nil {
		t.Fatal("0 epochs accepted")
	}
	if _, err := train.Fit(context.Background(), r.m, badSource{}, r.valid); err == nil || !strings.Contains(err.Error(), "label values") {
		t.Fatalf("a batch of the wrong shape: %v", err)
	}
}

// badSource gives batches whose labels do not match the model's classes.
type badSource struct{}

func (badSource) StepsPerEpoch() int { return 2 }
func (badSource) Next(context.Context) (train.Batch, error) {
	return train.Batch{Images: make([]float32, 80*80*3), Labels: make([]float32, 3), N: 1}, nil
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

// A source that cannot be repositioned cannot resume a run stopped part way: Fit says so
// instead of training on batches the stopped run already saw.
func TestResumeNeedsASeekableSource(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	r := newRecipeRun(t, out, DefaultConfig())
	ctx, cancel := context.WithCancel(context.Background())
	stop := train.StepEndFunc("stop", func(s train.StepLogs) error {
		if s.Step == 1 {
			cancel()
		}
		return nil
	})
	if _, err := train.Fit(ctx, r.m, r.src, r.valid, train.WithRunDir(out), train.WithEpochs(2), train.WithCallbacks(stop)); !errors.Is(err, train.ErrInterrupted) {
		t.Fatalf("want an interruption, got %v", err)
	}
	st, err := train.LoadState(out)
	if err != nil {
		t.Fatal(err)
	}
	m, err := tfgraph.Load(train.LastDir(out), tfgraph.Options{Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	_, err = train.Fit(context.Background(), m, onlyNext{r.src}, r.valid, train.WithRunDir(out), train.WithEpochs(2), train.WithResume(st))
	if !errors.Is(err, train.ErrNotSeekable) {
		t.Fatalf("resume with a source that cannot seek: %v", err)
	}
}

// onlyNext hides a source's Seek.
type onlyNext struct{ train.Source }
