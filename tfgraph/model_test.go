package tfgraph

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/emotions-dev/emotions/internal/testutil"
)

type golden struct {
	Probabilities      []float32 `json:"probabilities"`
	Losses             []float64 `json:"losses"`
	Accuracies         []float64 `json:"accuracies"`
	ProbabilitiesAfter []float32 `json:"probabilities_after"`
}

func readFloats(t *testing.T, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)
}

func runGolden(t *testing.T, model, out string, extra ...string) golden {
	t.Helper()
	args := append([]string{filepath.Join(testutil.RepoRoot(t), "tfgraph", "testdata", "golden.py"), model, out}, extra...)
	var g golden
	if err := json.Unmarshal([]byte(testutil.RunPython(t, args...)), &g); err != nil {
		t.Fatal(err)
	}
	return g
}

func load(t *testing.T, dir string) *Model {
	t.Helper()
	m, err := Load(dir, Options{Device: "cpu", XLA: "off"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func maxDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

const batch = 8

// Go's serve output and three consecutive train_step losses equal what Python's
// tf.saved_model.load gets from the same SavedModel.
func TestParityWithPython(t *testing.T) {
	dir := testutil.TinyModel(t)
	work := t.TempDir()
	g := runGolden(t, dir, work)
	x, labels := readFloats(t, filepath.Join(work, "x.bin")), readFloats(t, filepath.Join(work, "labels.bin"))

	m := load(t, dir)
	probs, err := m.Predict(x, batch)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(probs, g.Probabilities); d > 1e-5 {
		t.Fatalf("serve differs from Python by %g", d)
	}
	for i, want := range g.Losses {
		got, err := m.TrainStep(x, labels, nil, batch)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got.Loss-want) > 1e-5 || math.Abs(got.Accuracy-g.Accuracies[i]) > 1e-6 {
			t.Fatalf("step %d: Go loss %.7f acc %.3f, Python %.7f %.3f", i, got.Loss, got.Accuracy, want, g.Accuracies[i])
		}
	}
	after, err := m.Predict(x, batch)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(after, g.ProbabilitiesAfter); d > 1e-5 {
		t.Fatalf("after training, serve differs from Python by %g", d)
	}
	if d := maxDiff(after, probs); d < 1e-6 {
		t.Fatal("three train steps did not change the predictions")
	}
}

// After Go trains and saves, Python's reload predicts what Go predicted, a Go reload does too,
// and the next step's loss after reload equals the uninterrupted run's (optimizer state kept).
func TestSaveRestoreRoundTrip(t *testing.T) {
	dir := testutil.TinyModel(t)
	work := t.TempDir()
	runGolden(t, dir, work, "--steps", "0")
	x, labels := readFloats(t, filepath.Join(work, "x.bin")), readFloats(t, filepath.Join(work, "labels.bin"))

	m := load(t, dir)
	if _, err := m.SetLearningRate(5e-4); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := m.TrainStep(x, labels, nil, batch); err != nil {
			t.Fatal(err)
		}
	}
	saved := filepath.Join(work, "saved")
	if err := m.Save(saved); err != nil {
		t.Fatal(err)
	}
	want, err := m.Predict(x, batch)
	if err != nil {
		t.Fatal(err)
	}
	next, err := m.TrainStep(x, labels, nil, batch) // the uninterrupted run's 4th step
	if err != nil {
		t.Fatal(err)
	}

	py := runGolden(t, saved, work, "--predict-only")
	if d := maxDiff(py.Probabilities, want); d != 0 {
		t.Fatalf("Python reload of the Go-saved model predicts differently (max diff %g)", d)
	}
	r := load(t, saved)
	got, err := r.Predict(x, batch)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(got, want); d != 0 {
		t.Fatalf("Go reload predicts differently (max diff %g)", d)
	}
	st, err := r.State()
	if err != nil {
		t.Fatal(err)
	}
	if st.Iterations != 3 || math.Abs(st.LearningRate-5e-4) > 1e-9 {
		t.Fatalf("optimizer state after reload: %+v, want 3 iterations at lr 5e-4", st)
	}
	resumed, err := r.TrainStep(x, labels, nil, batch)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(resumed.Loss-next.Loss) > 1e-6 {
		t.Fatalf("next loss after reload %.7f, uninterrupted %.7f", resumed.Loss, next.Loss)
	}

	// Restore into a running session brings back the saved state too.
	if err := m.Restore(saved); err != nil {
		t.Fatal(err)
	}
	again, err := m.Predict(x, batch)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(again, want); d != 0 {
		t.Fatalf("Restore did not bring back the saved weights (max diff %g)", d)
	}
	// Saving over an existing directory swaps it atomically and leaves no temp dirs behind.
	if err := m.Save(saved); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(work)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Fatalf("left behind %s", e.Name())
		}
	}
}

func TestBadInput(t *testing.T) {
	dir := testutil.TinyModel(t)
	empty := t.TempDir()
	notModel := t.TempDir()
	os.WriteFile(filepath.Join(notModel, "readme.txt"), []byte("hi"), 0o644)
	// A plain SavedModel (what tf.saved_model.save or model.export write) lacks emotions.json:
	// the error says so and names the command that makes one.
	plain := t.TempDir()
	for _, f := range []string{"saved_model.pb", "variables"} {
		os.Symlink(filepath.Join(dir, f), filepath.Join(plain, f))
	}
	for _, c := range []struct{ dir, want string }{
		{filepath.Join(empty, "missing"), "no such directory"},
		{empty, "empty"},
		{notModel, "no saved_model.pb"},
		{plain, "without emotions.json"},
		{plain, "emotions new-model --from"},
	} {
		_, err := Load(c.dir, Options{Device: "cpu"})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.dir) {
			t.Errorf("Load(%s) = %v, want an error naming it with %q", c.dir, err, c.want)
		}
	}
	// LoadSavedModel takes it as it is, and describes its signatures.
	pm, err := LoadSavedModel(plain, Options{Device: "cpu"})
	if err != nil {
		t.Fatalf("LoadSavedModel(%s): %v", plain, err)
	}
	defer pm.Close()
	spec, ok := pm.SignatureSpec("serve")
	if pm.HasMetadata() || !ok || !strings.HasPrefix(spec.String(), "serve(images: float32[-1,80,80,3]) -> (probabilities: float32[-1,") ||
		len(pm.Signatures()) != len(pm.SignatureNames()) {
		t.Errorf("LoadSavedModel: metadata %v, serve %v (%v), %d signatures of %d", pm.HasMetadata(), spec, ok, len(pm.Signatures()), len(pm.SignatureNames()))
	}
	m := load(t, dir)
	if _, err := m.Predict(make([]float32, 10), 1); err == nil || !strings.Contains(err.Error(), "shape") {
		t.Errorf("wrong-size images: %v", err)
	}
	wrongShape, _ := Float32Tensor(make([]float32, 2*40*40*3), 2, 40, 40, 3)
	if _, err := m.Run("serve", map[string]*tf.Tensor{"images": wrongShape}); err == nil || !strings.Contains(err.Error(), "want [? 80 80 3]") {
		t.Errorf("wrong shape: %v", err)
	}
	ints, _ := tf.NewTensor([][]int32{{1}})
	if _, err := m.Run("serve", map[string]*tf.Tensor{"images": ints}); err == nil || !strings.Contains(err.Error(), "dtype int32, want float32") {
		t.Errorf("wrong dtype: %v", err)
	}
	if _, err := m.Run("nope", nil); err == nil || !strings.Contains(err.Error(), `no signature "nope"`) {
		t.Errorf("missing signature: %v", err)
	}
	if _, err := m.Run("serve", map[string]*tf.Tensor{}); err == nil || !strings.Contains(err.Error(), `missing input "images"`) {
		t.Errorf("missing input: %v", err)
	}
}

// A SavedModel whose emotions.json names signatures it does not have is refused by name.
func TestMissingSignature(t *testing.T) {
	dir := testutil.TinyModel(t)
	copyDir := filepath.Join(t.TempDir(), "m")
	os.MkdirAll(copyDir, 0o755)
	for _, f := range []string{"saved_model.pb", "variables"} {
		os.Symlink(filepath.Join(dir, f), filepath.Join(copyDir, f))
	}
	meta, _ := os.ReadFile(filepath.Join(dir, "emotions.json"))
	meta = []byte(strings.Replace(string(meta), `"evaluate": "evaluate"`, `"evaluate": "evaluate_v2"`, 1))
	os.WriteFile(filepath.Join(copyDir, "emotions.json"), meta, 0o644)
	_, err := Load(copyDir, Options{Device: "cpu"})
	if err == nil || !strings.Contains(err.Error(), "evaluate_v2") {
		t.Fatalf("want an error naming evaluate_v2, got %v", err)
	}
}

// The real InceptionResNetV2 at 80x80 (the seed's backbone, random init) exports, loads and
// trains two steps of batch 8 from Go; Go's serve output matches Python's on the same model.
func TestInceptionResNetV2TrainsFromGo(t *testing.T) {
	dir := testutil.ExportModel(t, "--backbone", "inception_resnet_v2", "--seed", "0", "--no-xla")
	work := t.TempDir()
	g := runGolden(t, dir, work, "--steps", "0")
	x, labels := readFloats(t, filepath.Join(work, "x.bin")), readFloats(t, filepath.Join(work, "labels.bin"))
	m := load(t, dir)
	if m.Meta.Backbone != "inception_resnet_v2" || m.Meta.Params < 50_000_000 {
		t.Fatalf("metadata: %s with %d parameters", m.Meta.Backbone, m.Meta.Params)
	}
	probs, err := m.Predict(x, batch)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(probs, g.Probabilities); d > 1e-5 {
		t.Fatalf("IRv2 serve differs from Python by %g", d)
	}
	for step := 0; step < 2; step++ {
		r, err := m.TrainStep(x, labels, nil, batch)
		if err != nil {
			t.Fatal(err)
		}
		if math.IsNaN(r.Loss) || math.IsInf(r.Loss, 0) || r.Loss <= 0 {
			t.Fatalf("step %d: loss %v", step, r.Loss)
		}
	}
	st, err := m.State()
	if err != nil || st.Iterations != 2 {
		t.Fatalf("optimizer state %+v, %v: want 2 iterations", st, err)
	}
}

// The XLA variant, when exported, is what TrainStep runs with XLA "on" (and on a GPU with
// "auto"). Its Dropout masks come from XLA's random number generator, so its loss is not the
// plain step's: the test checks that it runs and steps the optimizer.
func TestXLAVariant(t *testing.T) {
	dir := testutil.ExportModel(t, "--backbone", "tiny", "--seed", "1", "--xla", "on")
	work := t.TempDir()
	runGolden(t, dir, work, "--steps", "0")
	x, labels := readFloats(t, filepath.Join(work, "x.bin")), readFloats(t, filepath.Join(work, "labels.bin"))
	plain := load(t, dir)
	xla, err := Load(dir, Options{Device: "cpu", XLA: "on"})
	if err != nil {
		t.Fatal(err)
	}
	defer xla.Close()
	if plain.TrainSignature() != "train_step" || xla.TrainSignature() != "train_step_xla" {
		t.Fatalf("signatures: plain %s, xla %s", plain.TrainSignature(), xla.TrainSignature())
	}
	b, err := xla.TrainStep(x, labels, nil, batch)
	if err != nil {
		t.Fatal(err)
	}
	st, err := xla.State()
	if err != nil || st.Iterations != 1 || math.IsNaN(b.Loss) || b.Loss <= 0 {
		t.Fatalf("XLA step: loss %v, state %+v, %v", b.Loss, st, err)
	}
	if noXLA := load(t, testutil.TinyModel(t)); noXLA.TrainSignature() != "train_step" {
		t.Fatalf("a model without the XLA variant trains with %s", noXLA.TrainSignature())
	}
}

// Every name DTypeName gives parses back to its dtype, so that a dtype written to a key map or
// emotions.json is read as the one it was; the arrays package's dtypes are among them.
func TestDataTypeOfInvertsDTypeName(t *testing.T) {
	for dt := range dtypeNames {
		if got, ok := DataTypeOf(DTypeName(dt)); !ok || got != dt {
			t.Errorf("DataTypeOf(%q) = %v, %v; want %v", DTypeName(dt), got, ok, dt)
		}
	}
	for _, name := range []string{"float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool", "string"} {
		if _, ok := DataTypeOf(name); !ok {
			t.Errorf("DataTypeOf(%q) unknown", name)
		}
	}
	for _, name := range []string{"", "float", "half", "DT_FLOAT", "complex64", DTypeName(tf.Complex64)} {
		if dt, ok := DataTypeOf(name); ok {
			t.Errorf("DataTypeOf(%q) = %v, want unknown", name, dt)
		}
	}
}

// A tensor of a dtype DTypeName names but arrays has no type for is refused, not misread.
func TestToArrayRefusesUint32(t *testing.T) {
	tt, err := tf.NewTensor([]uint32{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if a, err := ToArray(tt); err == nil || !strings.Contains(err.Error(), `dtype "uint32"`) {
		t.Errorf("ToArray(uint32 tensor) = %+v, %v; want a dtype error", a, err)
	}
}
