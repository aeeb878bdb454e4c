package main

import (
	"io"
	"path/filepath"
	"testing"

	"github.com/emotions-dev/emotions/internal/example"
)

// The two-input example's History (loss, each output's loss, label_accuracy, score_mae, their
// val_ twins, the learning rate ReduceLROnPlateau sets) equals Keras' fit within 1e-5.
func TestMatchesKerasFit(t *testing.T) {
	dir := t.TempDir()
	if _, err := run(dir, io.Discard); err != nil {
		t.Fatal(err)
	}
	example.CheckAgainstKeras(t, dir, filepath.Join(example.SourceDir(), "model.py"))
}
