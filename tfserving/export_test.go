package tfserving

import (
	"encoding/json"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/emotions-dev/emotions/internal/testutil"
	"github.com/emotions-dev/emotions/tfgraph"
)

var (
	trainedOnce sync.Once
	trainedDir  string
	trainedErr  error
)

// trainedModel is the tiny model after a few train steps saved with tfgraph's Save: its
// serving/ archive still holds the untrained weights, so an export that forgot to copy the
// trained ones in would give other probabilities.
func trainedModel(t *testing.T) string {
	t.Helper()
	trainedOnce.Do(func() {
		m, err := tfgraph.Load(testutil.TinyModel(t), tfgraph.Options{Device: "cpu"})
		if err != nil {
			trainedErr = err
			return
		}
		defer m.Close()
		x, n := randomImages(m.Meta.InputSize, 8, 7)
		labels := make([]float32, n*len(m.Meta.Classes))
		for i := 0; i < n; i++ {
			labels[i*len(m.Meta.Classes)+i%len(m.Meta.Classes)] = 1
		}
		for step := 0; step < 5; step++ {
			if _, err := m.TrainStep(x, labels, nil, n); err != nil {
				trainedErr = err
				return
			}
		}
		dir, err := os.MkdirTemp("", "emotions-tfserving-trained-")
		if err != nil {
			trainedErr = err
			return
		}
		trainedDir = filepath.Join(dir, "model")
		trainedErr = m.Save(trainedDir)
	})
	if trainedErr != nil {
		t.Fatalf("trained tiny model: %v", trainedErr)
	}
	return trainedDir
}

func randomImages(size, n int, seed int64) ([]float32, int) {
	r := rand.New(rand.NewSource(seed))
	x := make([]float32, n*size*size*3)
	for i := range x {
		x[i] = r.Float32()
	}
	return x, n
}

func directPredict(t *testing.T, dir string, x []float32, n int) []float32 {
	t.Helper()
	m, err := tfgraph.Load(dir, tfgraph.Options{Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	p, err := m.Predict(x, n)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func closeEnough(a, b []float32, tol float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > tol {
			return false
		}
	}
	return true
}

func TestExportServingOnly(t *testing.T) {
	src := trainedModel(t)
	base := filepath.Join(t.TempDir(), "base")
	dir, err := Export(src, base, 0)
	if err != nil {
		t.Fatal(err)
	}
	if dir != filepath.Join(base, "1") {
		t.Fatalf("first export went to %s, want base/1", dir)
	}
	labels, err := os.ReadFile(filepath.Join(dir, "assets.extra", LabelsFile))
	if err != nil || string(labels) != "angry\nhappy\nnormal\nsad\n" {
		t.Fatalf("labels.txt = %q, %v", labels, err)
	}

	x, n := randomImages(80, 3, 1)
	want := directPredict(t, src, x, n)
	if untrained := directPredict(t, testutil.TinyModel(t), x, n); closeEnough(untrained, want, 1e-6) {
		t.Fatal("training changed nothing: the test could not tell trained weights from initial ones")
	}
	if got := directPredict(t, dir, x, n); !closeEnough(got, want, 1e-5) {
		t.Fatalf("export predicts %v, the trained model %v", got, want)
	}

	// What TF itself says about the export: saved_model_cli and tf.saved_model.load.
	raw := filepath.Join(t.TempDir(), "x.f32")
	if err := os.WriteFile(raw, float32Bytes(x), 0o644); err != nil {
		t.Fatal(err)
	}
	out := testutil.RunPython(t, filepath.Join("testdata", "check_export.py"), src, dir, raw)
	var report struct {
		CLIProbabilities  []float32 `json:"cli_probabilities"`
		LoadProbabilities []float32 `json:"load_probabilities"`
		Signatures        []string  `json:"signatures"`
		ExportNumbers     int64     `json:"export_numbers"`
		TrainingNumbers   int64     `json:"training_numbers"`
		Show              string    `json:"show"`
	}
	if err := json.Unmarshal([]byte(lastLine(out)), &report); err != nil {
		t.Fatalf("check_export.py said %q: %v", out, err)
	}
	if !closeEnough(report.CLIProbabilities, want, 1e-5) {
		t.Errorf("saved_model_cli run gives %v, tfgraph Predict of the model %v", report.CLIProbabilities, want)
	}
	if !closeEnough(report.LoadProbabilities, want, 1e-5) {
		t.Errorf("tf.saved_model.load gives %v, tfgraph Predict of the model %v", report.LoadProbabilities, want)
	}
	if strings.Contains(report.Show, "train_step") || !strings.Contains(report.Show, "serving_default") {
		t.Errorf("saved_model_cli show --all: want serving_default and no train_step:\n%s", report.Show)
	}
	if float64(report.ExportNumbers) > 0.4*float64(report.TrainingNumbers) {
		t.Errorf("export checkpoint holds %d numbers, training %d: optimizer slots kept?", report.ExportNumbers, report.TrainingNumbers)
	}
	t.Logf("checkpoint numbers: export %d, training %d; signatures %v", report.ExportNumbers, report.TrainingNumbers, report.Signatures)

	// Versions: next free number, explicit numbers, never overwrite.
	if dir2, err := Export(src, base, 0); err != nil || dir2 != filepath.Join(base, "2") {
		t.Fatalf("second export: %s, %v; want base/2", dir2, err)
	}
	if _, err := Export(src, base, 1); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("export over version 1: %v, want an 'already exists' error", err)
	}
	if dir7, err := Export(src, base, 7); err != nil || dir7 != filepath.Join(base, "7") {
		t.Fatalf("export --version 7: %s, %v", dir7, err)
	}
	if vs, err := Versions(base); err != nil || len(vs) != 3 || vs[2] != 7 {
		t.Fatalf("Versions = %v, %v; want [1 2 7]", vs, err)
	}
	if _, err := Export(t.TempDir(), base, 0); err == nil {
		t.Fatal("export of a directory without a model succeeded")
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
