package train_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/emotions-dev/emotions/internal/testutil"
	"github.com/emotions-dev/emotions/tfgraph"
	"github.com/emotions-dev/emotions/train"
)

// exampleModel is a model made by `emotions new-model --backbone tiny` (80x80 RGB, 4 classes).
var exampleModel string

func TestMain(m *testing.M) { os.Exit(testutil.RunWithTinyModel(m, &exampleModel)) }

// memorySource is a Source over batches the program made itself: here random images with
// random labels, one fixed set of batches repeated every epoch.
type memorySource struct {
	batches []train.Batch
	next    int
}

func (s *memorySource) StepsPerEpoch() int { return len(s.batches) }

func (s *memorySource) Next(ctx context.Context) (train.Batch, error) {
	b := s.batches[s.next%len(s.batches)]
	s.next++
	return b, nil
}

// Seek makes it resumable: the batch of (epoch, step) is known.
func (s *memorySource) Seek(epoch, step int) error {
	s.next = epoch*len(s.batches) + step
	return nil
}

func randomBatch(rng *rand.Rand, n, values, classes int) train.Batch {
	b := train.Batch{Images: make([]float32, n*values), Labels: make([]float32, n*classes), N: n}
	for i := range b.Images {
		b.Images[i] = rng.Float32()
	}
	for i := range n {
		b.Labels[i*classes+rng.IntN(classes)] = 1
	}
	return b
}

// Fit trains a model on batches a program builds in memory, with Keras' EarlyStopping, a
// callback of its own, and a run directory to resume from.
func ExampleFit() {
	m, err := tfgraph.Load(exampleModel, tfgraph.Options{Device: "cpu"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	h, w, c := m.InputShape()
	classes := len(m.Meta.Classes)
	rng := rand.New(rand.NewPCG(1, 2))
	src := &memorySource{}
	for range 3 {
		src.batches = append(src.batches, randomBatch(rng, 16, h*w*c, classes))
	}
	v := randomBatch(rng, 32, h*w*c, classes)
	valid := train.Tensors{Images: v.Images, Labels: v.Labels, N: v.N}

	run, _ := os.MkdirTemp("", "example-run-")
	defer os.RemoveAll(run)
	stopping := train.DefaultEarlyStoppingConfig()
	stopping.Patience = 10
	epochs := 0
	count := train.EpochEndFunc("count", func(epoch int, logs train.EpochLogs) error {
		epochs++
		return nil
	})
	summary, err := train.Fit(context.Background(), m, src, valid,
		train.WithEpochs(2), train.WithRunDir(run), train.WithEarlyStopping(stopping), train.WithCallbacks(count))
	if err != nil {
		fmt.Println(err)
		return
	}
	st, _ := train.LoadState(run)
	fmt.Println(summary.EpochsRun, "epochs;", summary.StopReason)
	fmt.Println("callback saw", epochs, "epochs; steps run:", summary.Timing.Steps)
	fmt.Println("resume state at epoch", st.Epoch, "in", filepath.Base(train.LastDir(run)))
	// Output:
	// 2 epochs; completed 2 epochs
	// callback saw 2 epochs; steps run: 6
	// resume state at epoch 2 in last
}

// An EpochEndHook can stop training: returning ErrStopTraining ends the run after that epoch,
// without an error (Keras' model.stop_training = True).
func ExampleEpochEndFunc() {
	m, err := tfgraph.Load(exampleModel, tfgraph.Options{Device: "cpu"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	h, w, c := m.InputShape()
	rng := rand.New(rand.NewPCG(3, 4))
	src := &memorySource{batches: []train.Batch{randomBatch(rng, 8, h*w*c, 4)}}
	v := randomBatch(rng, 8, h*w*c, 4)
	stopAt2 := train.EpochEndFunc("stop-at-2", func(epoch int, logs train.EpochLogs) error {
		if epoch == 1 {
			return train.ErrStopTraining
		}
		return nil
	})
	summary, err := train.Fit(context.Background(), m, src, train.Tensors{Images: v.Images, Labels: v.Labels, N: 8},
		train.WithEpochs(10), train.WithCallbacks(stopAt2))
	fmt.Println(summary.EpochsRun, err, summary.StopReason)
	// Output: 2 <nil> stopped by a callback
}
