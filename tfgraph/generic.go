package tfgraph

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/emotions-dev/emotions/arrays"
	"github.com/emotions-dev/emotions/savedmodel"
)

// The API for any compiled Keras model (new-model --from model.keras --generic): named typed
// arrays in, Keras' own logs and named outputs out. savedmodel/export.py documents the
// signatures (serve, train_step, evaluate, reset_metrics).

// Batch is one step's data for a generic model: Keras' x and y dicts and sample_weight.
type Batch struct {
	// Inputs are named as the model's inputs (Model.Inputs), each with the batch's rows first.
	Inputs map[string]arrays.Array
	// Targets are named as the outputs they are for (Model.Targets): float32 of the output's
	// shape, or int32 class indices for a sparse loss.
	Targets map[string]arrays.Array
	// SampleWeights holds one weight per row for every output; nil means all ones (Keras then
	// gives the numbers it gives without sample_weight).
	SampleWeights []float32
}

// Logs are the values Keras' train_step or test_step returned: the loss, each output's loss
// when there are several, and every compiled metric under Keras' log name.
type Logs map[string]float64

// Generic reports a model of any inputs and outputs (savedmodel.GenericFormat): it runs through
// TrainArrays, EvaluateArrays and PredictArrays; the image methods (Predict, TrainStep,
// Evaluate) are for the image classifier.
func (m *Model) Generic() bool { return m.Meta.Generic() }

// Inputs describes the tensors PredictArrays, TrainArrays and EvaluateArrays take as inputs: a
// generic model's from its metadata, any other model's from its serving signature.
func (m *Model) Inputs() []savedmodel.Tensor {
	if m.Generic() {
		return m.Meta.Inputs
	}
	return m.serveSpecs(func(s SignatureSpec) []TensorSpec { return s.Inputs })
}

// Outputs describes what PredictArrays returns.
func (m *Model) Outputs() []savedmodel.Tensor {
	if m.Generic() {
		return m.Meta.Outputs
	}
	return m.serveSpecs(func(s SignatureSpec) []TensorSpec { return s.Outputs })
}

// Targets describes the targets a generic model trains on, one per output (none otherwise).
func (m *Model) Targets() []savedmodel.Tensor { return m.Meta.Targets }

func (m *Model) serveSpecs(pick func(SignatureSpec) []TensorSpec) []savedmodel.Tensor {
	spec, ok := m.SignatureSpec(m.signatureFor("serve"))
	if !ok {
		spec, ok = m.SignatureSpec("serving_default")
	}
	if !ok {
		return nil
	}
	var out []savedmodel.Tensor
	for _, t := range pick(spec) {
		out = append(out, savedmodel.Tensor{Name: t.Key, DType: dtypeName(t.DType), Shape: t.Shape})
	}
	return out
}

// PredictArrays runs the serving signature on named inputs and returns every output by name.
func (m *Model) PredictArrays(inputs map[string]arrays.Array) (map[string]arrays.Array, error) {
	feeds, _, err := m.arrayFeeds(map[string]map[string]arrays.Array{"input": inputs}, m.Inputs())
	if err != nil {
		return nil, err
	}
	defer FreeAll(feeds)
	name := m.signatureFor("serve")
	if _, ok := m.Signature(name); !ok {
		name = "serving_default"
	}
	out, err := m.Run(name, feeds)
	if err != nil {
		return nil, err
	}
	defer FreeAll(out)
	res := make(map[string]arrays.Array, len(out))
	for k, t := range out {
		a, err := ToArray(t)
		if err != nil {
			return nil, fmt.Errorf("output %s: %w", k, err)
		}
		res[k] = a
	}
	return res, nil
}

// TrainArrays runs one optimizer step of Keras' own train_step and returns its logs: the
// metrics' running results since the last ResetMetrics, as Keras' fit reports them after
// each batch.
func (m *Model) TrainArrays(b Batch) (Logs, error) { return m.runLogs("train_step", b) }

// EvaluateArrays runs Keras' test_step (no training) and returns the running logs since the
// last ResetMetrics: after the last batch of a set, what model.evaluate returns for it.
func (m *Model) EvaluateArrays(b Batch) (Logs, error) { return m.runLogs("evaluate", b) }

// ResetMetrics clears every metric's state (the loss trackers included), as fit does at each
// epoch's start and before validating.
func (m *Model) ResetMetrics() error {
	if err := m.needGeneric("reset metrics"); err != nil {
		return err
	}
	out, err := m.Run(m.signatureFor("reset_metrics"), map[string]*tf.Tensor{})
	FreeAll(out)
	return err
}

func (m *Model) needGeneric(what string) error {
	if !m.Generic() {
		return fmt.Errorf("%s: %s is an image classifier (its TrainStep/Evaluate take images); the array API is for a model exported with its own named inputs and outputs (savedmodel.GenericFormat)", what, m.Dir)
	}
	return nil
}

func (m *Model) runLogs(role string, b Batch) (Logs, error) {
	if err := m.needGeneric(role); err != nil {
		return nil, err
	}
	feeds, rows, err := m.arrayFeeds(map[string]map[string]arrays.Array{"input": b.Inputs, "target": b.Targets},
		m.Meta.Inputs, m.Meta.Targets)
	if err != nil {
		return nil, err
	}
	defer FreeAll(feeds)
	w := b.SampleWeights
	if w == nil {
		w = ones(int(rows))
	}
	if int64(len(w)) != rows {
		return nil, fmt.Errorf("sample weights: %d for a batch of %d rows", len(w), rows)
	}
	wt, err := Float32Tensor(w, rows)
	if err != nil {
		return nil, fmt.Errorf("sample weights: %w", err)
	}
	name := "sample_weights"
	if m.Meta.SampleWeights != nil {
		name = m.Meta.SampleWeights.Name
	}
	feeds[name] = wt
	out, err := m.Run(m.signatureFor(role), feeds)
	if err != nil {
		return nil, err
	}
	defer FreeAll(out)
	logs := make(Logs, len(out))
	for k, t := range out {
		if len(t.Shape()) != 0 {
			return nil, fmt.Errorf("%s log %s has shape %v: only scalar logs are supported (an F1Score "+
				"or FBetaScore needs average= set to a scalar mode)", role, k, t.Shape())
		}
		v, err := Scalar(t)
		if err != nil {
			return nil, fmt.Errorf("%s log %s: %w", role, k, err)
		}
		logs[k] = v
	}
	return logs, nil
}

// arrayFeeds checks named arrays against the specs (every name present, no other, dtype and
// shape as declared, the same rows throughout) and makes the tensors; nothing reaches
// TensorFlow unchecked. groups maps "input"/"target" to the caller's arrays.
func (m *Model) arrayFeeds(groups map[string]map[string]arrays.Array, specs ...[]savedmodel.Tensor) (map[string]*tf.Tensor, int64, error) {
	kinds := []string{"input", "target"}
	feeds := map[string]*tf.Tensor{}
	rows := int64(-1)
	var rowsFrom string
	fail := func(err error) (map[string]*tf.Tensor, int64, error) {
		FreeAll(feeds)
		return nil, 0, err
	}
	for i, group := range specs {
		kind := kinds[i]
		given := groups[kind]
		want := map[string]bool{}
		for _, spec := range group {
			want[spec.Name] = true
			a, ok := given[spec.Name]
			if !ok {
				return fail(fmt.Errorf("%s %q missing (the model's %ss: %s)", kind, spec.Name, kind, savedmodel.Names(group)))
			}
			t, err := ArrayTensor(spec, a)
			if err != nil {
				return fail(fmt.Errorf("%s %q: %w", kind, spec.Name, err))
			}
			feeds[spec.Name] = t
			if rows < 0 {
				rows, rowsFrom = a.Rows(), spec.Name
			} else if a.Rows() != rows {
				return fail(fmt.Errorf("%s %q has %d rows, %q has %d: every input and target needs the batch's rows", kind, spec.Name, a.Rows(), rowsFrom, rows))
			}
		}
		var extra []string
		for name := range given {
			if !want[name] {
				extra = append(extra, name)
			}
		}
		if len(extra) > 0 {
			sort.Strings(extra)
			return fail(fmt.Errorf("unknown %s %s (the model's %ss: %s)", kind, strings.Join(extra, ", "), kind, savedmodel.Names(group)))
		}
	}
	if rows <= 0 {
		return fail(errors.New("empty batch"))
	}
	return feeds, rows, nil
}

// ArrayTensor makes the tensor SPEC declares from a: the same dtype (a float32 array also
// feeds a float16 or bfloat16 tensor, rounded to nearest even, since Go has no half type),
// the same rank, every fixed dimension equal. Its error says what was expected and what came.
func ArrayTensor(spec savedmodel.Tensor, a arrays.Array) (*tf.Tensor, error) {
	if err := a.Check(); err != nil {
		return nil, err
	}
	want := arrays.DType(spec.DType)
	if a.DType != want {
		if a.DType == arrays.Float32 && (want == arrays.Float16 || want == arrays.BFloat16) {
			var err error
			if a, err = arrays.Convert(a, want); err != nil {
				return nil, err
			}
		} else {
			return nil, fmt.Errorf("dtype %s, the model takes %s", a.DType, want)
		}
	}
	if err := arrays.CheckShape(a.Shape, spec.Shape); err != nil {
		return nil, err
	}
	dt, ok := DataTypeOf(string(a.DType))
	if !ok {
		return nil, fmt.Errorf("dtype %s has no TensorFlow tensor", a.DType)
	}
	if a.DType == arrays.String {
		return StringTensor(a.Values.([]string), a.Shape...)
	}
	return RawTensor(dt, a.Shape, arrays.Bytes(a))
}

// ToArray copies a tensor into an Array of its dtype and shape.
func ToArray(t *tf.Tensor) (arrays.Array, error) {
	// dtypeName's names are arrays' DTypes; Zeros refuses those arrays has no type for (uint32).
	dt := arrays.DType(dtypeName(t.DataType()))
	shape := t.Shape()
	if dt == arrays.String {
		s, err := Strings(t)
		if err != nil {
			return arrays.Array{}, err
		}
		return arrays.Array{DType: dt, Shape: shape, Values: s}, nil
	}
	a, err := arrays.Zeros(dt, shape)
	if err != nil {
		return arrays.Array{}, err
	}
	if b := arrays.Bytes(a); len(b) > 0 {
		if _, err := t.WriteContentsTo(bytes.NewBuffer(b[:0])); err != nil {
			return arrays.Array{}, err
		}
	}
	return a, nil
}
