package train

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emotions-dev/emotions/internal/testutil"
	"github.com/emotions-dev/emotions/tfgraph"
)

// Go's Fit against Keras' own fit, run by the test on the same model (export.py's builder,
// so the same initial weights and dtype policy), the same arrays and no shuffling, for each
// dtype policy new-model exports. The float32 run shows the comparison itself is exact to
// float32 rounding; the mixed policies are held to what their compute dtype allows.
func TestFitEqualsKerasFit(t *testing.T) {
	cases := []struct {
		policy string
		// Relative tolerance per History value. float32: the same kernels on both sides, so
		// float32 rounding (1e-5, the parity bar of every other Keras comparison here). The
		// mixed policies compute in bfloat16 (8 mantissa bits: a relative step of 2^-8) or
		// float16 (2^-11), so a value rounded differently on one side would move by ~4e-3 or
		// ~5e-4; both sides run the same kernels in the same order and measured within 1e-7
		// of each other (AVX-512 machine), so 1e-4 still catches any step that differs.
		tol   float64
		extra []string
	}{
		{"none", 1e-5, nil},
		{"mixed_bfloat16", 1e-4, nil},
		{"mixed_float16", 1e-4, nil},
		// The loss scale doubling every 2 steps reaches float16's overflow within the run, so
		// both of LossScaleOptimizer's branches run (skip the step and halve, grow).
		{"mixed_float16", 1e-4, []string{"--loss-scale-growth-steps", "2"}},
	}
	const epochs, batch = 3, 32
	data := parityData(t, 96, 64, 32, 4)
	for _, c := range cases {
		t.Run(strings.Join(append([]string{c.policy}, c.extra...), " "), func(t *testing.T) {
			exportArgs := append([]string{"--backbone", "tiny", "--seed", "3", "--input-size", "32", "--mixed-precision", c.policy}, c.extra...)
			dir := testutil.ExportModel(t, exportArgs...)
			m, err := tfgraph.Load(dir, tfgraph.Options{Device: "cpu"})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			wantPolicy := strings.TrimPrefix(c.policy, "none")
			if m.Meta.MixedPrecision != wantPolicy || m.Meta.LossScale != (c.policy == "mixed_float16") {
				t.Fatalf("emotions.json: mixed_precision %q, loss_scale %v; want %q, %v", m.Meta.MixedPrecision, m.Meta.LossScale, wantPolicy, c.policy == "mixed_float16")
			}
			run := t.TempDir()
			var goHist []EpochLogs
			collect := EpochEndFunc("collect", func(_ int, logs EpochLogs) error {
				goHist = append(goHist, copyLogs(logs))
				return nil
			})
			if _, err := Fit(context.Background(), m, data.source(batch), data.valid(),
				WithEpochs(epochs), WithValidationBatchSize(batch), WithRunDir(run), WithCallbacks(collect)); err != nil {
				t.Fatal(err)
			}

			keras := kerasFit(t, data, epochs, batch, nil, exportArgs)
			worst := compareHistory(t, keras, goHist, epochs, c.tol)
			t.Logf("%s: largest relative difference from Keras fit over %d epochs: %.3g", c.policy, epochs, worst)

			// The loss scale is part of what a run keeps: last/ holds Keras' value after the
			// same steps.
			if want, ok := keras["loss_scale"].(float64); ok {
				got := readCheckpointVariable(t, LastDir(run), "loss_scale_optimizer/dynamic_scale")
				if got != want {
					t.Errorf("loss scale in last/: %g, Keras after fit: %g", got, want)
				}
				t.Logf("loss scale after %d epochs: %g (from 32768)", epochs, got)
			}
		})
	}
}

// kerasFit runs keras_fit_reference.py (Keras' fit on export.py's model built with
// exportArgs, on data) and returns its History, plus the loss scale it ended with.
func kerasFit(t *testing.T, data *parityArrays, epochs, batch int, refArgs, exportArgs []string) map[string]any {
	t.Helper()
	args := []string{filepath.Join(testutil.RepoRoot(t), "train", "testdata", "keras_fit_reference.py"),
		data.dir, fmt.Sprint(epochs), fmt.Sprint(batch)}
	args = append(append(append(args, refArgs...), "--"), exportArgs...)
	var keras map[string]any
	if err := json.Unmarshal([]byte(testutil.RunPython(t, args...)), &keras); err != nil {
		t.Fatal(err)
	}
	return keras
}

// compareHistory fails t for every History value of Go's epochs further than tol (relative)
// from Keras', and returns the largest relative difference.
func compareHistory(t *testing.T, keras map[string]any, goHist []EpochLogs, epochs int, tol float64) float64 {
	t.Helper()
	worst := 0.0
	for _, key := range []string{"loss", "accuracy", "val_loss", "val_accuracy"} {
		want, ok := keras[key].([]any)
		if !ok || len(want) != epochs || len(goHist) != epochs {
			t.Fatalf("%s: Keras logged %v, Go %d epochs", key, keras[key], len(goHist))
		}
		for e := range epochs {
			k, g := want[e].(float64), goHist[e][key]
			rel := math.Abs(g-k) / max(math.Abs(k), 1e-3)
			worst = max(worst, rel)
			if rel > tol {
				t.Errorf("epoch %d %s: Go %.7g, Keras %.7g (relative %.2g > %.2g)", e+1, key, g, k, rel, tol)
			}
		}
	}
	return worst
}

// TestMixedFloat16ResumeEqualsUninterrupted: a mixed_float16 run stopped after 2 epochs and
// resumed from last/ ends where an uninterrupted 3-epoch run does, loss scale included. The
// scale grows every 4 steps, so the 6th step (where the run stops) is half-way to a growth:
// the resumed run grows it on time only if the step counter was kept too.
func TestMixedFloat16ResumeEqualsUninterrupted(t *testing.T) {
	const batch = 32
	data := parityData(t, 96, 32, 32, 4)
	dir := testutil.ExportModel(t, "--backbone", "tiny", "--seed", "3", "--input-size", "32", "--mixed-precision", "mixed_float16", "--loss-scale-growth-steps", "4")
	fit := func(model, run string, epochs int, extra ...Option) EpochLogs {
		t.Helper()
		m, err := tfgraph.Load(model, tfgraph.Options{Device: "cpu"})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		var last EpochLogs
		collect := EpochEndFunc("collect", func(_ int, logs EpochLogs) error { last = copyLogs(logs); return nil })
		opts := append([]Option{WithEpochs(epochs), WithValidationBatchSize(batch), WithRunDir(run), WithCallbacks(collect)}, extra...)
		if _, err := Fit(context.Background(), m, data.source(batch), data.valid(), opts...); err != nil {
			t.Fatal(err)
		}
		return last
	}
	whole := t.TempDir()
	want := fit(dir, whole, 3)
	parts := t.TempDir()
	fit(dir, parts, 2)
	st, err := LoadState(parts)
	if err != nil {
		t.Fatal(err)
	}
	got := fit(LastDir(parts), parts, 3, WithResume(st))
	for _, k := range []string{"loss", "accuracy", "val_loss", "val_accuracy"} {
		if math.Abs(got[k]-want[k]) > 1e-6*max(1, math.Abs(want[k])) {
			t.Errorf("epoch 3 %s: resumed %.7g, uninterrupted %.7g", k, got[k], want[k])
		}
	}
	a := readCheckpointVariable(t, LastDir(whole), "loss_scale_optimizer/dynamic_scale")
	b := readCheckpointVariable(t, LastDir(parts), "loss_scale_optimizer/dynamic_scale")
	if a != b || a == 32768 {
		t.Errorf("loss scale: resumed run %g, uninterrupted %g (initial 32768: must have changed)", b, a)
	}
}

// readCheckpointVariable reads one variable of a model directory's checkpoint by its Keras
// path (variables.json maps it to the checkpoint key), through TensorFlow in Python.
func readCheckpointVariable(t *testing.T, dir, path string) float64 {
	t.Helper()
	out := testutil.RunPython(t, "-c", `
import json, sys, tensorflow as tf
d, path = sys.argv[1], sys.argv[2]
keys = [v["key"] for v in json.load(open(d + "/variables.json"))["variables"] if v["path"] == path]
if len(keys) != 1:
    sys.exit(f"{path}: {len(keys)} variables")
print(float(tf.train.load_checkpoint(d + "/variables/variables").get_tensor(keys[0])))
`, dir, path)
	var v float64
	if _, err := fmt.Sscan(strings.TrimSpace(out), &v); err != nil {
		t.Fatalf("read %s of %s: %q: %v", path, dir, out, err)
	}
	return v
}

// parityArrays is a small data set written where the Keras reference reads it: noisy
// images whose mean brightness in one of four quadrants says the class.
type parityArrays struct {
	dir                      string
	xTrain, yTrain           []float32
	xValid, yValid           []float32
	nTrain, nValid, side, nc int
}

func parityData(t *testing.T, nTrain, nValid, side, classes int) *parityArrays {
	t.Helper()
	d := &parityArrays{dir: t.TempDir(), nTrain: nTrain, nValid: nValid, side: side, nc: classes}
	rng := rand.New(rand.NewPCG(11, 12))
	draw := func(n int) (x, y []float32) {
		x, y = make([]float32, n*side*side*3), make([]float32, n*classes)
		for i := range n {
			c := rng.IntN(classes)
			y[i*classes+c] = 1
			for p := range side * side {
				row, col := p/side, p%side
				q := 2*(row*2/side) + col*2/side
				v := 0.3 + 0.15*rng.NormFloat64()
				if q == c {
					v += 0.4
				}
				for ch := range 3 {
					x[(i*side*side+p)*3+ch] = float32(v)
				}
			}
		}
		return x, y
	}
	d.xTrain, d.yTrain = draw(nTrain)
	d.xValid, d.yValid = draw(nValid)
	for name, vals := range map[string][]float32{"x_train.f32": d.xTrain, "y_train.f32": d.yTrain, "x_valid.f32": d.xValid, "y_valid.f32": d.yValid} {
		buf := make([]byte, 4*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		}
		if err := os.WriteFile(filepath.Join(d.dir, name), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	shape, _ := json.Marshal(map[string]int{"n_train": nTrain, "n_valid": nValid, "height": side, "width": side, "channels": 3, "classes": classes})
	if err := os.WriteFile(filepath.Join(d.dir, "shape.json"), shape, 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

func (d *parityArrays) valid() Tensors {
	return Tensors{Images: d.xValid, Labels: d.yValid, N: d.nValid}
}

// source gives the training arrays in order, batch after batch, as Keras' fit with
// shuffle=False; it can seek, so a run can be resumed.
func (d *parityArrays) source(batch int) *inOrder {
	return &inOrder{d: d, batch: batch}
}

type inOrder struct {
	d     *parityArrays
	batch int
	next  int
}

func (s *inOrder) StepsPerEpoch() int { return s.d.nTrain / s.batch }

func (s *inOrder) Next(ctx context.Context) (Batch, error) {
	if err := ctx.Err(); err != nil {
		return Batch{}, err
	}
	at := (s.next % s.StepsPerEpoch()) * s.batch
	s.next++
	per := s.d.side * s.d.side * 3
	return Batch{Images: s.d.xTrain[at*per : (at+s.batch)*per], Labels: s.d.yTrain[at*s.d.nc : (at+s.batch)*s.d.nc], N: s.batch}, nil
}

func (s *inOrder) Seek(epoch, step int) error {
	s.next = epoch*s.StepsPerEpoch() + step
	return nil
}
