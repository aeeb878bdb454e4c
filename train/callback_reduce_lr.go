package train

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// ReduceLROnPlateauConfig holds the arguments of
// keras.callbacks.ReduceLROnPlateau. Start from
// DefaultReduceLROnPlateauConfig: the zero value is not Keras' default.
type ReduceLROnPlateauConfig struct {
	// Name identifies the callback in Fit's errors and in the resume state ("" is "ReduceLROnPlateau"): two
	// callbacks of one kind, e.g. two ModelCheckpoints on different monitors, need their own.
	Name     string
	Monitor  string
	Factor   float64
	Patience int
	Verbose  int
	Mode     Mode
	MinDelta float64
	Cooldown int
	MinLR    float64
	// Out receives verbose messages and warnings; nil discards them.
	Out io.Writer
}

// DefaultReduceLROnPlateauConfig returns the Keras 3.15.1 defaults.
func DefaultReduceLROnPlateauConfig() ReduceLROnPlateauConfig {
	return ReduceLROnPlateauConfig{Monitor: "val_loss", Factor: 0.1, Patience: 10, Mode: ModeAuto, MinDelta: 1e-4}
}

// ReduceLROnPlateau multiplies the learning rate by Factor when the monitored
// quantity stops improving.
// Keras 3.15.1 keras/src/callbacks/reduce_lr_on_plateau.py.
type ReduceLROnPlateau struct {
	cfg     ReduceLROnPlateauConfig
	rule    monitorRule
	print   printer
	st      reduceLRState
	resumed bool
}

type reduceLRState struct {
	Wait            int        `json:"wait"`
	CooldownCounter int        `json:"cooldown_counter"`
	Best            stateFloat `json:"best"`
	MissingWarned   bool       `json:"missing_warned"`
}

// NewReduceLROnPlateau rejects Factor >= 1 like Keras' constructor.
func NewReduceLROnPlateau(cfg ReduceLROnPlateauConfig) (*ReduceLROnPlateau, error) {
	cfg.Monitor = monitorOr(cfg.Monitor)
	if cfg.Factor >= 1.0 {
		return nil, fmt.Errorf("ReduceLROnPlateau does not support a factor >= 1.0. Received factor=%v", cfg.Factor)
	}
	p := printer{cfg.Out}
	return &ReduceLROnPlateau{
		cfg:   cfg,
		rule:  newMonitorRule("ReduceLROnPlateau", cfg.Monitor, cfg.Mode, cfg.MinDelta, p.printf),
		print: p,
	}, nil
}

func (r *ReduceLROnPlateau) Name() string { return nameOr(r.cfg.Name, "ReduceLROnPlateau") }

// Wait is the number of epochs without improvement since the last reset.
func (r *ReduceLROnPlateau) Wait() int { return r.st.Wait }

// CooldownCounter is the number of cooldown epochs left.
func (r *ReduceLROnPlateau) CooldownCounter() int { return r.st.CooldownCounter }

// Best is the best monitored value so far; ok is false before any.
func (r *ReduceLROnPlateau) Best() (best float64, ok bool) {
	if r.st.Best.v == nil {
		return 0, false
	}
	return *r.st.Best.v, true
}

// OnTrainBegin is Keras' _reset, skipped right after UnmarshalState.
func (r *ReduceLROnPlateau) OnTrainBegin(Model) error {
	if r.resumed {
		r.resumed = false
		return nil
	}
	r.st = reduceLRState{}
	return nil
}

// OnEpochEnd: Keras 3.15.1 reduce_lr_on_plateau.py on_epoch_end. It first
// records the learning rate in effect during this epoch (before any
// reduction) as logs["learning_rate"], even when the monitor is missing.
func (r *ReduceLROnPlateau) OnEpochEnd(epoch int, logs EpochLogs, m Model) error {
	if err := r.rule.resolve("ReduceLROnPlateau", m); err != nil {
		return err
	}
	lr, err := m.LearningRate()
	if err != nil {
		return fmt.Errorf("read learning rate: %w", err)
	}
	logs["learning_rate"] = lr
	current, ok := logs[r.cfg.Monitor]
	if !ok {
		r.warnMissing(logs)
		return nil
	}
	s := &r.st
	if s.CooldownCounter > 0 {
		s.CooldownCounter--
		s.Wait = 0
	}
	if r.rule.isImprovement(current, s.Best.v) {
		s.Best.v = floatPtr(current)
		s.Wait = 0
		return nil
	}
	if s.CooldownCounter > 0 {
		return nil
	}
	s.Wait++
	if s.Wait < r.cfg.Patience {
		return nil
	}
	reduced, err := r.reduce(epoch, lr, m)
	if err != nil {
		return err
	}
	if reduced {
		s.CooldownCounter = r.cfg.Cooldown
		s.Wait = 0
	}
	return nil
}

// reduce ports _reduce_optimizer_lr. Keras tests `old_lr > np.float32(min_lr)`
// where old_lr is a Python float: under NumPy 2 promotion that comparison is
// done in float32. The product is computed in float64 and rounded only when
// assigned to the float32 variable (SetLearningRate's job).
func (r *ReduceLROnPlateau) reduce(epoch int, oldLR float64, m Model) (bool, error) {
	if !(float32(oldLR) > float32(r.cfg.MinLR)) {
		return false, nil
	}
	newLR := oldLR * r.cfg.Factor
	// Python's max(new_lr, min_lr) keeps new_lr unless min_lr is larger.
	if r.cfg.MinLR > newLR {
		newLR = r.cfg.MinLR
	}
	if err := m.SetLearningRate(newLR); err != nil {
		return false, fmt.Errorf("set learning rate to %v: %w", newLR, err)
	}
	if r.cfg.Verbose > 0 {
		r.print.printf("\nEpoch %d: ReduceLROnPlateau reducing learning rate to %s.", epoch+1, pyFloatRepr(newLR))
	}
	return true, nil
}

func (r *ReduceLROnPlateau) warnMissing(logs EpochLogs) {
	if r.st.MissingWarned {
		return
	}
	r.st.MissingWarned = true
	r.print.printf("Learning rate reduction is conditioned on metric `%s` which is not available. Available metrics are: %s.",
		r.cfg.Monitor, strings.Join(logKeys(logs), ","))
}

func (r *ReduceLROnPlateau) MarshalState() (json.RawMessage, error) {
	return json.Marshal(r.st)
}

func (r *ReduceLROnPlateau) UnmarshalState(state json.RawMessage) error {
	var s reduceLRState
	if err := json.Unmarshal(state, &s); err != nil {
		return fmt.Errorf("ReduceLROnPlateau state: %w", err)
	}
	r.st = s
	r.resumed = true
	return nil
}
