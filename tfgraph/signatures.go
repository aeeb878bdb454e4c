package tfgraph

import (
	"errors"
	"fmt"
	"slices"
	"sort"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/emotions-dev/emotions/arrays"
)

// The typed API over the exporter's endpoints (see savedmodel/export.py make_endpoints).
// Images are NHWC float32, already normalised; labels are one-hot (or soft) float32 [n, C].

// InputShape is one image's shape as the model takes it: height, width, channels.
func (m *Model) InputShape() (height, width, channels int) {
	return m.Meta.InputHeight, m.Meta.InputWidth, m.Meta.Channels
}

func (m *Model) imageTensor(x []float32, n int) (*tf.Tensor, error) {
	h, w, c := m.InputShape()
	if n <= 0 {
		return nil, fmt.Errorf("empty batch")
	}
	t, err := Float32Tensor(x, int64(n), int64(h), int64(w), int64(c))
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	return t, nil
}

// Predict runs serve on n images and returns n*C probabilities, row-major: PredictArrays with
// the image classifier's input and output names.
func (m *Model) Predict(x []float32, n int) ([]float32, error) {
	h, w, c := m.InputShape()
	if n <= 0 {
		return nil, fmt.Errorf("empty batch")
	}
	images, err := arrays.Of(x, int64(n), int64(h), int64(w), int64(c))
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	out, err := m.PredictArrays(map[string]arrays.Array{"images": images})
	if err != nil {
		return nil, err
	}
	probs, ok := out["probabilities"].Values.([]float32)
	if !ok {
		return nil, fmt.Errorf("%s: serve returned no float32 probabilities (outputs %v)", m.Dir, keys(out))
	}
	return probs, nil
}

// StepResult is what one train_step reports (Keras' batch logs).
type StepResult struct{ Loss, Accuracy float64 }

// TrainStep runs one optimizer step on n images. weights may be nil (all ones).
func (m *Model) TrainStep(x, labels, weights []float32, n int) (StepResult, error) {
	images, err := m.imageTensor(x, n)
	if err != nil {
		return StepResult{}, err
	}
	lab, err := Float32Tensor(labels, int64(n), int64(len(m.Meta.Classes)))
	if err != nil {
		Free(images)
		return StepResult{}, fmt.Errorf("labels: %w", err)
	}
	if weights == nil {
		weights = ones(n)
	}
	w, err := Float32Tensor(weights, int64(n))
	if err != nil {
		Free(images, lab)
		return StepResult{}, fmt.Errorf("sample weights: %w", err)
	}
	defer Free(images, lab, w)
	out, err := m.Run(m.trainSignatureFor(n), map[string]*tf.Tensor{"images": images, "labels": lab, "sample_weights": w})
	if err != nil {
		return StepResult{}, err
	}
	defer FreeAll(out)
	loss, err := Scalar(out["loss"])
	if err != nil {
		return StepResult{}, fmt.Errorf("train_step loss: %w", err)
	}
	acc, err := Scalar(out["accuracy"])
	if err != nil {
		return StepResult{}, fmt.Errorf("train_step accuracy: %w", err)
	}
	return StepResult{Loss: loss, Accuracy: acc}, nil
}

// trainSignature picks the XLA-compiled train step on GPU (what Keras' jit_compile="auto"
// does), the plain one on CPU, unless Options.XLA says otherwise.
func (m *Model) trainSignature() string {
	useXLA := m.Options.XLA == "on" || ((m.Options.XLA == "" || m.Options.XLA == "auto") && m.HasGPU())
	if useXLA {
		if _, ok := m.Signature(m.signatureFor("train_step_xla")); ok {
			return m.signatureFor("train_step_xla")
		}
	}
	return m.signatureFor("train_step")
}

// TrainSignature names the signature TrainStep runs on a full batch.
func (m *Model) TrainSignature() string { return m.trainSignatureFor(m.Replicas()) }

// trainSignatureFor is the signature a batch of n images trains with.
func (m *Model) trainSignatureFor(n int) string {
	if m.towers(n) {
		return replicaSignature("train_step", m.replicas)
	}
	return m.trainSignature()
}

// towers reports whether a batch of n images runs the N-tower signatures. A batch smaller
// than the replica count (an epoch's last, say) runs on one device: TensorFlow fails on a
// tower without images (BatchNorm statistics of nothing). Its gradient is the same mean over
// the batch; only replica 0's statistics see that batch.
func (m *Model) towers(n int) bool { return m.replicas > 1 && n >= m.replicas }

// replicaSignature names the N-tower signatures `new-model --replicas N` exports
// (savedmodel/export.py replica_signatures).
func replicaSignature(role string, n int) string { return fmt.Sprintf("%s_replicas_%d", role, n) }

// ReplicaCounts lists the tower counts the model has signatures for, ascending (new-model
// --replicas N exports N); empty for a single-device model.
func (m *Model) ReplicaCounts() []int {
	var out []int
	for _, name := range m.SignatureNames() {
		var n int
		if _, err := fmt.Sscanf(name, "train_step_replicas_%d", &n); err == nil && name == replicaSignature("train_step", n) {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out
}

// SetReplicas makes TrainStep and Evaluate run n towers, one per device ("/device:*:R": the
// R-th GPU, or the R-th logical CPU with Options.CPUDevices; a session with fewer devices
// runs several towers on one), each on 1/n of the batch, as Keras fit under MirroredStrategy
// does. It starts every replica's copy of the BatchNorm statistics and Dropout seed state
// from the model's own, as restoring a checkpoint does under MirroredStrategy. n = 1 goes
// back to the single-device signatures. Call it before training, not during a step.
func (m *Model) SetReplicas(n int) error {
	if n < 1 {
		return fmt.Errorf("replicas %d: want 1 or more", n)
	}
	if n == 1 {
		m.replicas = 1
		return nil
	}
	for _, role := range []string{"train_step", "evaluate", "sync"} {
		if _, ok := m.Signature(replicaSignature(role, n)); !ok {
			return fmt.Errorf("%s: no %d-replica signatures (%s): the export has them for %v replicas, and only those can train",
				m.Dir, n, replicaSignature(role, n), m.ReplicaCounts())
		}
	}
	out, err := m.Run(replicaSignature("sync", n), map[string]*tf.Tensor{})
	if err != nil {
		return fmt.Errorf("start %d replicas: %w", n, err)
	}
	FreeAll(out)
	m.replicas = n
	return nil
}

// Replicas is the tower count TrainStep and Evaluate run (1: the single-device signatures).
func (m *Model) Replicas() int { return max(m.replicas, 1) }

// EvalResult holds sums over a batch, so batches aggregate exactly.
type EvalResult struct{ LossSum, Correct float64 }

// Evaluate runs evaluate (training=False) on n images.
func (m *Model) Evaluate(x, labels []float32, n int) (EvalResult, error) {
	images, err := m.imageTensor(x, n)
	if err != nil {
		return EvalResult{}, err
	}
	lab, err := Float32Tensor(labels, int64(n), int64(len(m.Meta.Classes)))
	if err != nil {
		Free(images)
		return EvalResult{}, fmt.Errorf("labels: %w", err)
	}
	defer Free(images, lab)
	sig := m.signatureFor("evaluate")
	if m.towers(n) { // each replica on its share with its own BatchNorm statistics, as Keras' evaluate
		sig = replicaSignature("evaluate", m.replicas)
	}
	out, err := m.Run(sig, map[string]*tf.Tensor{"images": images, "labels": lab})
	if err != nil {
		return EvalResult{}, err
	}
	defer FreeAll(out)
	loss, err := Scalar(out["loss_sum"])
	if err != nil {
		return EvalResult{}, err
	}
	correct, err := Scalar(out["correct"])
	if err != nil {
		return EvalResult{}, err
	}
	return EvalResult{LossSum: loss, Correct: correct}, nil
}

// SetLearningRate assigns the optimizer's learning rate and returns the value it now holds
// (a float32 variable, so rounded as Keras would store it).
func (m *Model) SetLearningRate(lr float64) (float64, error) {
	t, err := tf.NewTensor(float32(lr))
	if err != nil {
		return 0, err
	}
	defer Free(t)
	out, err := m.Run(m.signatureFor("set_learning_rate"), map[string]*tf.Tensor{"learning_rate": t})
	if err != nil {
		return 0, err
	}
	defer FreeAll(out)
	return Scalar(out["learning_rate"])
}

// OptimizerState is the optimizer's learning rate and step count.
type OptimizerState struct {
	LearningRate float64
	Iterations   int64
}

// State reads the optimizer's learning rate and iteration count.
func (m *Model) State() (OptimizerState, error) {
	out, err := m.Run(m.signatureFor("get_state"), map[string]*tf.Tensor{})
	if err != nil {
		return OptimizerState{}, err
	}
	defer FreeAll(out)
	lr, err := Scalar(out["learning_rate"])
	if err != nil {
		return OptimizerState{}, err
	}
	it, err := Scalar(out["iterations"])
	if err != nil {
		return OptimizerState{}, err
	}
	return OptimizerState{LearningRate: lr, Iterations: int64(it)}, nil
}

func ones(n int) []float32 {
	w := make([]float32, n)
	for i := range w {
		w[i] = 1
	}
	return w
}

// WarmUp runs what the first call of a signature costs ahead of time: TensorFlow optimises a
// signature's graph the first time it runs it (seconds for InceptionResNetV2). roles are
// "serve", "evaluate" (each run once on one blank image, without side effects) and "snapshot"
// (a Snapshot taken and freed at once). A training loop calls it on a goroutine of its own at
// the start, so these optimisations overlap the first train step's instead of adding to the
// first validation, the first checkpoint or a test evaluation.
//
// A generic model warms up "snapshot" only: its evaluate would change the metric state a train
// step is accumulating, and nothing is known of its inputs' values.
func (m *Model) WarmUp(roles ...string) error {
	if m.Generic() {
		roles = slices.DeleteFunc(slices.Clone(roles), func(r string) bool { return r != "snapshot" })
	}
	h, w, c := m.InputShape()
	n := m.Replicas() // one image per tower: what runs the N-tower evaluate
	x := make([]float32, n*h*w*c)
	for _, role := range roles {
		var err error
		switch role {
		case "serve":
			_, err = m.Predict(x[:h*w*c], 1)
		case "evaluate":
			labels := make([]float32, n*len(m.Meta.Classes))
			for i := range n {
				labels[i*len(m.Meta.Classes)] = 1
			}
			_, err = m.Evaluate(x, labels, n)
		case "snapshot":
			var s *Snapshot
			if s, err = m.Snapshot(); err == nil {
				s.Release()
			} else if errors.Is(err, ErrSnapshotUnsupported) {
				err = nil // saves go through the saver instead: nothing to warm
			}
		default:
			err = fmt.Errorf("no signature role %q to warm up", role)
		}
		if err != nil {
			return fmt.Errorf("warm up %s: %w", role, err)
		}
	}
	return nil
}
