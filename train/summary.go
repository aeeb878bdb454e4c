package train

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/emotions-dev/emotions/internal/atomicfs"
	"github.com/emotions-dev/emotions/tfgraph"
)

// Summary is RUN/summary.json: what ran, how it ended, where the best model is and where
// the time went.
type Summary struct {
	// Recipe is the recipe (WithRecipe), if one was given.
	Recipe json.RawMessage `json:"settings,omitempty"`
	// Extra are the caller's settings (WithSettings): the CLI records its data folders.
	Extra           map[string]any    `json:"data,omitempty"`
	EpochsRun       int               `json:"epochs_run"`
	BestEpoch       int               `json:"best_epoch"` // 1-based; 0 when nothing was saved
	BestValLoss     *float64          `json:"best_val_loss"`
	BestValAccuracy *float64          `json:"best_val_accuracy"`
	Final           EpochLogs         `json:"final,omitempty"`
	StopReason      string            `json:"stop_reason"`
	WallSeconds     float64           `json:"wall_seconds"`
	ImagesPerSecond float64           `json:"images_per_second"` // training steps only
	Best            string            `json:"best_model,omitempty"`
	Versions        map[string]string `json:"versions"`
	Timing          Timing            `json:"timing"`
}

// Timing is where a run's wall time went. Fit fills the training phases; the caller fills
// what happens around Fit (loading the model, preprocessing, the test evaluation).
type Timing struct {
	LoadModelS  float64 `json:"load_model_s"`
	PreprocessS float64 `json:"preprocess_s"`
	// FirstStepS is the first TrainStep call: TensorFlow optimises the graph then.
	FirstStepS float64 `json:"first_step_s"`
	// TrainStepS is the time inside all TrainStep calls (the first included): the
	// TensorFlow kernels; everything else is overhead.
	TrainStepS  float64 `json:"train_step_s"`
	Steps       int     `json:"steps"`
	ValidationS float64 `json:"validation_s"`
	// CheckpointBlockingS is how long the loop waited for checkpoints (best/, last/):
	// snapshots of the variables, and writes it had to wait for.
	CheckpointBlockingS         float64   `json:"checkpoint_blocking_s"`
	CheckpointBlockingPerEpochS []float64 `json:"checkpoint_blocking_per_epoch_s"`
	TestS                       float64   `json:"test_s"`
	FitS                        float64   `json:"fit_s"`
}

// fill takes the best epoch as the checkpoint's: the first epoch whose logs hold the best
// monitored value. ModelCheckpoint saves only on a strict improvement (Keras' rule), so a later
// epoch that ties it was not saved: its directory holds the first.
func (s *Summary) fill(history []EpochRecord, ckpt *ModelCheckpoint) {
	s.EpochsRun = len(history)
	if len(history) > 0 {
		s.Final = history[len(history)-1].Logs
	}
	if ckpt == nil {
		return
	}
	s.Best = ckpt.LastSaved
	if s.Best == "" { // resumed with no save since, or nothing saved: a literal path is still where the best is
		if p, err := formatCheckpointPath(ckpt.cfg.Filepath, 0, EpochLogs{}); err == nil {
			s.Best = p
		}
	}
	best, ok := ckpt.Best()
	if !ok {
		return
	}
	monitor := ckpt.cfg.Monitor
	for i := range history {
		if v, has := history[i].Logs[monitor]; has && (v == best || float32(v) == float32(best)) {
			s.BestEpoch = history[i].Epoch
			s.BestValLoss, s.BestValAccuracy = logValue(history[i].Logs, "val_loss"), logValue(history[i].Logs, "val_accuracy")
			return
		}
	}
}

// logValue is a finite log value, nil when absent or not finite.
func logValue(l EpochLogs, name string) *float64 {
	v, ok := l[name]
	if !ok {
		return nil
	}
	return finite(v)
}

func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func versions(m Trainable) map[string]string {
	meta := m.Metadata()
	return map[string]string{
		"tensorflow":        tfgraph.Version(),
		"export_tensorflow": meta.TFVersion,
		"keras":             meta.KerasVersion,
		"backbone":          meta.Backbone,
		"train_signature":   m.TrainSignature(),
	}
}

// WriteSummary writes s to the run directory's summary.json, atomically: Fit's *Summary, or a
// caller's value that embeds it and adds to it (recipe.Summary adds a test evaluation), written
// again over the one Fit wrote.
func WriteSummary(run string, s any) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode summary: %w", err)
	}
	return atomicfs.WriteFile(Layout(run).Summary(), append(b, '\n'), 0o644)
}
