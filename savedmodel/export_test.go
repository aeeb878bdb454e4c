package savedmodel

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emotions-dev/emotions/internal/testutil"
)

// Your own model, whatever its input: a 48x48 grayscale logits model and a 96x64 RGB softmax
// model wrapped by export.py give Keras' own probabilities, losses and input shapes.
func TestWrapOtherShapesAndLogits(t *testing.T) {
	work := t.TempDir()
	root := testutil.RepoRoot(t)
	out := testutil.RunPython(t, filepath.Join(root, "savedmodel", "testdata", "check_wrap.py"),
		filepath.Join(root, "savedmodel", "export.py"), work)
	var r struct {
		FerError, WideError *string
		Fer                 struct {
			ServeMaxDiff   float64   `json:"serve_max_diff"`
			ServeRowSums   []float64 `json:"serve_row_sums"`
			LossSum        float64   `json:"loss_sum"`
			KerasLossSum   float64   `json:"keras_loss_sum"`
			Correct        float64   `json:"correct"`
			KerasCorrect   float64   `json:"keras_correct"`
			TrainLoss      float64   `json:"train_loss"`
			KerasTrainLoss float64   `json:"keras_train_loss"`
			Shape          []int     `json:"shape"`
			TrainShape     []int     `json:"train_shape"`
		}
		Wide struct {
			Shape        []int   `json:"shape"`
			DefaultShape []int   `json:"default_shape"`
			ServeMaxDiff float64 `json:"serve_max_diff"`
			LossSum      float64 `json:"loss_sum"`
			KerasLossSum float64 `json:"keras_loss_sum"`
		}
		Refusals map[string]*string
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
		t.Fatalf("check_wrap.py said %q: %v", out, err)
	}
	if r.FerError != nil || r.WideError != nil {
		t.Fatalf("export refused a model it should wrap: %v, %v", deref(r.FerError), deref(r.WideError))
	}

	fer := r.Fer
	if fer.ServeMaxDiff > 1e-5 {
		t.Errorf("serve of the logits model differs from softmax(model(x)) by %g", fer.ServeMaxDiff)
	}
	for _, s := range fer.ServeRowSums {
		if math.Abs(s-1) > 1e-5 {
			t.Errorf("serve of the logits model is not probabilities: a row sums to %v", s)
		}
	}
	if math.Abs(fer.LossSum-fer.KerasLossSum) > 1e-4 {
		t.Errorf("evaluate loss_sum %v, Keras' CategoricalCrossentropy(from_logits=True) sum %v", fer.LossSum, fer.KerasLossSum)
	}
	if fer.Correct != fer.KerasCorrect || fer.Correct < 3 {
		t.Errorf("evaluate correct %v, Keras' argmax hits %v (at least 3 by construction)", fer.Correct, fer.KerasCorrect)
	}
	if math.Abs(fer.TrainLoss-fer.KerasTrainLoss) > 1e-4 {
		t.Errorf("train_step loss %v, the model's compiled loss %v", fer.TrainLoss, fer.KerasTrainLoss)
	}
	if !sameInts(fer.Shape, []int{-1, 48, 48, 1}) || !sameInts(fer.TrainShape, []int{-1, 48, 48, 1}) {
		t.Errorf("logits model's image specs: serve %v, train_step %v; want [-1 48 48 1]", fer.Shape, fer.TrainShape)
	}
	if !sameInts(r.Wide.Shape, []int{-1, 96, 64, 3}) || !sameInts(r.Wide.DefaultShape, []int{-1, 96, 64, 3}) {
		t.Errorf("96x64 model's serve spec %v (serving_default %v), want [-1 96 64 3]", r.Wide.Shape, r.Wide.DefaultShape)
	}
	if r.Wide.ServeMaxDiff > 1e-5 || math.Abs(r.Wide.LossSum-r.Wide.KerasLossSum) > 1e-4 {
		t.Errorf("96x64 softmax model: serve differs by %g, loss_sum %v vs Keras %v", r.Wide.ServeMaxDiff, r.Wide.LossSum, r.Wide.KerasLossSum)
	}

	m, err := ReadMetadata(filepath.Join(work, "fer"))
	if err != nil {
		t.Fatal(err)
	}
	if m.InputHeight != 48 || m.InputWidth != 48 || m.Channels != 1 || m.Color != ColorGrayscale || m.Output != OutputLogits ||
		len(m.Classes) != 7 || m.PixelsPerImage() != 48*48 || m.Normalization.Mode != "mean_std" || m.Backbone != "custom" {
		t.Errorf("logits model metadata %+v", m)
	}
	// --mean 0.5 --std 0.25: x = (p/255 - 0.5)/0.25.
	if n := m.Normalization; math.Abs(float64(n.Scale[0])-1/(255*0.25)) > 1e-7 || math.Abs(float64(n.Offset[0])+2) > 1e-6 ||
		n.Scale[1] != n.Scale[0] || n.Offset[2] != n.Offset[0] {
		t.Errorf("mean_std normalization %+v", n)
	}
	wide, err := ReadMetadata(filepath.Join(work, "wide"))
	if err != nil {
		t.Fatal(err)
	}
	if wide.InputHeight != 96 || wide.InputWidth != 64 || wide.InputSize != 0 || wide.Channels != 3 || wide.Color != ColorRGB ||
		wide.Output != OutputProbabilities || wide.Loss != "categorical_crossentropy" {
		t.Errorf("96x64 model metadata %+v", wide)
	}

	for name, want := range map[string]string{
		"sigmoid":             "activation is sigmoid",
		"two_channels":        "two_channels.keras: input shape (None, 32, 32, 2)",
		"any_size":            "input shape (None, None, None, 3)",
		"softmax_from_logits": "from_logits=True) says logits",
		"output_contradicts":  "--output says logits",
		"class_count":         "--classes names 2",
		"caffe_gray":          "one (grayscale) channel",
		"mean_without_std":    "needs --mean and --std",
		"mean_with_rescale":   "go with --normalization mean_std",
		"three_means_gray":    "one --mean",
		"zero_std":            "must be positive",
		"unknown_kind":        "pass --output",
	} {
		if got := deref(r.Refusals[name]); !strings.Contains(got, want) {
			t.Errorf("%s: export said %q, want a refusal containing %q", name, got, want)
		}
	}
	if got := r.Refusals["unknown_kind_told"]; got != nil {
		t.Errorf("--output logits did not settle an unknown output kind: %s", *got)
	}
	if m, err := ReadMetadata(filepath.Join(work, "unknown_kind_told")); err != nil || m.Output != OutputLogits {
		t.Errorf("--output logits: metadata %+v, %v", m, err)
	}
}

// An identical new-model is a hard-linked copy of the cached export, and says so; other
// arguments export anew.
func TestExportCache(t *testing.T) {
	t.Setenv("EMOTIONS_PYTHON", testutil.Python(t))
	work := t.TempDir()
	cache := filepath.Join(work, "cache")
	export := func(out string, extra ...string) string {
		t.Helper()
		var log strings.Builder
		args := append([]string{"--backbone", "tiny", "--seed", "1", "--cache", cache, "--out", filepath.Join(work, out)}, extra...)
		if err := Export(args, &log); err != nil {
			t.Fatalf("export %s: %v\n%s", out, err, log.String())
		}
		return log.String()
	}
	if first := export("a"); strings.Contains(first, "model cache") {
		t.Fatalf("first export claims a cache hit:\n%s", first)
	}
	second := export("b")
	if !strings.Contains(second, "identical export found in the model cache") || strings.Contains(second, "trace") {
		t.Fatalf("second identical export was not a cache hit:\n%s", second)
	}
	for _, name := range []string{"saved_model.pb", "variables/variables.index", "variables/variables.data-00000-of-00001",
		"serving-graph/graph.pb", "emotions.json", "variables.json", "serving-graph/key_map.json"} {
		a, errA := os.ReadFile(filepath.Join(work, "a", name))
		b, errB := os.ReadFile(filepath.Join(work, "b", name))
		if errA != nil || errB != nil || string(a) != string(b) {
			t.Fatalf("%s differs between the export and its cached copy (%v, %v)", name, errA, errB)
		}
	}
	if !sameInode(t, filepath.Join(work, "a", "saved_model.pb"), filepath.Join(work, "b", "saved_model.pb")) {
		t.Error("saved_model.pb of the cache hit is not a hard link")
	}
	if sameInode(t, filepath.Join(work, "a", MetadataFile), filepath.Join(work, "b", MetadataFile)) {
		t.Error("emotions.json of the cache hit is a hard link: editing one would edit the other")
	}
	if _, err := ReadMetadata(filepath.Join(work, "b")); err != nil {
		t.Fatal(err)
	}
	if other := export("c", "--seed", "2"); strings.Contains(other, "model cache") {
		t.Fatalf("another seed was served from the cache:\n%s", other)
	}
	if bypass := export("d", "--no-cache"); strings.Contains(bypass, "model cache") {
		t.Fatalf("--no-cache was served from the cache:\n%s", bypass)
	}
}

func sameInode(t *testing.T, a, b string) bool {
	t.Helper()
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	return os.SameFile(sa, sb)
}

func deref(s *string) string {
	if s == nil {
		return "<no error>"
	}
	return *s
}

func sameInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
