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

// State is everything a resumed run needs to continue exactly where the interrupted one was.
type State struct {
	Config     Config                     `json:"config"`
	Settings   map[string]any             `json:"settings,omitempty"`
	Epoch      int                        `json:"epoch"`       // 0-based epoch in progress
	Step       int                        `json:"step"`        // steps of that epoch already run
	GlobalStep uint64                     `json:"global_step"` // seeds augmentation
	Stream     streamPos                  `json:"stream"`
	Partial    partialEpoch               `json:"partial"`
	Seconds    float64                    `json:"seconds"` // of the epoch in progress
	History    []EpochRecord              `json:"history"`
	Callbacks  map[string]json.RawMessage `json:"callbacks"`
}

// partialEpoch accumulates an epoch's training metrics the way Keras reports them: the loss
// averaged over samples (each batch weighted by its size) and the accuracy weighted by the
// sample weights.
type partialEpoch struct {
	LossSum    float64 `json:"loss_sum"`
	Samples    float64 `json:"samples"`
	HitsWeight float64 `json:"hits_weight"`
	Weight     float64 `json:"weight"`
}

func (p *partialEpoch) add(r tfgraph.StepResult, n int, weightSum float64) {
	p.LossSum += r.Loss * float64(n)
	p.Samples += float64(n)
	p.HitsWeight += r.Accuracy * weightSum
	p.Weight += weightSum
}

func (p partialEpoch) means() (loss, accuracy float64) {
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
	Seconds float64   `json:"seconds"`
}

// LastDir is where a run's resumable state lives.
func LastDir(run string) string { return filepath.Join(run, "last") }

// LoadState reads RUN/last/train_state.json.
func LoadState(run string) (*State, error) {
	path := filepath.Join(LastDir(run), stateFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("resume %s: %w (was the run started with this version of emotions?)", run, err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("resume: parse %s: %w", path, err)
	}
	return &st, nil
}
