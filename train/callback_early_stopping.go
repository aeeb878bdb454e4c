package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// EarlyStoppingConfig holds the arguments of keras.callbacks.EarlyStopping.
// Start from DefaultEarlyStoppingConfig: the zero value is not Keras' default.
type EarlyStoppingConfig struct {
	// Name identifies the callback in Fit's errors and in the resume state ("" is "EarlyStopping"): two
	// callbacks of one kind, e.g. two ModelCheckpoints on different monitors, need their own.
	Name               string
	Monitor            string
	MinDelta           float64
	Patience           int
	Verbose            int
	Mode               Mode
	Baseline           *float64
	RestoreBestWeights bool
	StartFromEpoch     int
	// ScratchDir receives the best weights when RestoreBestWeights is set
	// (Keras keeps them in memory). It must survive a resume.
	ScratchDir string
	// Out receives verbose messages and warnings; nil discards them.
	Out io.Writer
}

// DefaultEarlyStoppingConfig returns the Keras 3.15.1 defaults.
func DefaultEarlyStoppingConfig() EarlyStoppingConfig {
	return EarlyStoppingConfig{Monitor: "val_loss", Mode: ModeAuto}
}

// EarlyStopping stops training when the monitored quantity stops improving.
// Keras 3.15.1 keras/src/callbacks/early_stopping.py.
type EarlyStopping struct {
	cfg   EarlyStoppingConfig
	rule  monitorRule
	print printer
	st    earlyStoppingState
	// resumed makes the next OnTrainBegin keep the state from UnmarshalState.
	resumed bool
}

type earlyStoppingState struct {
	Wait           int        `json:"wait"`
	StoppedEpoch   int        `json:"stopped_epoch"`
	Best           stateFloat `json:"best"`
	BestEpoch      int        `json:"best_epoch"`
	HasBestWeights bool       `json:"has_best_weights"`
	Stop           bool       `json:"stop_training"`
	MissingWarned  bool       `json:"missing_warned"`
}

// NewEarlyStopping validates cfg.
func NewEarlyStopping(cfg EarlyStoppingConfig) (*EarlyStopping, error) {
	cfg.Monitor = monitorOr(cfg.Monitor)
	if cfg.RestoreBestWeights && cfg.ScratchDir == "" {
		return nil, errors.New("EarlyStopping: restore_best_weights needs a ScratchDir to hold the best weights")
	}
	p := printer{cfg.Out}
	return &EarlyStopping{
		cfg:   cfg,
		rule:  newMonitorRule("EarlyStopping", cfg.Monitor, cfg.Mode, cfg.MinDelta, p.printf),
		print: p,
	}, nil
}

func (e *EarlyStopping) Name() string       { return nameOr(e.cfg.Name, "EarlyStopping") }
func (e *EarlyStopping) StopTraining() bool { return e.st.Stop }

// StopReason says why training stopped, for the run's summary.
func (e *EarlyStopping) StopReason() string {
	return fmt.Sprintf("early stopping: %s did not improve for %d epochs", e.cfg.Monitor, e.cfg.Patience)
}

// StoppedEpoch is the 0-based epoch at which training was stopped, 0 if not.
func (e *EarlyStopping) StoppedEpoch() int { return e.st.StoppedEpoch }

// BestEpoch is the 0-based epoch whose weights RestoreBestWeights restores.
func (e *EarlyStopping) BestEpoch() int { return e.st.BestEpoch }

// Wait is the number of monitored epochs since the last counted improvement.
func (e *EarlyStopping) Wait() int { return e.st.Wait }

// Best is the best monitored value so far; ok is false before any.
func (e *EarlyStopping) Best() (best float64, ok bool) {
	if e.st.Best.v == nil {
		return 0, false
	}
	return *e.st.Best.v, true
}

func (e *EarlyStopping) bestWeightsDir() string {
	return filepath.Join(e.cfg.ScratchDir, "early_stopping_best_weights")
}

// OnTrainBegin resets the state like Keras (so an instance can be reused),
// except right after UnmarshalState.
func (e *EarlyStopping) OnTrainBegin(Model) error {
	if e.resumed {
		e.resumed = false
		return nil
	}
	e.st = earlyStoppingState{}
	return nil
}

// OnEpochEnd: Keras 3.15.1 early_stopping.py on_epoch_end.
func (e *EarlyStopping) OnEpochEnd(epoch int, logs EpochLogs, m Model) error {
	if err := e.rule.resolve("EarlyStopping", m); err != nil {
		return err
	}
	current, ok := logs[e.cfg.Monitor]
	if !ok {
		e.warnMissing(logs)
		return nil
	}
	if epoch < e.cfg.StartFromEpoch {
		return nil
	}
	s := &e.st
	improved := e.rule.isImprovement(current, s.Best.v)
	// Keras snapshots the weights when none are held yet and again on every
	// improvement; one save covers both when they coincide.
	if e.cfg.RestoreBestWeights && (improved || !s.HasBestWeights) {
		if err := m.SaveWeights(e.bestWeightsDir()); err != nil {
			return fmt.Errorf("save best weights of epoch %d: %w", epoch, err)
		}
		s.HasBestWeights = true
		s.BestEpoch = epoch
	}
	s.Wait++
	if improved {
		s.Best.v = floatPtr(current)
		s.BestEpoch = epoch
		// Only restart wait if we beat both the baseline and our previous best.
		if e.cfg.Baseline == nil || e.rule.isImprovement(current, e.cfg.Baseline) {
			s.Wait = 0
		}
		return nil
	}
	if s.Wait >= e.cfg.Patience && epoch > 0 {
		s.StoppedEpoch = epoch
		s.Stop = true
	}
	return nil
}

// OnTrainEnd restores the best weights whenever any were saved, whether or
// not training was stopped early (Keras 3 behaviour).
func (e *EarlyStopping) OnTrainEnd(m Model) error {
	s := &e.st
	if s.StoppedEpoch > 0 && e.cfg.Verbose > 0 {
		e.print.printf("Epoch %d: early stopping", s.StoppedEpoch+1)
	}
	if e.cfg.RestoreBestWeights && s.HasBestWeights {
		if e.cfg.Verbose > 0 {
			e.print.printf("Restoring model weights from the end of the best epoch: %d.", s.BestEpoch+1)
		}
		if err := m.RestoreWeights(e.bestWeightsDir()); err != nil {
			return fmt.Errorf("restore best weights of epoch %d: %w", s.BestEpoch, err)
		}
	}
	return nil
}

// warnMissing mirrors Python's warnings.warn, which shows a given warning once.
func (e *EarlyStopping) warnMissing(logs EpochLogs) {
	if e.st.MissingWarned {
		return
	}
	e.st.MissingWarned = true
	e.print.printf("Early stopping conditioned on metric `%s` which is not available. Available metrics are: %s",
		e.cfg.Monitor, strings.Join(logKeys(logs), ","))
}

func (e *EarlyStopping) MarshalState() (json.RawMessage, error) {
	return json.Marshal(e.st)
}

func (e *EarlyStopping) UnmarshalState(state json.RawMessage) error {
	var s earlyStoppingState
	if err := json.Unmarshal(state, &s); err != nil {
		return fmt.Errorf("EarlyStopping state: %w", err)
	}
	e.st = s
	e.resumed = true
	return nil
}
