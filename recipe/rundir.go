package recipe

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/emotions-dev/emotions/classify"
	"github.com/emotions-dev/emotions/train"
)

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
func CheckResumedData(st *train.State, key, dir string, n int) error {
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

// Summary is summary.json of a run the CLI starts (train.WriteSummary writes it): Fit's
// summary and, when the caller ran one, the best model's evaluation on a test set (`emotions
// train --test`).
type Summary struct {
	*train.Summary
	Test *classify.Report `json:"test,omitempty"`
}
