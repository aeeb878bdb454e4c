package train

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/emotions-dev/emotions/tfgraph"
)

// stateFile is written inside RUN/last/, beside the variables it belongs to, in one atomic step.
const stateFile = "train_state.json"

// State is everything a resumed Fit needs to continue exactly where the stopped one was. Fit
// writes it into RUN/last/ with the variables it belongs to; LoadState reads it back, and
// WithResume hands it to Fit with a model loaded from RUN/last.
type State struct {
	// Recipe is the recipe the run was started with, when it was given (WithRecipe).
	Recipe json.RawMessage `json:"config,omitempty"`
	// Settings are the caller's own facts about the run (WithSettings), e.g. its data folders.
	Settings   map[string]any `json:"settings,omitempty"`
	Epoch      int            `json:"epoch"`       // 0-based epoch in progress
	Step       int            `json:"step"`        // steps of that epoch already run
	GlobalStep uint64         `json:"global_step"` // steps run in all
	// StartIterations is the optimizer's step count when the run began: a resumed model
	// must be at StartIterations + GlobalStep, or it is not this run's last/.
	StartIterations *int64        `json:"start_iterations,omitempty"`
	Progress        EpochProgress `json:"partial"`
	Seconds         float64       `json:"seconds"` // of the epoch in progress
	History         []EpochRecord `json:"history"`
	// Callbacks holds each StatefulCallback's state by name.
	Callbacks map[string]json.RawMessage `json:"callbacks"`
}

// EpochProgress accumulates an epoch's training metrics the way Keras reports them: the loss
// averaged over samples (each batch weighted by its size) and the accuracy weighted by the
// sample weights.
type EpochProgress struct {
	LossSum    float64 `json:"loss_sum"`
	Samples    float64 `json:"samples"`
	HitsWeight float64 `json:"hits_weight"`
	Weight     float64 `json:"weight"`
	// Logs are a generic model's running logs after the epoch's last step (its metric state
	// itself is in the variables).
	Logs map[string]float64 `json:"logs,omitempty"`
}

func (p *EpochProgress) add(r tfgraph.StepResult, n int, weightSum float64) {
	p.LossSum += r.Loss * float64(n)
	p.Samples += float64(n)
	p.HitsWeight += r.Accuracy * weightSum
	p.Weight += weightSum
}

// Means are the epoch's loss and accuracy so far.
func (p EpochProgress) Means() (loss, accuracy float64) {
	if p.Logs != nil {
		return p.Logs["loss"], p.Logs["accuracy"]
	}
	if p.Samples > 0 {
		loss = p.LossSum / p.Samples
	}
	if p.Weight > 0 {
		accuracy = p.HitsWeight / p.Weight
	}
	return loss, accuracy
}

// EpochRecord is one epoch of history.json.
type EpochRecord struct {
	Epoch   int       `json:"epoch"` // 1-based, as Keras prints it
	Logs    EpochLogs `json:"logs"`
	Seconds float64   `json:"seconds"` // training steps only: validation and checkpoints are not in it
	// WallSeconds is the whole epoch in this process: steps, validation, callbacks and the
	// time the loop waited for checkpoints.
	WallSeconds float64 `json:"wall_seconds,omitempty"`
}

// LoadState reads the resume state of the run directory run (RUN/last/train_state.json).
func LoadState(run string) (*State, error) {
	path := filepath.Join(Layout(run).Last(), stateFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("resume %s: %w (is it a run directory written by emotions' training?)", run, err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("resume: parse %s: %w", path, err)
	}
	return &st, nil
}
