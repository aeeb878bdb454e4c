package main

import (
	"io"
	"path/filepath"
	"testing"

	"github.com/emotions-dev/emotions/internal/example"
)

// The tabular example's History (loss, MAE, their val_ twins, the learning rate that
// ReduceLROnPlateau sets) equals Keras' fit of the same model on the same data within 1e-5.
func TestMatchesKerasFit(t *testing.T) {
	dir := t.TempDir()
	if _, err := run(dir, io.Discard); err != nil {
		t.Fatal(err)
	}
	example.CheckAgainstKeras(t, dir, filepath.Join(example.SourceDir(), "model.py"))
}
