package train_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"sync"
	"testing"

	"github.com/emotions-dev/emotions/arrays"
	"github.com/emotions-dev/emotions/internal/example"
	"github.com/emotions-dev/emotions/internal/testutil"
	"github.com/emotions-dev/emotions/recipe"
	"github.com/emotions-dev/emotions/tfgraph"
	"github.com/emotions-dev/emotions/train"
)

var (
	tabularOnce              sync.Once
	tabularDir, tabularModel string
	tabularErr               error
)

// tabularRun exports examples/tabular's model (8 features, MSE, MAE) once per test binary and
// returns its data directory and model directory.
func tabularRun(t *testing.T) (data, model string) {
	t.Helper()
	tabularOnce.Do(func() {
		if tabularDir, tabularErr = testutil.SharedDir("emotions-test-model-"); tabularErr != nil {
			return
		}
		t.Setenv("EMOTIONS_PYTHON", testutil.Python(t))
		modelPy := filepath.Join(testutil.RepoRoot(t), "examples", "tabular", "model.py")
		if tabularErr = example.Prepare(tabularDir, modelPy); tabularErr == nil {
			tabularModel, tabularErr = example.Export(tabularDir, "", "", io.Discard)
		}
	})
	if tabularErr != nil {
		t.Fatal(tabularErr)
	}
	return tabularDir, tabularModel
}

// fitArrays trains the tabular model (loaded from model) for 3 epochs into run with the seed
// recipe's callbacks (recipe.DefaultConfig, as the CLI runs it), from the run's state when resume is given.
func fitArrays(t *testing.T, ctx context.Context, data, model, run string, resume *train.State, extra ...train.Option) (*train.Summary, error) {
	t.Helper()
	m, err := tfgraph.Load(model, tfgraph.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	trainData, err := train.LoadArrayData(filepath.Join(data, "train.npz"), m.Inputs(), m.Targets(), arrays.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	validData, err := train.LoadArrayData(filepath.Join(data, "valid.npz"), m.Inputs(), m.Targets(), arrays.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	src, err := train.NewArraySource(trainData, 32, true, 5)
	if err != nil {
		t.Fatal(err)
	}
	cfg := recipe.DefaultConfig()
	cfg.Epochs, cfg.BatchSize, cfg.Seed = 3, 32, 5
	cfg.Callbacks.ReduceLRPatience = 1
	opts, err := cfg.FitOptions(run, resume != nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resume != nil {
		opts = append(opts, train.WithResume(resume))
	}
	return train.Fit(ctx, m, src, validData, append(opts, extra...)...)
}

// A generic model's run stopped mid-epoch (its metrics' running state half an epoch in) and
// resumed from last/ logs what an uninterrupted run logs: every column of history.csv, the
// shuffled batch order and ReduceLROnPlateau's learning rate included.
func TestArrayRunResumesAsUninterrupted(t *testing.T) {
	data, model := tabularRun(t)
	whole := filepath.Join(t.TempDir(), "whole")
	if _, err := fitArrays(t, context.Background(), data, model, whole, nil); err != nil {
		t.Fatal(err)
	}
	parts := filepath.Join(t.TempDir(), "parts")
	ctx, interrupt := interruptAt(1, 2)
	if _, err := fitArrays(t, ctx, data, model, parts, nil, train.WithCallbacks(interrupt)); !errors.Is(err, train.ErrInterrupted) {
		t.Fatalf("want train.ErrInterrupted, got %v", err)
	}
	st, err := train.LoadState(parts)
	if err != nil {
		t.Fatal(err)
	}
	if st.Epoch != 1 || st.Step != 3 || st.Progress.Logs["mae"] == 0 {
		t.Fatalf("saved at epoch %d step %d with running logs %v, want 1/3 and the epoch's logs so far", st.Epoch, st.Step, st.Progress.Logs)
	}
	if _, err := fitArrays(t, context.Background(), data, train.LastDir(parts), parts, st); err != nil {
		t.Fatal(err)
	}
	want, err := example.ReadCSV(filepath.Join(whole, "history.csv"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := example.ReadCSV(filepath.Join(parts, "history.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if len(want.Columns) != 5 { // learning_rate, loss, mae, val_loss, val_mae
		t.Fatalf("columns %v", want.Columns)
	}
	for _, d := range example.Compare(got, want, 1e-6, 1e-6) {
		t.Error("resumed vs uninterrupted:", d)
	}
}

// interruptAt is a context and a callback that cancels it at the end of the step StepLogs
// numbers epoch, step: a run stopped mid-epoch, as Ctrl-C stops one.
func interruptAt(epoch, step int) (context.Context, train.Callback) {
	ctx, cancel := context.WithCancel(context.Background())
	return ctx, train.StepEndFunc("interrupt", func(s train.StepLogs) error {
		if s.Epoch == epoch && s.Step == step {
			cancel()
		}
		return nil
	})
}
