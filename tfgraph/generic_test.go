package tfgraph_test

import (
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/emotions-dev/emotions/arrays"
	"github.com/emotions-dev/emotions/internal/example"
	"github.com/emotions-dev/emotions/internal/testutil"
	"github.com/emotions-dev/emotions/tfgraph"
)

var (
	genericOnce sync.Once
	genericDir  string
	genericErr  error
)

// genericModel exports testdata/generic_model.py's model once per test binary.
func genericModel(t *testing.T) *tfgraph.Model {
	t.Helper()
	genericOnce.Do(func() {
		var dir string
		if dir, genericErr = testutil.SharedDir("emotions-test-model-"); genericErr != nil {
			return
		}
		t.Setenv("EMOTIONS_PYTHON", testutil.Python(t))
		if genericErr = example.Prepare(dir, filepath.Join(testutil.RepoRoot(t), "tfgraph", "testdata", "generic_model.py")); genericErr != nil {
			return
		}
		genericDir, genericErr = example.Export(dir, "", "", io.Discard)
	})
	if genericErr != nil {
		t.Fatal(genericErr)
	}
	m, err := tfgraph.Load(genericDir, tfgraph.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// must fails t with err, if any.
func must(t *testing.T) func(arrays.Array, error) arrays.Array {
	return func(a arrays.Array, err error) arrays.Array {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
}

// A batch built from Go slices runs; one whose names, dtypes, shapes or rows disagree with the
// model is refused with the tensor named, what the model takes and what came.
func TestArrayBatchesCheckedByName(t *testing.T) {
	m := genericModel(t)
	if !m.Generic() || len(m.Inputs()) != 2 || len(m.Targets()) != 1 || m.Targets()[0].DType != "int32" {
		t.Fatalf("inputs %v, targets %v", m.Inputs(), m.Targets())
	}
	tokens := must(t)(arrays.Of([]int32{1, 2, 3, 4, 5, 5, 4, 3, 2, 1}, 2, 5))
	x := must(t)(arrays.Of([]float32{0.1, 0.2, 0.3, -1, 0, 1}, 2, 3))
	y := must(t)(arrays.Of([]int32{0, 1}, 2))
	good := tfgraph.Batch{Inputs: map[string]arrays.Array{"tokens": tokens, "x": x}, Targets: map[string]arrays.Array{"y": y}}

	if err := m.ResetMetrics(); err != nil {
		t.Fatal(err)
	}
	first, err := m.EvaluateArrays(good)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := first["accuracy"]; !ok || first["loss"] <= 0 {
		t.Fatalf("evaluate logs %v", first)
	}
	// Metrics accumulate until reset: the same batch again leaves the mean where it was, and a
	// reset brings back the first result exactly.
	if again, err := m.EvaluateArrays(good); err != nil || again["loss"] != first["loss"] {
		t.Errorf("second evaluate: %v %v, want loss %v", again, err, first["loss"])
	}
	if err := m.ResetMetrics(); err != nil {
		t.Fatal(err)
	}
	if after, err := m.EvaluateArrays(good); err != nil || after["accuracy"] != first["accuracy"] || after["loss"] != first["loss"] {
		t.Errorf("after reset: %v %v, want %v", after, err, first)
	}
	if logs, err := m.TrainArrays(good); err != nil || logs["loss"] <= 0 {
		t.Fatalf("train: %v %v", logs, err)
	}
	out, err := m.PredictArrays(good.Inputs)
	if err != nil || out["y"].DType != arrays.Float32 || len(out["y"].Shape) != 2 || out["y"].Shape[1] != 2 {
		t.Fatalf("predict: %v %v", out, err)
	}

	int64Tokens := must(t)(arrays.Of([]int64{1, 2, 3, 4, 5, 5, 4, 3, 2, 1}, 2, 5))
	shortX := must(t)(arrays.Of([]float32{1, 2, 3, 4}, 2, 2))
	oneY := must(t)(arrays.Of([]int32{0}, 1))
	for _, c := range []struct {
		name  string
		batch tfgraph.Batch
		want  string
	}{
		{"missing input", tfgraph.Batch{Inputs: map[string]arrays.Array{"tokens": tokens}, Targets: good.Targets}, `input "x" missing`},
		{"unknown input", tfgraph.Batch{Inputs: map[string]arrays.Array{"tokens": tokens, "x": x, "z": x}, Targets: good.Targets}, "unknown input z"},
		{"dtype", tfgraph.Batch{Inputs: map[string]arrays.Array{"tokens": int64Tokens, "x": x}, Targets: good.Targets}, `input "tokens": dtype int64, the model takes int32`},
		{"shape", tfgraph.Batch{Inputs: map[string]arrays.Array{"tokens": tokens, "x": shortX}, Targets: good.Targets}, `input "x": shape [2 2], the model takes [? 3]`},
		{"rows", tfgraph.Batch{Inputs: good.Inputs, Targets: map[string]arrays.Array{"y": oneY}}, `target "y" has 1 rows`},
		{"missing target", tfgraph.Batch{Inputs: good.Inputs}, `target "y" missing`},
		{"weights", tfgraph.Batch{Inputs: good.Inputs, Targets: good.Targets, SampleWeights: []float32{1}}, "sample weights: 1 for a batch of 2 rows"},
	} {
		_, err := m.TrainArrays(c.batch)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
}

// A float16 input reaches TensorFlow: given as float16, or as float32 that the model's dtype
// rounds (Keras casts NumPy data so), for predict and for a train step.
func TestHalfInput(t *testing.T) {
	dir, err := testutil.SharedDir("emotions-test-model-")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("EMOTIONS_PYTHON", testutil.Python(t))
	if err := example.Prepare(dir, filepath.Join(testutil.RepoRoot(t), "tfgraph", "testdata", "half_model.py")); err != nil {
		t.Fatal(err)
	}
	modelDir, err := example.Export(dir, "", "", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	m, err := tfgraph.Load(modelDir, tfgraph.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if in := m.Inputs(); len(in) != 1 || in[0].DType != "float16" {
		t.Fatalf("inputs %v, want one float16", in)
	}
	single := []float32{0.5, -1.25, 2, 0.1, 3.5, -0.75}
	halves := make([]uint16, len(single))
	for i, v := range single {
		halves[i] = arrays.Float32ToFloat16(v)
	}
	fromFloat32, err := m.PredictArrays(map[string]arrays.Array{"h": must(t)(arrays.Of(single, 2, 3))})
	if err != nil {
		t.Fatal(err)
	}
	fromHalf, err := m.PredictArrays(map[string]arrays.Array{"h": {DType: arrays.Float16, Shape: []int64{2, 3}, Values: halves}})
	if err != nil {
		t.Fatal(err)
	}
	a, b := fromFloat32["y"].Values.([]float32), fromHalf["y"].Values.([]float32)
	if len(a) != 4 || !slices.Equal(a, b) || math.Abs(float64(a[0]+a[1])-1) > 1e-3 {
		t.Fatalf("predictions %v (from float32) and %v (from float16): want the same softmax rows", a, b)
	}
	y := must(t)(arrays.Of([]int32{0, 1}, 2))
	logs, err := m.TrainArrays(tfgraph.Batch{Inputs: map[string]arrays.Array{"h": must(t)(arrays.Of(single, 2, 3))}, Targets: map[string]arrays.Array{"y": y}})
	if err != nil || !(logs["loss"] > 0) {
		t.Fatalf("train step on a float16 input: %v %v", logs, err)
	}
}
