package train

import (
	"io"
	"testing"
)

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
	s.fill(history, ck)
	if m.saved["best"] != 1 || s.BestEpoch != 2 {
		t.Fatalf("best/ holds epoch %d (0-based), summary says best epoch %d (1-based)", m.saved["best"], s.BestEpoch)
	}
}
