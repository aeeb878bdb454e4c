package train

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
)

// EpochLogs are Keras-style epoch logs: "loss", "accuracy", "val_loss",
// "val_accuracy", "learning_rate", ... Callbacks may add keys (Keras'
// ReduceLROnPlateau adds "learning_rate"), and later callbacks in the list
// see them because the same map is passed along, as in Keras' CallbackList.
type EpochLogs map[string]float64

// Model is what callbacks act on (implemented by the training loop).
type Model interface {
	// LearningRate returns the optimizer's current learning rate variable.
	LearningRate() (float64, error)
	// SetLearningRate assigns the variable; a float32 variable rounds, as
	// Keras' does.
	SetLearningRate(lr float64) error
	// SaveWeights writes a complete SavedModel atomically to dir, replacing
	// whatever dir held before (callbacks save to the same dir repeatedly).
	SaveWeights(dir string) error
	RestoreWeights(dir string) error
}

// Callback is a training hook, called by the loop in list order.
type Callback interface {
	Name() string
	OnTrainBegin(m Model) error
	// OnEpochEnd gets the 0-based epoch, like Keras.
	OnEpochEnd(epoch int, logs EpochLogs, m Model) error
	OnTrainEnd(m Model) error
	// StopTraining reports a request to stop after the current epoch
	// (Keras' model.stop_training = True).
	StopTraining() bool
}

// StatefulCallback can carry its state across a resumed run so that the
// resumed run makes the same decisions as an uninterrupted one. On resume
// the loop calls UnmarshalState before OnTrainBegin; OnTrainBegin then keeps
// the restored state instead of resetting it.
type StatefulCallback interface {
	Callback
	MarshalState() (json.RawMessage, error)
	UnmarshalState(state json.RawMessage) error
}

var (
	_ StatefulCallback = (*EarlyStopping)(nil)
	_ StatefulCallback = (*ReduceLROnPlateau)(nil)
	_ StatefulCallback = (*ModelCheckpoint)(nil)
	_ StatefulCallback = (*CSVLogger)(nil)
)

// Callbacks calls each hook in order and names the failing callback.
type Callbacks []Callback

func (cs Callbacks) OnTrainBegin(m Model) error {
	for _, c := range cs {
		if err := c.OnTrainBegin(m); err != nil {
			return fmt.Errorf("callback %s: on_train_begin: %w", c.Name(), err)
		}
	}
	return nil
}

func (cs Callbacks) OnEpochEnd(epoch int, logs EpochLogs, m Model) error {
	for _, c := range cs {
		if err := c.OnEpochEnd(epoch, logs, m); err != nil {
			return fmt.Errorf("callback %s: on_epoch_end: %w", c.Name(), err)
		}
	}
	return nil
}

// OnTrainEnd runs every callback even if one fails (so files get closed),
// and returns the first error.
func (cs Callbacks) OnTrainEnd(m Model) error {
	var first error
	for _, c := range cs {
		if err := c.OnTrainEnd(m); err != nil && first == nil {
			first = fmt.Errorf("callback %s: on_train_end: %w", c.Name(), err)
		}
	}
	return first
}

// StopTraining is true when any callback asked to stop.
func (cs Callbacks) StopTraining() bool {
	for _, c := range cs {
		if c.StopTraining() {
			return true
		}
	}
	return false
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
			return nil, fmt.Errorf("callback %s: marshal state: %w", c.Name(), err)
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
			return fmt.Errorf("callback %s: no saved state to resume from", c.Name())
		}
		if err := s.UnmarshalState(raw); err != nil {
			return fmt.Errorf("callback %s: unmarshal state: %w", c.Name(), err)
		}
	}
	return nil
}

// printer writes Keras-style verbose messages and warnings.
type printer struct{ out io.Writer }

func (p printer) printf(format string, args ...any) {
	out := p.out
	if out == nil {
		out = os.Stderr
	}
	fmt.Fprintf(out, format+"\n", args...)
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
