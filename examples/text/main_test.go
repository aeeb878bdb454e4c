package main

import (
	"io"
	"path/filepath"
	"testing"

	"github.com/emotions-dev/emotions/internal/example"
)

// The text example's History (loss, accuracy, AUC and their val_ twins) and the epochs
// EarlyStopping on val_auc let run equal Keras' fit of the same model on the same data: of the
// 4 epochs asked, the third's val_auc gains less than min_delta and ends the run there.
func TestMatchesKerasFit(t *testing.T) {
	dir := t.TempDir()
	s, err := run(dir, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if s.EpochsRun != 3 {
		t.Errorf("EarlyStopping let %d of 4 epochs run (%s), want 3", s.EpochsRun, s.StopReason)
	}
	example.CheckAgainstKeras(t, dir, filepath.Join(example.SourceDir(), "model.py"))
}
