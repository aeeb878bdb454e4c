package train_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/emotions-dev/emotions/arrays"
	"github.com/emotions-dev/emotions/savedmodel"
	"github.com/emotions-dev/emotions/tfgraph"
	"github.com/emotions-dev/emotions/train"
)

// lineModel is a Trainable without TensorFlow: y = w*x + b fitted by plain gradient descent on
// the mean squared error, with a running mean absolute error as its one metric. Fit must train,
// checkpoint and resume it through the interface alone.
type lineModel struct {
	w, b, lr   float64
	iterations int64
	// running metric state, reset as Keras resets it
	lossSum, absSum, rows float64
	calls                 map[string]int
}

func newLineModel() *lineModel { return &lineModel{lr: 0.3, calls: map[string]int{}} }

func (m *lineModel) Metadata() savedmodel.Metadata {
	t := func(name string) savedmodel.Tensor {
		return savedmodel.Tensor{Name: name, DType: "float32", Shape: []int64{-1, 1}}
	}
	return savedmodel.Metadata{Kind: savedmodel.KindGeneric, Inputs: []savedmodel.Tensor{t("x")},
		Outputs: []savedmodel.Tensor{t("y")}, Targets: []savedmodel.Tensor{t("y")},
		Logs: []savedmodel.Log{{Name: "loss"}, {Name: "mae"}}, Monitor: map[string]string{"loss": "min", "mae": "min"}}
}

func (m *lineModel) TrainStep([]float32, []float32, []float32, int) (tfgraph.StepResult, error) {
	return tfgraph.StepResult{}, errors.New("lineModel takes named arrays")
}

func (m *lineModel) Evaluate([]float32, []float32, int) (tfgraph.EvalResult, error) {
	return tfgraph.EvalResult{}, errors.New("lineModel takes named arrays")
}

func (m *lineModel) step(b tfgraph.Batch, update bool) (tfgraph.Logs, error) {
	x, okX := b.Inputs["x"].Values.([]float32)
	y, okY := b.Targets["y"].Values.([]float32)
	if !okX || !okY || len(x) != len(y) || len(x) == 0 {
		return nil, fmt.Errorf("lineModel: want float32 x and y of the same length, got %v and %v", b.Inputs["x"].Shape, b.Targets["y"].Shape)
	}
	var dw, db float64
	for i := range x {
		e := m.w*float64(x[i]) + m.b - float64(y[i])
		m.lossSum, m.absSum = m.lossSum+e*e, m.absSum+math.Abs(e)
		dw, db = dw+2*e*float64(x[i]), db+2*e
	}
	m.rows += float64(len(x))
	if update {
		n := float64(len(x))
		m.w, m.b, m.iterations = m.w-m.lr*dw/n, m.b-m.lr*db/n, m.iterations+1
	}
	return tfgraph.Logs{"loss": m.lossSum / m.rows, "mae": m.absSum / m.rows}, nil
}

func (m *lineModel) TrainArrays(b tfgraph.Batch) (tfgraph.Logs, error) {
	m.calls["train"]++
	return m.step(b, true)
}

func (m *lineModel) EvaluateArrays(b tfgraph.Batch) (tfgraph.Logs, error) {
	m.calls["evaluate"]++
	return m.step(b, false)
}

func (m *lineModel) ResetMetrics() error { m.lossSum, m.absSum, m.rows = 0, 0, 0; return nil }

func (m *lineModel) State() (tfgraph.OptimizerState, error) {
	return tfgraph.OptimizerState{LearningRate: m.lr, Iterations: m.iterations}, nil
}

func (m *lineModel) SetLearningRate(lr float64) (float64, error) { m.lr = lr; return lr, nil }

func (m *lineModel) SetReplicas(n int) error {
	if n != 1 {
		return fmt.Errorf("lineModel has one replica, not %d", n)
	}
	return nil
}

func (m *lineModel) TrainSignature() string       { return "line" }
func (m *lineModel) WarmUp(roles ...string) error { return nil }

func (m *lineModel) Snapshot() (*tfgraph.Snapshot, error) {
	return nil, fmt.Errorf("lineModel: %w", tfgraph.ErrSnapshotUnsupported)
}

// variables are what lineModel saves, metric state included (as a SavedModel holds Keras'),
// so that a run resumed mid-epoch continues its running logs.
type variables struct {
	W, B, LR, LossSum, AbsSum, Rows float64
	Iterations                      int64
}

func (m *lineModel) SaveWithFiles(dir string, extra map[string][]byte) error {
	m.calls["save"]++
	b, err := json.Marshal(variables{m.w, m.b, m.lr, m.lossSum, m.absSum, m.rows, m.iterations})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	extra["variables.json"] = b
	for name, content := range extra {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (m *lineModel) Restore(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "variables.json"))
	if err != nil {
		return err
	}
	var v variables
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	m.w, m.b, m.lr, m.lossSum, m.absSum, m.rows, m.iterations = v.W, v.B, v.LR, v.LossSum, v.AbsSum, v.Rows, v.Iterations
	return nil
}

// lineData is y = 2x + 1 on n points of [-1, 1].
func lineData(t *testing.T, n int) train.ArrayData {
	t.Helper()
	x, y := make([]float32, n), make([]float32, n)
	for i := range x {
		x[i] = -1 + 2*float32(i)/float32(n-1)
		y[i] = 2*x[i] + 1
	}
	ax, err := arrays.Of(x, int64(n), 1)
	if err != nil {
		t.Fatal(err)
	}
	ay, err := arrays.Of(y, int64(n), 1)
	if err != nil {
		t.Fatal(err)
	}
	return train.ArrayData{Inputs: map[string]arrays.Array{"x": ax}, Targets: map[string]arrays.Array{"y": ay}}
}

// fitLine trains m for 8 epochs of 4 steps into run, ReduceLROnPlateau watching val_mae in
// auto mode (the direction comes from the model's Metadata).
func fitLine(t *testing.T, ctx context.Context, m *lineModel, run string, extra ...train.Option) (*train.Summary, error) {
	t.Helper()
	src, err := train.NewArraySource(lineData(t, 64), 16, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	reduce := train.DefaultReduceLROnPlateauConfig()
	reduce.Monitor, reduce.Patience, reduce.MinDelta, reduce.Factor = "val_mae", 1, 0.02, 0.5
	opts := []train.Option{train.WithEpochs(8), train.WithRunDir(run), train.WithReduceLROnPlateau(reduce)}
	return train.Fit(ctx, m, src, lineData(t, 33), append(opts, extra...)...)
}

// Fit trains any Trainable: a model without TensorFlow learns, its metric is logged with its
// val_ twin, a callback in auto mode steers it, and a run stopped mid-epoch resumed from its
// last/ logs exactly what the whole run logged.
func TestFitTrainsAnyTrainable(t *testing.T) {
	whole := newLineModel()
	s, err := fitLine(t, context.Background(), whole, filepath.Join(t.TempDir(), "whole"))
	if err != nil {
		t.Fatal(err)
	}
	first := s.Final
	if s.EpochsRun != 8 || whole.calls["train"] != 32 {
		t.Fatalf("%d epochs, %d train steps: want 8 and 32", s.EpochsRun, whole.calls["train"])
	}
	for _, k := range []string{"loss", "mae", "val_loss", "val_mae", "learning_rate"} {
		if _, ok := first[k]; !ok {
			t.Errorf("the logs lack %s: %v", k, first)
		}
	}
	if first["val_mae"] > 0.05 {
		t.Errorf("the line was not learned: val_mae %g after 8 epochs (w %g, b %g)", first["val_mae"], whole.w, whole.b)
	}
	if first["learning_rate"] >= 0.3 {
		t.Errorf("ReduceLROnPlateau(val_mae, min_delta 0.02) never reduced the learning rate: %g", first["learning_rate"])
	}

	run := filepath.Join(t.TempDir(), "parts")
	ctx, stop := interruptAt(2, 1)
	if _, err := fitLine(t, ctx, newLineModel(), run, train.WithCallbacks(stop)); !errors.Is(err, train.ErrInterrupted) {
		t.Fatalf("want ErrInterrupted, got %v", err)
	}
	st, err := train.LoadState(run)
	if err != nil {
		t.Fatal(err)
	}
	resumed := newLineModel()
	if err := resumed.Restore(train.LastDir(run)); err != nil {
		t.Fatal(err)
	}
	parts, err := fitLine(t, context.Background(), resumed, run, train.WithResume(st))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range first {
		if parts.Final[k] != v {
			t.Errorf("%s: resumed run ends at %v, the whole run at %v", k, parts.Final[k], v)
		}
	}
	b, err := os.ReadFile(train.Layout(run).History())
	if err != nil {
		t.Fatal(err)
	}
	var history []train.EpochRecord
	if err := json.Unmarshal(b, &history); err != nil || len(history) != 8 {
		t.Fatalf("history.json of the resumed run: %d epochs (%v)", len(history), err)
	}
}
