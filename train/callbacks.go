package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
)

// EpochLogs are Keras-style epoch logs: "loss", "accuracy", "val_loss",
// "val_accuracy", "learning_rate", ... Callbacks may add keys (Keras'
// ReduceLROnPlateau adds "learning_rate"), and later callbacks in the list
// see them because the same map is passed along, as in Keras' CallbackList.
type EpochLogs map[string]float64

// Model is what callbacks act on: Fit gives them its session's model.
type Model interface {
	// LearningRate returns the optimizer's current learning rate variable.
	LearningRate() (float64, error)
	// SetLearningRate assigns the variable; a float32 variable rounds, as
	// Keras' does.
	SetLearningRate(lr float64) error
	// SaveWeights writes a complete SavedModel atomically to dir, replacing
	// whatever dir held before (callbacks save to the same dir repeatedly).
	// Fit may finish the write in the background; RestoreWeights and the end of
	// Fit wait for it.
	SaveWeights(dir string) error
	RestoreWeights(dir string) error
}

// Callback is a training hook with a name (Fit's errors and saved states use it). A
// callback implements any of the hook interfaces below; Fit calls each hook of every
// callback in the order the callbacks were given, as Keras' CallbackList does, and an error
// says which callback and which hook failed.
type Callback interface {
	Name() string
}

// TrainBeginHook runs once before the first step (also when resuming).
type TrainBeginHook interface {
	OnTrainBegin(m Model) error
}

// StepEndHook runs after every training step with the epoch's running logs.
type StepEndHook interface {
	OnStepEnd(step StepLogs) error
}

// EpochEndHook runs after every epoch's validation, with Keras-style logs (0-based epoch,
// like Keras). Returning ErrStopTraining (or an error wrapping it) ends training after this
// epoch without an error, as setting Keras' model.stop_training does.
type EpochEndHook interface {
	OnEpochEnd(epoch int, logs EpochLogs, m Model) error
}

// TrainEndHook runs once after the last epoch (not after an error or an interruption). Every
// callback's OnTrainEnd runs even if one fails, so files get closed.
type TrainEndHook interface {
	OnTrainEnd(m Model) error
}

// Stopper is a callback that may ask to stop after the current epoch (Keras'
// model.stop_training = True), with the reason recorded in the summary.
type Stopper interface {
	StopTraining() bool
}

// StatefulCallback can carry its state across a resumed run so that the resumed run makes
// the same decisions as an uninterrupted one. On resume Fit calls UnmarshalState before
// OnTrainBegin; OnTrainBegin then keeps the restored state instead of resetting it. The
// state is saved in RUN/last under the callback's Name, which must be unique.
type StatefulCallback interface {
	Callback
	MarshalState() (json.RawMessage, error)
	UnmarshalState(state json.RawMessage) error
}

// ErrStopTraining is returned by an OnEpochEnd hook to end training after the epoch.
var ErrStopTraining = errors.New("stop training")

// StepLogs are a training step's figures: 0-based epoch and step (the step just run), the
// steps in an epoch, and the epoch's running mean loss and accuracy, as Keras' progress bar
// shows them.
type StepLogs struct {
	Epoch, Step, Steps int
	Loss, Accuracy     float64
	// Logs are every running log of a generic model (Keras' batch logs); nil for the image
	// classifier, whose logs are Loss and Accuracy.
	Logs EpochLogs
}

var (
	_ StatefulCallback = (*EarlyStopping)(nil)
	_ StatefulCallback = (*ReduceLROnPlateau)(nil)
	_ StatefulCallback = (*ModelCheckpoint)(nil)
	_ StatefulCallback = (*CSVLogger)(nil)
)

// EpochEndFunc makes a callback of a function called after every epoch: a metrics push, a
// message, a custom stop rule (return ErrStopTraining).
func EpochEndFunc(name string, fn func(epoch int, logs EpochLogs) error) Callback {
	return epochEndFunc{name: name, fn: fn}
}

type epochEndFunc struct {
	name string
	fn   func(int, EpochLogs) error
}

func (f epochEndFunc) Name() string                                        { return f.name }
func (f epochEndFunc) OnEpochEnd(epoch int, logs EpochLogs, _ Model) error { return f.fn(epoch, logs) }

// StepEndFunc makes a callback of a function called after every step (a progress display).
func StepEndFunc(name string, fn func(StepLogs) error) Callback {
	return stepEndFunc{name: name, fn: fn}
}

type stepEndFunc struct {
	name string
	fn   func(StepLogs) error
}

func (f stepEndFunc) Name() string               { return f.name }
func (f stepEndFunc) OnStepEnd(s StepLogs) error { return f.fn(s) }

// Callbacks calls each hook in order and names the failing callback.
type Callbacks []Callback

func hookError(c Callback, hook string, err error) error {
	return fmt.Errorf("callback %s: %s: %w", c.Name(), hook, err)
}

// OnTrainBegin runs every TrainBeginHook.
func (cs Callbacks) OnTrainBegin(m Model) error {
	for _, c := range cs {
		if h, ok := c.(TrainBeginHook); ok {
			if err := h.OnTrainBegin(m); err != nil {
				return hookError(c, "on_train_begin", err)
			}
		}
	}
	return nil
}

// OnStepEnd runs every StepEndHook.
func (cs Callbacks) OnStepEnd(s StepLogs) error {
	for _, c := range cs {
		if h, ok := c.(StepEndHook); ok {
			if err := h.OnStepEnd(s); err != nil {
				return hookError(c, "on_step_end", err)
			}
		}
	}
	return nil
}

// OnEpochEnd runs every EpochEndHook; stop reports a hook that returned ErrStopTraining
// (the later hooks still run, as Keras runs every callback of the epoch).
func (cs Callbacks) OnEpochEnd(epoch int, logs EpochLogs, m Model) (stop bool, err error) {
	for _, c := range cs {
		if h, ok := c.(EpochEndHook); ok {
			if err := h.OnEpochEnd(epoch, logs, m); errors.Is(err, ErrStopTraining) {
				stop = true
			} else if err != nil {
				return stop, hookError(c, "on_epoch_end", err)
			}
		}
	}
	return stop, nil
}

// OnTrainEnd runs every TrainEndHook even if one fails (so files get closed), and returns
// the first error.
func (cs Callbacks) OnTrainEnd(m Model) error {
	var first error
	for _, c := range cs {
		if h, ok := c.(TrainEndHook); ok {
			if err := h.OnTrainEnd(m); err != nil && first == nil {
				first = hookError(c, "on_train_end", err)
			}
		}
	}
	return first
}

// StopTraining is the first Stopper asking to stop, nil when none does.
func (cs Callbacks) StopTraining() Callback {
	for _, c := range cs {
		if s, ok := c.(Stopper); ok && s.StopTraining() {
			return c
		}
	}
	return nil
}

// MarshalState collects the state of every StatefulCallback by name.
func (cs Callbacks) MarshalState() (map[string]json.RawMessage, error) {
	states := map[string]json.RawMessage{}
	for _, c := range cs {
		s, ok := c.(StatefulCallback)
		if !ok {
			continue
		}
		if _, dup := states[c.Name()]; dup {
			return nil, fmt.Errorf("callback %s: two callbacks share this name, their states would collide", c.Name())
		}
		raw, err := s.MarshalState()
		if err != nil {
			return nil, hookError(c, "marshal state", err)
		}
		states[c.Name()] = raw
	}
	return states, nil
}

// UnmarshalState restores states saved by MarshalState; call before
// OnTrainBegin. A stateful callback without saved state is an error: the
// resumed run would silently diverge.
func (cs Callbacks) UnmarshalState(states map[string]json.RawMessage) error {
	for _, c := range cs {
		s, ok := c.(StatefulCallback)
		if !ok {
			continue
		}
		raw, found := states[c.Name()]
		if !found {
			return fmt.Errorf("callback %s: no saved state to resume from (was it in the stopped run's callbacks?)", c.Name())
		}
		if err := s.UnmarshalState(raw); err != nil {
			return hookError(c, "unmarshal state", err)
		}
	}
	return nil
}

// printer writes Keras-style verbose messages and warnings to out, and nowhere without one:
// a library does not write to a program's terminal unasked.
type printer struct{ out io.Writer }

func (p printer) printf(format string, args ...any) {
	if p.out != nil {
		fmt.Fprintf(p.out, format+"\n", args...)
	}
}

// stateFloat is an optional float64 (Python None when nil) whose JSON form
// also survives NaN and ±Inf, which encoding/json rejects but a monitored
// value can be.
type stateFloat struct{ v *float64 }

func (f stateFloat) MarshalJSON() ([]byte, error) {
	switch {
	case f.v == nil:
		return []byte("null"), nil
	case math.IsNaN(*f.v):
		return []byte(`"nan"`), nil
	case math.IsInf(*f.v, 1):
		return []byte(`"inf"`), nil
	case math.IsInf(*f.v, -1):
		return []byte(`"-inf"`), nil
	}
	return json.Marshal(*f.v)
}

func (f *stateFloat) UnmarshalJSON(b []byte) error {
	var raw any
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	v, ok, err := floatFromJSON(raw)
	if err != nil {
		return err
	}
	f.v = nil
	if ok {
		f.v = &v
	}
	return nil
}

// floatFromJSON accepts a number, null, or "nan"/"inf"/"-inf".
func floatFromJSON(raw any) (float64, bool, error) {
	switch x := raw.(type) {
	case nil:
		return 0, false, nil
	case float64:
		return x, true, nil
	case string:
		switch x {
		case "nan", "NaN":
			return math.NaN(), true, nil
		case "inf", "Infinity":
			return math.Inf(1), true, nil
		case "-inf", "-Infinity":
			return math.Inf(-1), true, nil
		}
	}
	return 0, false, fmt.Errorf("not a float: %v", raw)
}

func floatPtr(v float64) *float64 { return &v }
