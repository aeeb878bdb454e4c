package tfgraph

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/emotions-dev/emotions/internal/testutil"
)

// A team's own compiled Keras model, wrapped by `new-model --from`, trains from Go with its
// own optimizer and loss, and the result reloads in Go.
func TestWrapOwnKerasModel(t *testing.T) {
	work := t.TempDir()
	keras := filepath.Join(work, "own.keras")
	testutil.RunPython(t, filepath.Join(testutil.RepoRoot(t), "tfgraph", "testdata", "make_keras_model.py"), keras)
	dir := filepath.Join(work, "wrapped")
	testutil.RunPython(t, filepath.Join(testutil.RepoRoot(t), "savedmodel", "export.py"),
		"--from", keras, "--classes", "calm,excited,tired", "--out", dir)

	m := load(t, dir)
	if m.Meta.InputHeight != 48 || m.Meta.InputWidth != 48 || len(m.Meta.Classes) != 3 || m.Meta.Optimizer != "SGD" || m.Meta.Backbone != "custom" {
		t.Fatalf("metadata %+v", m.Meta)
	}
	// A learnable task: the class is which colour channel is bright.
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 24
	x := make([]float32, n*48*48*3)
	labels := make([]float32, n*3)
	for i := 0; i < n; i++ {
		c := i % 3
		labels[i*3+c] = 1
		for p := 0; p < 48*48; p++ {
			for ch := 0; ch < 3; ch++ {
				v := 0.2 * rng.Float32()
				if ch == c {
					v += 0.8
				}
				x[(i*48*48+p)*3+ch] = v
			}
		}
	}
	first, err := m.TrainStep(x, labels, nil, n)
	if err != nil {
		t.Fatal(err)
	}
	var last StepResult
	for i := 0; i < 30; i++ {
		if last, err = m.TrainStep(x, labels, nil, n); err != nil {
			t.Fatal(err)
		}
	}
	if !(last.Loss < 0.5*first.Loss) || math.IsNaN(last.Loss) {
		t.Fatalf("the wrapped model did not learn: loss %.4f -> %.4f", first.Loss, last.Loss)
	}
	ev, err := m.Evaluate(x, labels, n)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Correct != n {
		t.Fatalf("evaluate: %v of %d correct after training", ev.Correct, n)
	}
	saved := filepath.Join(work, "trained")
	if err := m.Save(saved); err != nil {
		t.Fatal(err)
	}
	want, _ := m.Predict(x, n)
	got, err := load(t, saved).Predict(x, n)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(got, want); d != 0 {
		t.Fatalf("reloaded wrapped model predicts differently: %g", d)
	}
}
