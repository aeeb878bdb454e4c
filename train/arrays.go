package train

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/emotions-dev/emotions/arrays"
	"github.com/emotions-dev/emotions/savedmodel"
	"github.com/emotions-dev/emotions/tfgraph"
)

// ArrayData is a data set held in memory as named arrays, for a generic model: Keras' x and y
// dicts (Inputs named as the model's inputs, Targets as its outputs) and sample_weight. It is
// ValidationData itself; NewArraySource trains on it.
type ArrayData struct {
	Inputs, Targets map[string]arrays.Array
	// SampleWeights holds one weight per row; nil means all ones.
	SampleWeights []float32
}

// Rows checks that every array has the same number of rows and returns it.
func (d ArrayData) Rows() (int, error) {
	rows, from := int64(-1), ""
	for _, group := range []map[string]arrays.Array{d.Inputs, d.Targets} {
		for _, name := range slices.Sorted(maps.Keys(group)) {
			a := group[name]
			if err := a.Check(); err != nil {
				return 0, fmt.Errorf("array %q: %w", name, err)
			}
			if len(a.Shape) == 0 {
				return 0, fmt.Errorf("array %q is a scalar: every array needs a first (rows) dimension", name)
			}
			if rows < 0 {
				rows, from = a.Rows(), name
			} else if a.Rows() != rows {
				return 0, fmt.Errorf("array %q has %d rows, %q has %d: every array needs the same rows", name, a.Rows(), from, rows)
			}
		}
	}
	if rows < 0 {
		return 0, errors.New("no arrays")
	}
	if d.SampleWeights != nil && int64(len(d.SampleWeights)) != rows {
		return 0, fmt.Errorf("%d sample weights for %d rows", len(d.SampleWeights), rows)
	}
	return int(rows), nil
}

// slice is rows [from, to) as a Batch, sharing the arrays' memory.
func (d ArrayData) slice(from, to int) Batch {
	b := Batch{N: to - from, Inputs: map[string]arrays.Array{}, Targets: map[string]arrays.Array{}}
	for k, a := range d.Inputs {
		b.Inputs[k] = a.Slice(int64(from), int64(to))
	}
	for k, a := range d.Targets {
		b.Targets[k] = a.Slice(int64(from), int64(to))
	}
	if d.SampleWeights != nil {
		b.Weights = d.SampleWeights[from:to]
	}
	return b
}

// gather is the given rows as a Batch (copied).
func (d ArrayData) gather(rows []int) Batch {
	b := Batch{N: len(rows), Inputs: map[string]arrays.Array{}, Targets: map[string]arrays.Array{}}
	for k, a := range d.Inputs {
		b.Inputs[k] = a.Gather(rows)
	}
	for k, a := range d.Targets {
		b.Targets[k] = a.Gather(rows)
	}
	if d.SampleWeights != nil {
		b.Weights = make([]float32, len(rows))
		for i, r := range rows {
			b.Weights[i] = d.SampleWeights[r]
		}
	}
	return b
}

// Batches yields the data once in order, in batches of at most size rows (Keras' evaluate and
// validation_data).
func (d ArrayData) Batches(ctx context.Context, size int) iter.Seq2[Batch, error] {
	return func(yield func(Batch, error) bool) {
		n, err := d.Rows()
		if err == nil && size <= 0 {
			err = fmt.Errorf("batch size %d", size)
		}
		if err != nil {
			yield(Batch{}, err)
			return
		}
		for at := 0; at < n; at += size {
			if err := ctx.Err(); err != nil {
				yield(Batch{}, err)
				return
			}
			if !yield(d.slice(at, min(at+size, n)), nil) {
				return
			}
		}
	}
}

// ArraySource trains on an ArrayData in batches of a fixed size, the last one of an epoch
// smaller when the rows do not divide (as Keras' fit on arrays). Without shuffling the rows
// go in order every epoch (Keras' shuffle=False, which Keras-parity needs); with it each epoch
// is a permutation drawn from the seed and the epoch, so a resumed run (Seek) sees the same
// batches as an uninterrupted one. Keras draws its permutation from another generator: a
// shuffled run is not Keras' batch for batch.
type ArraySource struct {
	data    ArrayData
	rows    int
	size    int
	shuffle bool
	seed    uint64

	epoch, step int
	order       []int // the epoch's permutation when shuffling
}

// NewArraySource checks the data and the batch size.
func NewArraySource(d ArrayData, batchSize int, shuffle bool, seed uint64) (*ArraySource, error) {
	n, err := d.Rows()
	if err != nil {
		return nil, err
	}
	if batchSize < 1 {
		return nil, fmt.Errorf("batch size %d: want >= 1", batchSize)
	}
	s := &ArraySource{data: d, rows: n, size: batchSize, shuffle: shuffle, seed: seed}
	s.permute()
	return s, nil
}

// StepsPerEpoch is the rows divided by the batch size, rounded up.
func (s *ArraySource) StepsPerEpoch() int { return (s.rows + s.size - 1) / s.size }

// Next returns the next batch.
func (s *ArraySource) Next(ctx context.Context) (Batch, error) {
	if err := ctx.Err(); err != nil {
		return Batch{}, err
	}
	from := s.step * s.size
	to := min(from+s.size, s.rows)
	var b Batch
	if s.shuffle {
		b = s.data.gather(s.order[from:to])
	} else {
		b = s.data.slice(from, to)
	}
	s.step++
	if s.step == s.StepsPerEpoch() {
		s.epoch, s.step = s.epoch+1, 0
		s.permute()
	}
	return b, nil
}

// Seek positions the stream at 0-based epoch and step.
func (s *ArraySource) Seek(epoch, step int) error {
	if epoch < 0 || step < 0 || step >= s.StepsPerEpoch() {
		return fmt.Errorf("position epoch %d step %d: an epoch has %d steps", epoch+1, step, s.StepsPerEpoch())
	}
	s.epoch, s.step = epoch, step
	s.permute()
	return nil
}

func (s *ArraySource) permute() {
	if !s.shuffle {
		return
	}
	r := rand.New(rand.NewPCG(s.seed, uint64(s.epoch)))
	s.order = r.Perm(s.rows)
}

// LoadArrayData reads a NumPy .npz archive (np.savez) for a model with these inputs and targets
// (tfgraph.Model.Inputs and Targets): its arrays are named as the inputs and outputs (Keras' x
// and y dicts; "x" and "y" also name a model's only input and only output), with an optional
// "sample_weight" of one weight per row. Arrays are cast as Keras' fit casts NumPy data
// (float64 to float32, int64 to int32 when every value fits, ...), their shapes checked
// against the model's; an array the model has no use for, a missing one or a wrong shape is
// an error naming the file and the array.
func LoadArrayData(path string, inputs, targets []savedmodel.Tensor, limits arrays.Limits) (ArrayData, error) {
	return loadArrayData(path, inputs, targets, nil, limits)
}

// LoadInputArrays reads the inputs of a NumPy archive as LoadArrayData does, for predict:
// arrays named as the model's outputs, and sample_weight, may be there too (an evaluation
// archive) and are not read into the result.
func LoadInputArrays(path string, inputs, outputs []savedmodel.Tensor, limits arrays.Limits) (ArrayData, error) {
	return loadArrayData(path, inputs, nil, outputs, limits)
}

func loadArrayData(path string, inputs, targets, ignored []savedmodel.Tensor, limits arrays.Limits) (ArrayData, error) {
	found, err := arrays.ReadNPZ(path, limits)
	if err != nil {
		return ArrayData{}, err
	}
	d := ArrayData{Inputs: map[string]arrays.Array{}, Targets: map[string]arrays.Array{}}
	used := map[string]bool{}
	take := func(kind string, specs []savedmodel.Tensor, alias string, into map[string]arrays.Array) error {
		for _, spec := range specs {
			name := spec.Name
			a, ok := found[name]
			if !ok && len(specs) == 1 {
				name = alias
				a, ok = found[alias]
			}
			if !ok {
				return fmt.Errorf("%s: no array %q for the model's %s %q (the archive has %s)", path, spec.Name, kind, spec.Name, strings.Join(slices.Sorted(maps.Keys(found)), ", "))
			}
			used[name] = true
			conv, err := conform(spec, a)
			if err != nil {
				return fmt.Errorf("%s: array %q (%s %s): %w", path, name, kind, spec.Name, err)
			}
			into[spec.Name] = conv
		}
		return nil
	}
	if err := take("input", inputs, "x", d.Inputs); err != nil {
		return ArrayData{}, err
	}
	if targets != nil {
		if err := take("target", targets, "y", d.Targets); err != nil {
			return ArrayData{}, err
		}
	}
	if w, ok := found["sample_weight"]; ok && targets != nil {
		used["sample_weight"] = true
		conv, err := arrays.Convert(w, arrays.Float32)
		if err != nil || len(w.Shape) != 1 {
			return ArrayData{}, fmt.Errorf("%s: array \"sample_weight\": want one number per row, got %s %s", path, w.DType, arrays.ShapeString(w.Shape))
		}
		d.SampleWeights = conv.Values.([]float32)
	}
	if ignored != nil {
		used["sample_weight"] = true
		for _, t := range ignored {
			used[t.Name] = true
		}
		if len(ignored) == 1 {
			used["y"] = true
		}
	}
	var unused []string
	for _, name := range slices.Sorted(maps.Keys(found)) {
		if !used[name] {
			unused = append(unused, name)
		}
	}
	if len(unused) > 0 {
		return ArrayData{}, fmt.Errorf("%s: array %s names no input or output of the model (inputs: %s; outputs: %s)",
			path, strings.Join(unused, ", "), savedmodel.Names(inputs), savedmodel.Names(targets))
	}
	if _, err := d.Rows(); err != nil {
		return ArrayData{}, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// conform casts a to the spec's dtype as Keras would and checks its shape.
func conform(spec savedmodel.Tensor, a arrays.Array) (arrays.Array, error) {
	if a.DType != arrays.DType(spec.DType) {
		conv, err := arrays.Convert(a, arrays.DType(spec.DType))
		if err != nil {
			return arrays.Array{}, fmt.Errorf("the model takes %s: %w", spec.DType, err)
		}
		a = conv
	}
	return a, arrays.CheckShape(a.Shape, spec.Shape)
}

// Evaluator is a model EvaluateArrays runs: *tfgraph.Model, or any Trainable.
type Evaluator interface {
	ResetMetrics() error
	EvaluateArrays(b tfgraph.Batch) (tfgraph.Logs, error)
}

// Predictor is a model PredictArrays runs: *tfgraph.Model is one.
type Predictor interface {
	PredictArrays(inputs map[string]arrays.Array) (map[string]arrays.Array, error)
}

// EvaluateArrays is Keras' model.evaluate on arrays (an ArrayData, or any ValidationData of
// array batches): the metrics reset, test_step over the data in batches of batchSize rows, and
// the logs after the last batch. Fit validates a generic model with it.
func EvaluateArrays(ctx context.Context, m Evaluator, d ValidationData, batchSize int) (tfgraph.Logs, error) {
	if err := m.ResetMetrics(); err != nil {
		return nil, err
	}
	var logs tfgraph.Logs
	for b, err := range d.Batches(ctx, batchSize) {
		if err == nil {
			err = b.checkArrays()
		}
		if err != nil {
			return nil, fmt.Errorf("data: %w", err)
		}
		if logs, err = m.EvaluateArrays(arrayBatch(b)); err != nil {
			return nil, err
		}
	}
	if logs == nil {
		return nil, errors.New("the data is empty")
	}
	return logs, nil
}

// PredictArrays is Keras' model.predict on arrays: every output for every row, in batches of
// batchSize rows.
func PredictArrays(ctx context.Context, m Predictor, d ArrayData, batchSize int) (map[string]arrays.Array, error) {
	parts := map[string][]arrays.Array{}
	for b, err := range d.Batches(ctx, batchSize) {
		if err != nil {
			return nil, err
		}
		out, err := m.PredictArrays(b.Inputs)
		if err != nil {
			return nil, err
		}
		for k, a := range out {
			parts[k] = append(parts[k], a)
		}
	}
	outputs := make(map[string]arrays.Array, len(parts))
	for k, p := range parts {
		a, err := arrays.Concat(p)
		if err != nil {
			return nil, fmt.Errorf("output %s: %w", k, err)
		}
		outputs[k] = a
	}
	return outputs, nil
}

// LogNames orders log names as Keras prints them: loss, the metrics, val_loss, the val_
// metrics, learning_rate; by name within each group.
func LogNames[M ~map[string]float64](logs M) []string { return logOrder(EpochLogs(logs)) }
