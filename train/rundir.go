package train

import (
	"fmt"
	"os"
	"path/filepath"
)

// Layout names the files of a run directory. Fit writes last/ (the resume state with its
// variables), history.json and summary.json; the recipe's callbacks write best/ (the best
// model so far), history.csv and a scratch directory for EarlyStopping's best weights.
type Layout string

// Best is the best model so far (ModelCheckpoint's save_best_only).
func (l Layout) Best() string { return filepath.Join(string(l), "best") }

// Last is the resumable state: the variables of the last finished epoch (or of the step
// where the run was interrupted) and train_state.json.
func (l Layout) Last() string { return filepath.Join(string(l), "last") }

// History is history.json: every epoch's logs.
func (l Layout) History() string { return filepath.Join(string(l), "history.json") }

// CSV is history.csv, written by the recipe's CSVLogger.
func (l Layout) CSV() string { return filepath.Join(string(l), "history.csv") }

// Summary is summary.json.
func (l Layout) Summary() string { return filepath.Join(string(l), "summary.json") }

// EarlyStoppingScratch holds EarlyStopping's best weights when it restores them.
func (l Layout) EarlyStoppingScratch() string {
	return filepath.Join(string(l), ".early-stopping-best")
}

// LastDir is where a run's resumable state lives.
func LastDir(run string) string { return Layout(run).Last() }

// ResolveModel turns what a user gives as a model into a model directory: a run directory
// (it has best/ and no model of its own) means its best model; anything else is used as it is.
func ResolveModel(path string) string {
	if _, err := os.Stat(filepath.Join(path, "saved_model.pb")); err == nil {
		return path
	}
	if _, err := os.Stat(filepath.Join(Layout(path).Best(), "saved_model.pb")); err == nil {
		return Layout(path).Best()
	}
	return path
}

// CheckWritable makes sure the run directory can be written, before hours of training.
func CheckWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("run directory %s: %w", dir, err)
	}
	probe, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("run directory %s is not writable: %w", dir, err)
	}
	probe.Close()
	return os.Remove(probe.Name())
}
