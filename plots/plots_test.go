package plots

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/emotions-dev/emotions/classify"
	"github.com/emotions-dev/emotions/train"
)

// The history callback draws both curves in the background and Close waits for them; the
// confusion matrix is drawn too.
func TestHistoryAndConfusion(t *testing.T) {
	dir := t.TempDir()
	h := History(dir, []train.EpochRecord{{Epoch: 1, Logs: train.EpochLogs{"loss": 1.2, "val_loss": 1.3, "accuracy": 0.3, "val_accuracy": 0.25}}})
	for epoch := 1; epoch < 4; epoch++ {
		logs := train.EpochLogs{"loss": 1.0 / float64(epoch+1), "val_loss": 1.1, "accuracy": 0.5, "val_accuracy": 0.4}
		if err := h.OnEpochEnd(epoch, logs, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil { // closing twice is harmless
		t.Fatal(err)
	}
	for _, f := range []string{LossFile, AccuracyFile} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() < 1000 {
			t.Fatalf("%s: %v", f, err)
		}
	}
	r := classify.Score([][]float32{{0.9, 0.1}, {0.3, 0.7}}, []int32{0, 1}, []string{"a", "b"}, nil)
	if err := PlotConfusion(filepath.Join(dir, "confusion.png"), r); err != nil {
		t.Fatal(err)
	}
	// A directory that cannot be written is reported by Close.
	bad := History(filepath.Join(dir, "missing", "deeper"), nil)
	bad.OnEpochEnd(0, train.EpochLogs{"loss": 1}, nil)
	if err := bad.Close(); err == nil {
		t.Fatal("drawing into a missing directory did not fail")
	}
}
