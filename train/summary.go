package train

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/emotions-dev/emotions/internal/atomicfs"
	"github.com/emotions-dev/emotions/tfgraph"
)

// Summary is RUN/summary.json: what ran, how it ended, and where the best model is.
type Summary struct {
	Settings        Config            `json:"settings"`
	Extra           map[string]any    `json:"data,omitempty"`
	EpochsRun       int               `json:"epochs_run"`
	BestEpoch       int               `json:"best_epoch"` // 1-based; 0 when nothing was saved
	BestValLoss     *float64          `json:"best_val_loss"`
	BestValAccuracy *float64          `json:"best_val_accuracy"`
	Final           EpochLogs         `json:"final,omitempty"`
	StopReason      string            `json:"stop_reason"`
	WallSeconds     float64           `json:"wall_seconds"`
	ImagesPerSecond float64           `json:"images_per_second"`
	Best            string            `json:"best_model"`
	Versions        map[string]string `json:"versions"`
}

// fill takes the best epoch as the checkpoint's: the first epoch whose logs hold the best
// monitored value. ModelCheckpoint saves only on a strict improvement (Keras' rule), so a later
// epoch that ties it was not saved: RUN/best/ holds the first.
func (s *Summary) fill(history []EpochRecord, ckpt *ModelCheckpoint, early *EarlyStopping, monitor string) {
	s.EpochsRun = len(history)
	if len(history) > 0 {
		s.Final = history[len(history)-1].Logs
	}
	best, ok := ckpt.Best()
	if !ok {
		return
	}
	for i := range history {
		if v, has := history[i].Logs[monitor]; has && (v == best || float32(v) == float32(best)) {
			s.BestEpoch = history[i].Epoch
			vl, va := history[i].Logs["val_loss"], history[i].Logs["val_accuracy"]
			s.BestValLoss, s.BestValAccuracy = finite(vl), finite(va)
			return
		}
	}
}

func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func versions(m *tfgraph.Model) map[string]string {
	return map[string]string{
		"tensorflow":        tfgraph.Version(),
		"export_tensorflow": m.Meta.TFVersion,
		"keras":             m.Meta.KerasVersion,
		"backbone":          m.Meta.Backbone,
		"train_signature":   m.TrainSignature(),
	}
}

func writeSummary(p runDir, s *Summary) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode summary: %w", err)
	}
	return atomicfs.WriteFile(p.summary, append(b, '\n'), 0o644)
}

// writeHistory writes history.json and the two plots.
func writeHistory(p runDir, history []EpochRecord) error {
	b, err := json.MarshalIndent(history, "", " ")
	if err != nil {
		return fmt.Errorf("encode history: %w", err)
	}
	if err := atomicfs.WriteFile(p.history, append(b, '\n'), 0o644); err != nil {
		return err
	}
	if err := PlotHistory(p.lossPNG, history, "loss", "Train history: loss"); err != nil {
		return err
	}
	return PlotHistory(p.accPNG, history, "accuracy", "Train history: accuracy")
}
