package train

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ModelCheckpointConfig holds the arguments of keras.callbacks.ModelCheckpoint
// that apply here. The checkpoint is always a complete SavedModel written by
// Model.SaveWeights (Keras' save_weights_only and its .keras/.h5 extension
// checks do not apply) and saving happens only at epoch end (save_freq="epoch").
type ModelCheckpointConfig struct {
	// Name identifies the callback in Fit's errors and in the resume state ("" is "ModelCheckpoint"): two
	// callbacks of one kind, e.g. two ModelCheckpoints on different monitors, need their own.
	Name string
	// Filepath is the SavedModel directory, formatted like Python's
	// filepath.format(epoch=epoch+1, **logs): "{epoch:02d}", "{val_loss:.4f}".
	Filepath     string
	Monitor      string
	Verbose      int
	SaveBestOnly bool
	Mode         Mode
	// InitialValueThreshold is the starting "best" value for SaveBestOnly.
	InitialValueThreshold *float64
	// Out receives verbose messages and warnings; nil discards them.
	Out io.Writer
}

// DefaultModelCheckpointConfig returns the Keras 3.15.1 defaults.
func DefaultModelCheckpointConfig(path string) ModelCheckpointConfig {
	return ModelCheckpointConfig{Filepath: path, Monitor: "val_loss", Mode: ModeAuto}
}

// ModelCheckpoint saves the model at the end of epochs.
// Keras 3.15.1 keras/src/callbacks/model_checkpoint.py (a MonitorCallback
// with min_delta 0 and best = initial_value_threshold).
type ModelCheckpoint struct {
	cfg   ModelCheckpointConfig
	rule  monitorRule
	print printer
	st    checkpointState
	// LastSaved is the path of the latest checkpoint written, "" if none.
	LastSaved string
}

// Keras never resets best in on_train_begin, so best carries over across
// fit calls; the state is just that.
type checkpointState struct {
	Best          stateFloat `json:"best"`
	MissingWarned bool       `json:"missing_warned"`
}

func NewModelCheckpoint(cfg ModelCheckpointConfig) (*ModelCheckpoint, error) {
	cfg.Monitor = monitorOr(cfg.Monitor)
	if cfg.Filepath == "" {
		return nil, fmt.Errorf("ModelCheckpoint: empty filepath")
	}
	p := printer{cfg.Out}
	c := &ModelCheckpoint{
		cfg:   cfg,
		rule:  newMonitorRule("ModelCheckpoint", cfg.Monitor, cfg.Mode, 0, p.printf),
		print: p,
	}
	if cfg.InitialValueThreshold != nil {
		c.st.Best.v = floatPtr(*cfg.InitialValueThreshold)
	}
	return c, nil
}

func (c *ModelCheckpoint) Name() string { return nameOr(c.cfg.Name, "ModelCheckpoint") }

// Best is the best monitored value so far; ok is false before any.
func (c *ModelCheckpoint) Best() (best float64, ok bool) {
	if c.st.Best.v == nil {
		return 0, false
	}
	return *c.st.Best.v, true
}

// OnEpochEnd: Keras 3.15.1 model_checkpoint.py on_epoch_end/_save_model.
// Like Keras it resolves the monitor direction even when SaveBestOnly is
// off, so mode "auto" with an unknown metric fails there too.
func (c *ModelCheckpoint) OnEpochEnd(epoch int, logs EpochLogs, m Model) error {
	if err := c.rule.resolve("ModelCheckpoint", m); err != nil {
		return err
	}
	path, err := formatCheckpointPath(c.cfg.Filepath, epoch+1, logs)
	if err != nil {
		return err
	}
	if !c.shouldSave(epoch, logs, path) {
		return nil
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create checkpoint parent dir: %w", err)
		}
	}
	if err := m.SaveWeights(path); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", path, err)
	}
	c.LastSaved = path
	if c.cfg.Verbose > 0 {
		c.print.printf("\nEpoch %d: finished saving model to %s", epoch+1, path)
	}
	return nil
}

// shouldSave ports _should_save_model. A missing monitor value saves anyway
// (Keras warns and returns True).
func (c *ModelCheckpoint) shouldSave(epoch int, logs EpochLogs, path string) bool {
	if !c.cfg.SaveBestOnly {
		if c.cfg.Verbose > 0 {
			c.print.printf("\nEpoch %d: saving model to %s", epoch+1, path)
		}
		return true
	}
	current, ok := logs[c.cfg.Monitor]
	if !ok {
		if !c.st.MissingWarned {
			c.st.MissingWarned = true
			c.print.printf("Can save best model only with %s available.", c.cfg.Monitor)
		}
		return true
	}
	bestText := "None"
	if c.st.Best.v != nil {
		bestText = fmt.Sprintf("%.5f", *c.st.Best.v)
	}
	if !c.rule.isImprovement(current, c.st.Best.v) {
		if c.cfg.Verbose > 0 {
			c.print.printf("\nEpoch %d: %s did not improve from %s", epoch+1, c.cfg.Monitor, bestText)
		}
		return false
	}
	if c.cfg.Verbose > 0 {
		c.print.printf("\nEpoch %d: %s improved from %s to %.5f, saving model to %s",
			epoch+1, c.cfg.Monitor, bestText, current, path)
	}
	c.st.Best.v = floatPtr(current)
	return true
}

func (c *ModelCheckpoint) MarshalState() (json.RawMessage, error) {
	return json.Marshal(c.st)
}

func (c *ModelCheckpoint) UnmarshalState(state json.RawMessage) error {
	var s checkpointState
	if err := json.Unmarshal(state, &s); err != nil {
		return fmt.Errorf("ModelCheckpoint state: %w", err)
	}
	c.st = s
	return nil
}
