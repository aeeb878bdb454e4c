package tfserving

import (
	"encoding/json"
	"io/fs"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/emotions-dev/emotions/internal/testutil"
	"github.com/emotions-dev/emotions/savedmodel"
	"github.com/emotions-dev/emotions/tfgraph"
)

var (
	trainedOnce sync.Once
	trainedDir  string
	trainedErr  error
)

// trainedModel is the tiny model after a few train steps saved with tfgraph's Save: an export
// that forgot to copy the trained weights in would give other probabilities.
func trainedModel(t *testing.T) string {
	t.Helper()
	trainedOnce.Do(func() {
		m, err := tfgraph.Load(testutil.TinyModel(t), tfgraph.Options{Device: "cpu"})
		if err != nil {
			trainedErr = err
			return
		}
		defer m.Close()
		if trainedErr = trainSteps(m, 5); trainedErr != nil {
			return
		}
		dir, err := testutil.SharedDir("emotions-tfserving-trained-")
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

// trainSteps runs steps train steps on a fixed batch of 8 random images.
func trainSteps(m *tfgraph.Model, steps int) error {
	x, n := randomImages(m.Meta.PixelsPerImage(), 8, 7)
	labels := make([]float32, n*len(m.Meta.Classes))
	for i := 0; i < n; i++ {
		labels[i*len(m.Meta.Classes)+i%len(m.Meta.Classes)] = 1
	}
	for step := 0; step < steps; step++ {
		if _, err := m.TrainStep(x, labels, nil, n); err != nil {
			return err
		}
	}
	return nil
}

func randomImages(values, n int, seed int64) ([]float32, int) {
	r := rand.New(rand.NewSource(seed))
	x := make([]float32, n*values)
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

	x, n := randomImages(80*80*3, 3, 1)
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

// savedModels lists the directories under root holding a SavedModel, and fails the test on
// any checkpoint file outside such a directory's variables/ (weights nothing would say are stale).
func savedModels(t *testing.T, root string) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch name := d.Name(); {
		case name == "saved_model.pb" || name == "saved_model.pbtxt":
			dirs = append(dirs, filepath.Dir(p))
		case strings.HasSuffix(name, ".index") || strings.Contains(name, ".data-"):
			owner := filepath.Dir(filepath.Dir(p))
			if filepath.Base(filepath.Dir(p)) != "variables" || !fileExists(filepath.Join(owner, "saved_model.pb")) {
				t.Errorf("checkpoint file %s belongs to no SavedModel of its own", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(dirs)
	return dirs
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// serveEach runs each SavedModel directory's serving_default with Python's tf.saved_model.load.
func serveEach(t *testing.T, meta savedmodel.Metadata, x []float32, dirs ...string) map[string][]float32 {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "x.f32")
	if err := os.WriteFile(raw, float32Bytes(x), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{filepath.Join("testdata", "serve_each.py"), raw, strconv.Itoa(meta.InputHeight),
		strconv.Itoa(meta.InputWidth), strconv.Itoa(meta.Channels)}, dirs...)
	out := testutil.RunPython(t, args...)
	got := map[string][]float32{}
	if err := json.Unmarshal([]byte(lastLine(out)), &got); err != nil {
		t.Fatalf("serve_each.py said %q: %v", out, err)
	}
	return got
}

func predictWith(t *testing.T, m *tfgraph.Model, x []float32, n int) []float32 {
	t.Helper()
	p, err := m.Predict(x, n)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// No directory holds weights other than its own: every SavedModel under a trained run directory
// (best/ and last/, saved at different steps) serves, when TensorFlow itself loads it, the
// weights it was saved with, and an export from best/ carries best's trained weights.
func TestRunDirectoriesHoldOnlyTheirOwnWeights(t *testing.T) {
	m, err := tfgraph.Load(testutil.TinyModel(t), tfgraph.Options{Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	x, n := randomImages(m.Meta.PixelsPerImage(), 3, 11)
	untrained := predictWith(t, m, x, n)
	run := t.TempDir()
	best, last := filepath.Join(run, "best"), filepath.Join(run, "last")
	if err := trainSteps(m, 3); err != nil {
		t.Fatal(err)
	}
	if err := m.Save(best); err != nil {
		t.Fatal(err)
	}
	atBest := predictWith(t, m, x, n)
	if err := trainSteps(m, 3); err != nil {
		t.Fatal(err)
	}
	if err := m.Save(last); err != nil {
		t.Fatal(err)
	}
	atLast := predictWith(t, m, x, n)
	if closeEnough(untrained, atBest, 1e-6) || closeEnough(atBest, atLast, 1e-6) {
		t.Fatal("training changed nothing: the test could not tell the weights apart")
	}
	exported, err := Export(best, filepath.Join(t.TempDir(), "base"), 0)
	if err != nil {
		t.Fatal(err)
	}

	dirs := savedModels(t, run)
	if strings.Join(dirs, " ") != best+" "+last {
		t.Fatalf("SavedModels under the run directory: %v; want only best/ and last/", dirs)
	}
	want := map[string][]float32{best: atBest, last: atLast, exported: atBest}
	for dir, got := range serveEach(t, m.Meta, x, best, last, exported) {
		if !closeEnough(got, want[dir], 1e-5) {
			t.Errorf("%s serves %v, want the weights it was saved with: %v", dir, got, want[dir])
		}
	}
}

// Model directories made before the weightless serving template keep working: export reads
// their serving/ SavedModel (graph and object graph only), and a run trained from one saves
// the weightless template instead of a stale serving/ copy, leaving the model's own files as
// they were.
func TestOldLayoutModels(t *testing.T) {
	old := filepath.Join(t.TempDir(), "old")
	testutil.RunPython(t, filepath.Join("testdata", "make_old_layout.py"), testutil.TinyModel(t), old)
	oldMeta, err := os.ReadFile(filepath.Join(old, savedmodel.MetadataFile))
	if err != nil {
		t.Fatal(err)
	}
	m, err := tfgraph.Load(old, tfgraph.Options{Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Meta.Serving == nil || !m.Meta.Serving.HasWeights() {
		t.Fatalf("the old layout reads as %+v", m.Meta.Serving)
	}
	x, n := randomImages(m.Meta.PixelsPerImage(), 3, 5)
	untrained := predictWith(t, m, x, n)
	base := filepath.Join(t.TempDir(), "base")
	fromOld, err := Export(old, base, 0)
	if err != nil {
		t.Fatalf("export of an old-layout model: %v", err)
	}

	if err := trainSteps(m, 3); err != nil {
		t.Fatal(err)
	}
	run := t.TempDir()
	best := filepath.Join(run, "best")
	if err := m.Save(best); err != nil {
		t.Fatal(err)
	}
	trained := predictWith(t, m, x, n)
	if dirs := savedModels(t, run); len(dirs) != 1 || dirs[0] != best {
		t.Fatalf("SavedModels under the run directory: %v; want only best/", dirs)
	}
	saved, err := savedmodel.ReadMetadata(best)
	if err != nil {
		t.Fatal(err)
	}
	if saved.Serving == nil || *saved.Serving != savedmodel.ServingTemplate || !fileExists(filepath.Join(best, saved.Serving.ObjectGraph)) {
		t.Fatalf("best/ of an old-layout model has serving template %+v", saved.Serving)
	}
	if after, _ := os.ReadFile(filepath.Join(old, savedmodel.MetadataFile)); string(after) != string(oldMeta) {
		t.Fatal("saving a run changed the old model's emotions.json")
	}
	fromRun, err := Export(best, base, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := serveEach(t, m.Meta, x, fromOld, fromRun)
	if !closeEnough(got[fromOld], untrained, 1e-5) {
		t.Errorf("export of the old model serves %v, its weights give %v", got[fromOld], untrained)
	}
	if !closeEnough(got[fromRun], trained, 1e-5) || closeEnough(trained, untrained, 1e-6) {
		t.Errorf("export of the run trained from it serves %v, the trained weights give %v (untrained %v)", got[fromRun], trained, untrained)
	}
}

// The serving graph written by the exporter's forked copy (--serving-writer fork, what a model
// larger than the tiny one gets on a machine with two or more cores) maps every model variable
// once, and an export of the model serves its weights; when the copy fails, the exporter says
// so and writes the serving graph itself, as well. (The checkpoint keys' order is not the same
// from one export to the next, so the two key maps are compared by what they map.)
func TestForkedServingGraph(t *testing.T) {
	t.Setenv("EMOTIONS_PYTHON", testutil.Python(t))
	work := t.TempDir()
	export := func(name string) (string, string) {
		t.Helper()
		out := filepath.Join(work, name)
		var log strings.Builder
		args := []string{"--backbone", "tiny", "--seed", "1", "--serving-writer", "fork", "--no-cache", "--out", out}
		if err := savedmodel.Export(args, &log); err != nil {
			t.Fatalf("export %s: %v\n%s", name, err, log.String())
		}
		return out, log.String()
	}
	forked, log := export("forked")
	if !strings.Contains(log, "wait for the serving graph") || strings.Contains(log, "write the serving graph") {
		t.Fatalf("--serving-writer fork: the exporter wrote the serving graph itself:\n%s", log)
	}
	t.Setenv("EMOTIONS_TEST_SERVING_WRITER_FAILS", "1")
	inline, log := export("fallback")
	if !strings.Contains(log, "the serving graph's writer failed (exit status 3: failing as EMOTIONS_TEST_SERVING_WRITER_FAILS asks): writing it here") ||
		!strings.Contains(log, "write the serving graph") {
		t.Fatalf("a failed copy: want its reason and the serving graph written by the exporter:\n%s", log)
	}
	if entries, _ := filepath.Glob(filepath.Join(work, ".export-*")); len(entries) > 0 {
		t.Fatalf("left behind: %v", entries)
	}
	mapped := map[string]string{}
	for _, dir := range []string{forked, inline} {
		mapped[dir] = mappedPaths(t, dir)
		x, n := randomImages(80*80*3, 3, 1)
		served, err := Export(dir, filepath.Join(t.TempDir(), "base"), 0)
		if err != nil {
			t.Fatal(err)
		}
		if want, got := directPredict(t, dir, x, n), directPredict(t, served, x, n); !closeEnough(got, want, 1e-5) {
			t.Fatalf("%s: its serving export predicts %v, the model %v", filepath.Base(dir), got, want)
		}
	}
	if mapped[forked] != mapped[inline] {
		t.Fatalf("the forked copy's key map maps %s\nthe exporter's %s", mapped[forked], mapped[inline])
	}
}

// mappedPaths is the Keras paths of the training variables a model's serving key map points
// at, sorted, after checking that they are model variables (not optimizer state), each once,
// and every trainable one among them (serve needs no Dropout seed state).
func mappedPaths(t *testing.T, dir string) string {
	t.Helper()
	var keyMap struct {
		Map map[string]string `json:"map"`
	}
	var listing struct {
		Variables []struct {
			Key, Path, Role string
			Trainable       bool
		} `json:"variables"`
	}
	for name, v := range map[string]any{"serving-graph/key_map.json": &keyMap, "variables.json": &listing} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err == nil {
			err = json.Unmarshal(b, v)
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	model, trainable := map[string]string{}, map[string]bool{}
	for _, v := range listing.Variables {
		if v.Role == "model" {
			model[v.Key] = v.Path
			trainable[v.Path] = v.Trainable
		}
	}
	var got []string
	seen := map[string]bool{}
	for serving, key := range keyMap.Map {
		path, ok := model[key]
		if !ok || seen[path] {
			t.Fatalf("%s: serving key %s maps to %s: not a model variable, or mapped twice", dir, serving, key)
		}
		seen[path] = true
		got = append(got, path)
	}
	for path, tr := range trainable {
		if tr && !seen[path] {
			t.Fatalf("%s: the serving key map has no key for the trainable %s", dir, path)
		}
	}
	sort.Strings(got)
	return strings.Join(got, " ")
}
