package train

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/emotions-dev/emotions/arrays"
	"github.com/emotions-dev/emotions/tfgraph"
)

// Batch is one step's worth of training or validation data, laid out as the model takes it.
type Batch struct {
	// Images holds N images, each Height*Width*Channels float32 values (NHWC, row-major),
	// already normalised as the model expects (preprocess.Input.Normalize does it for crops).
	Images []float32
	// Labels holds N rows of one value per class: one-hot, or any distribution (soft targets).
	Labels []float32
	// Weights holds N sample weights (Keras' sample_weight); nil means all ones. Validation
	// ignores them, as Keras' evaluate does without sample weights.
	Weights []float32
	N       int
	// Inputs and Targets are a generic model's batch (tfgraph.Model.Generic), in place of
	// Images and Labels: arrays named as the model's inputs and outputs (Keras' x and y dicts),
	// N rows each. Weights applies to them too.
	Inputs, Targets map[string]arrays.Array
}

// checkArrays reports a generic batch whose arrays do not all have N rows.
func (b Batch) checkArrays() error {
	if b.N <= 0 {
		return fmt.Errorf("batch of %d rows", b.N)
	}
	if len(b.Inputs) == 0 {
		return errors.New("batch without inputs (a generic model takes Batch.Inputs and Batch.Targets, not Images and Labels)")
	}
	for _, group := range []map[string]arrays.Array{b.Inputs, b.Targets} {
		for name, a := range group {
			if a.Rows() != int64(b.N) {
				return fmt.Errorf("batch of %d rows: array %q has %d", b.N, name, a.Rows())
			}
		}
	}
	if b.Weights != nil && len(b.Weights) != b.N {
		return fmt.Errorf("batch of %d rows holds %d sample weights", b.N, len(b.Weights))
	}
	return nil
}

// arrayBatch is b as tfgraph's generic API takes it.
func arrayBatch(b Batch) tfgraph.Batch {
	return tfgraph.Batch{Inputs: b.Inputs, Targets: b.Targets, SampleWeights: b.Weights}
}

// check reports a batch whose slices do not match N images of the model's shape.
func (b Batch) check(valuesPerImage, classes int) error {
	switch {
	case b.N <= 0:
		return fmt.Errorf("batch of %d images", b.N)
	case len(b.Images) != b.N*valuesPerImage:
		return fmt.Errorf("batch of %d images holds %d image values, want %d (%d per image)", b.N, len(b.Images), b.N*valuesPerImage, valuesPerImage)
	case len(b.Labels) != b.N*classes:
		return fmt.Errorf("batch of %d images holds %d label values, want %d (%d classes)", b.N, len(b.Labels), b.N*classes, classes)
	case b.Weights != nil && len(b.Weights) != b.N:
		return fmt.Errorf("batch of %d images holds %d sample weights", b.N, len(b.Weights))
	}
	return nil
}

func (b Batch) weightSum() float64 {
	if b.Weights == nil {
		return float64(b.N)
	}
	s := 0.0
	for _, w := range b.Weights {
		s += float64(w)
	}
	return s
}

// Source is the training data Fit reads: an endless stream of batches cut into epochs of
// StepsPerEpoch steps. Fit calls Next from one goroutine, one batch ahead of the step
// running in TensorFlow, so preparing a batch overlaps the previous step.
type Source interface {
	// StepsPerEpoch is the number of batches in one epoch (constant for a run).
	StepsPerEpoch() int
	// Next returns the next batch of the stream. An error stops Fit and is returned
	// (wrapped) by it.
	Next(ctx context.Context) (Batch, error)
}

// Seeker is a Source that can continue from a position of the stream: Fit calls Seek once,
// before the first Next, to resume a stopped run at 0-based epoch and step (the next batch
// is that step's). A source that gives the same batches for the same positions (a seeded
// shuffle, a file offset) makes a resumed run equal to an uninterrupted one.
type Seeker interface {
	Seek(epoch, step int) error
}

// ErrNotSeekable is returned by Fit when asked to resume with a Source that does not
// implement Seeker: it cannot be put back where the stopped run was.
var ErrNotSeekable = errors.New("the training source cannot be repositioned (it does not implement train.Seeker)")

// ValidationData is the data Fit evaluates after every epoch (Keras' validation_data).
type ValidationData interface {
	// Batches yields the whole validation set once, in batches of at most size images.
	Batches(ctx context.Context, size int) iter.Seq2[Batch, error]
}

// Tensors is a data set held in memory, laid out as in Batch. It serves as ValidationData
// (and as test data for Evaluate-style uses).
type Tensors struct {
	Images, Labels []float32
	N              int
}

// Batches yields consecutive slices of the tensors.
func (t Tensors) Batches(ctx context.Context, size int) iter.Seq2[Batch, error] {
	return func(yield func(Batch, error) bool) {
		if t.N <= 0 || size <= 0 {
			return
		}
		perImage, perLabel := len(t.Images)/t.N, len(t.Labels)/t.N
		for at := 0; at < t.N; at += size {
			if err := ctx.Err(); err != nil {
				yield(Batch{}, err)
				return
			}
			k := min(size, t.N-at)
			b := Batch{Images: t.Images[at*perImage : (at+k)*perImage], Labels: t.Labels[at*perLabel : (at+k)*perLabel], N: k}
			if !yield(b, nil) {
				return
			}
		}
	}
}

// Releaser is an optional Source interface: Fit hands every batch back through Release once
// the step has copied it into TensorFlow, so the source can reuse its buffers.
type Releaser interface {
	Release(Batch)
}
