package train

import (
	"errors"
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

// ErrDataNotFound is wrapped by ResumeDataPath when a resumed run's data folder cannot be
// found: the caller has to say where it is now.
var ErrDataNotFound = errors.New("data folder not found")

// RecordDataPaths is what a run records of its data folders (key -> folder) for a resume:
// each as an absolute path and relative to the run directory (key + "_from_run"), so a run
// directory moved together with its data (an experiment's directory, a copied workspace)
// still finds it.
func RecordDataPaths(run string, paths map[string]string) map[string]any {
	rec := map[string]any{}
	absRun, errRun := filepath.Abs(run)
	for key, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			abs = p
		}
		rec[key] = abs
		if errRun == nil && err == nil {
			if rel, err := filepath.Rel(absRun, abs); err == nil {
				rec[key+"_from_run"] = rel
			}
		}
	}
	return rec
}

// ResumeDataPath is where a stopped run's data key ("train", "valid": a folder, or an archive
// of arrays) is now: given, when the caller says (the data moved on its own), else the recorded
// absolute path, else the recorded path relative to the run directory (both moved together).
func ResumeDataPath(run, key, given string, settings map[string]any) (string, error) {
	isDir := func(p string) bool { _, err := os.Stat(p); return err == nil }
	if given != "" {
		if !isDir(given) {
			return "", fmt.Errorf("%s folder %s does not exist: %w", key, given, ErrDataNotFound)
		}
		return given, nil
	}
	recorded, _ := settings[key].(string)
	if recorded != "" && isDir(recorded) {
		return recorded, nil
	}
	if rel, _ := settings[key+"_from_run"].(string); rel != "" {
		if p := filepath.Join(run, rel); isDir(p) {
			return p, nil
		}
	}
	if recorded == "" {
		return "", fmt.Errorf("resume %s: the run does not record its %s folder: give it again: %w", run, key, ErrDataNotFound)
	}
	return "", fmt.Errorf("resume %s: its %s folder %s is gone (moved?): give it where it is now: %w", run, key, recorded, ErrDataNotFound)
}

// CheckResumedData refuses a resumed run whose data key no longer has the image (or row) count
// it was trained on (recorded in the settings as key + "_images", or key + "_rows" for arrays):
// continuing on other data would make its history and callbacks meaningless.
func CheckResumedData(st *State, key, dir string, n int) error {
	if st == nil {
		return nil
	}
	var recorded int
	count := st.Settings[key+"_images"]
	if count == nil {
		count = st.Settings[key+"_rows"]
	}
	switch v := count.(type) {
	case float64: // read back from JSON
		recorded = int(v)
	case int:
		recorded = v
	default:
		return nil
	}
	if recorded != n {
		return fmt.Errorf("resume: %s data %s has %d usable images or rows, the run was trained with %d: not the same data", key, dir, n, recorded)
	}
	return nil
}
