package train

import (
	"github.com/emotions-dev/emotions/savedmodel"
	"github.com/emotions-dev/emotions/tfgraph"
)

// Trainable is what Fit trains: a model whose signatures run Keras' train and test steps,
// whose optimizer can be read and steered, and whose variables can be saved and restored.
// *tfgraph.Model is the implementation a program loads; the interface is what the loop
// depends on, so a wrapper (a model that logs its calls, one that counts its steps, a fake
// for a test) trains the same way.
type Trainable interface {
	// Metadata describes the export: a generic model (Metadata.Generic) trains on named
	// arrays through TrainArrays and EvaluateArrays, the image classifier on images and
	// one-hot labels through TrainStep and Evaluate.
	Metadata() savedmodel.Metadata

	TrainStep(x, labels, weights []float32, n int) (tfgraph.StepResult, error)
	Evaluate(x, labels []float32, n int) (tfgraph.EvalResult, error)
	TrainArrays(b tfgraph.Batch) (tfgraph.Logs, error)
	EvaluateArrays(b tfgraph.Batch) (tfgraph.Logs, error)
	// ResetMetrics clears a generic model's metric state, as Keras does at each epoch's start.
	ResetMetrics() error

	State() (tfgraph.OptimizerState, error)
	SetLearningRate(lr float64) (float64, error)
	SetReplicas(n int) error
	// TrainSignature names the train step signature in use (recorded in summary.json).
	TrainSignature() string
	// WarmUp runs the named signatures once so that their first real call is not slow.
	WarmUp(roles ...string) error

	// Snapshot copies the variables out for a background write; a model that cannot returns
	// an error wrapping tfgraph.ErrSnapshotUnsupported and is saved with SaveWithFiles.
	Snapshot() (*tfgraph.Snapshot, error)
	SaveWithFiles(dir string, extra map[string][]byte) error
	Restore(dir string) error
}

var _ Trainable = (*tfgraph.Model)(nil)
