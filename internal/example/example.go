// Package example is what the programs under examples/ share: their Keras model and data made
// by the example's model.py (through keras_example.py), its export, and, for their tests,
// Keras' own fit of the same model on the same data and a comparison of the two histories.
package example

import (
	_ "embed"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/emotions-dev/emotions/arrays"
	"github.com/emotions-dev/emotions/savedmodel"
	"github.com/emotions-dev/emotions/tfgraph"
	"github.com/emotions-dev/emotions/train"
)

//go:embed keras_example.py
var driver []byte

// SourceDir is the directory of the calling example's source (where its model.py is), also
// under `go run` and `go test`.
func SourceDir() string {
	_, file, _, _ := runtime.Caller(1)
	return filepath.Dir(file)
}

// python finds the interpreter with TensorFlow: savedmodel.FindPython's, else the .venv of the
// checkout the examples are in (`make setup` makes it).
func python() (string, error) {
	if p, err := savedmodel.FindPython(); err == nil {
		return p, nil
	}
	_, file, _, _ := runtime.Caller(0)
	for dir := filepath.Dir(file); dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
		p := filepath.Join(dir, ".venv", "bin", "python")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no Python with TensorFlow: run `make setup` in the checkout, or set EMOTIONS_PYTHON")
}

// runDriver runs keras_example.py WHAT MODEL_PY DIR.
func runDriver(what, modelPy, dir string) error {
	py, err := python()
	if err != nil {
		return err
	}
	script := filepath.Join(dir, ".keras_example.py")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(script, driver, 0o644); err != nil {
		return err
	}
	cmd := exec.Command(py, script, what, modelPy, dir)
	cmd.Env = append(os.Environ(), "TF_CPP_MIN_LOG_LEVEL=2", "KERAS_BACKEND=tensorflow")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v\n%s", filepath.Base(modelPy), what, err, tail(string(out), 2000))
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// Prepare makes DIR/model.keras, DIR/train.npz and DIR/valid.npz with modelPy (seeded: the same
// files every time), unless DIR/model.keras is there already.
func Prepare(dir, modelPy string) error {
	if _, err := os.Stat(filepath.Join(dir, "model.keras")); err == nil {
		return nil
	}
	return runDriver("make", modelPy, dir)
}

// Export exports DIR/model.keras as it was compiled into DIR/model (what `emotions new-model
// --from DIR/model.keras` does), unless DIR/model exists. customModule (may be "") is a Python
// module in moduleDir to import first: where the model's own metrics or losses are registered.
func Export(dir, moduleDir, customModule string, progress io.Writer) (string, error) {
	out := filepath.Join(dir, "model")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if os.Getenv("EMOTIONS_PYTHON") == "" { // savedmodel.Export looks beside the binary, which go run puts elsewhere
		if py, err := python(); err == nil {
			os.Setenv("EMOTIONS_PYTHON", py)
		}
	}
	args := []string{"--from", filepath.Join(dir, "model.keras"), "--generic", "--out", out, "--no-cache"}
	var env []string
	if customModule != "" {
		args = append(args, "--custom-module", customModule)
		// The exporter's environment only: this process's PYTHONPATH would otherwise grow by
		// moduleDir at every call and reach every Python it starts later.
		path := moduleDir
		if old := os.Getenv("PYTHONPATH"); old != "" {
			path += string(os.PathListSeparator) + old
		}
		env = append(env, "PYTHONPATH="+path)
	}
	return out, savedmodel.ExportEnv(args, env, progress)
}

// KerasFit runs Keras' own fit of DIR/model.keras on DIR's archives with modelPy's callbacks:
// DIR/keras/history.csv (CSVLogger) and DIR/keras/fit.json.
func KerasFit(dir, modelPy string) (Fitted, error) {
	if err := runDriver("fit", modelPy, dir); err != nil {
		return Fitted{}, err
	}
	var f Fitted
	b, err := os.ReadFile(filepath.Join(dir, "keras", "fit.json"))
	if err == nil {
		err = json.Unmarshal(b, &f)
	}
	return f, err
}

// Fitted is what Keras' fit did: its History and its callbacks' decisions.
type Fitted struct {
	History   map[string][]float64 `json:"history"`
	EpochsRun int                  `json:"epochs_run"`
	// StoppedEpoch is EarlyStopping's stopped_epoch (0-based; 0 when it did not stop).
	StoppedEpoch *int     `json:"early_stopping_stopped_epoch"`
	Best         *float64 `json:"early_stopping_best"`
}

// History is a CSVLogger file: its columns after "epoch" and one row of values per epoch.
type History struct {
	Columns []string
	Rows    [][]float64
}

// ReadCSV reads a history.csv written by Keras' CSVLogger or train.CSVLogger.
func ReadCSV(path string) (History, error) {
	f, err := os.Open(path)
	if err != nil {
		return History{}, err
	}
	defer f.Close()
	records, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return History{}, fmt.Errorf("%s: %w", path, err)
	}
	if len(records) < 2 || records[0][0] != "epoch" {
		return History{}, fmt.Errorf("%s: want a header starting with epoch and at least one row", path)
	}
	h := History{Columns: records[0][1:]}
	for _, rec := range records[1:] {
		row := make([]float64, len(rec)-1)
		for i, v := range rec[1:] {
			if row[i], err = strconv.ParseFloat(v, 64); err != nil {
				return History{}, fmt.Errorf("%s: %q: %w", path, v, err)
			}
		}
		h.Rows = append(h.Rows, row)
	}
	return h, nil
}

// Compare lists every difference between two histories beyond rel relative tolerance (aucRel
// for AUC columns): other columns, another number of epochs, a value apart.
func Compare(got, want History, rel, aucRel float64) []string {
	var diffs []string
	if strings.Join(got.Columns, ",") != strings.Join(want.Columns, ",") {
		return []string{fmt.Sprintf("columns %v, Keras' %v", got.Columns, want.Columns)}
	}
	if len(got.Rows) != len(want.Rows) {
		diffs = append(diffs, fmt.Sprintf("%d epochs, Keras ran %d", len(got.Rows), len(want.Rows)))
	}
	for e := 0; e < min(len(got.Rows), len(want.Rows)); e++ {
		for i, col := range got.Columns {
			tol := rel
			if strings.Contains(col, "auc") {
				tol = aucRel
			}
			g, w := got.Rows[e][i], want.Rows[e][i]
			if math.Abs(g-w) > tol*math.Max(math.Abs(w), 1e-6) {
				diffs = append(diffs, fmt.Sprintf("epoch %d %s: %.9g, Keras %.9g (rel %.2g)", e+1, col, g, w, math.Abs(g-w)/math.Max(math.Abs(w), 1e-12)))
			}
		}
	}
	return diffs
}

// Main runs an example's run function in dir (a new temporary directory when ""), printing
// Keras' epoch lines, and says where its history is.
func Main(name, dir string, run func(dir string, log io.Writer) (*train.Summary, error)) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "emotions-example-"+name+"-*")
		if err != nil {
			return err
		}
		dir = d
	}
	s, err := run(dir, os.Stdout)
	if err != nil {
		return err
	}
	fmt.Printf("%s; history: %s\n", s.StopReason, filepath.Join(dir, "go", "history.csv"))
	return nil
}

// CSVLogger is Keras' CSVLogger writing DIR/go/history.csv.
func CSVLogger(dir string) (*train.CSVLogger, error) {
	if err := os.MkdirAll(filepath.Join(dir, "go"), 0o755); err != nil {
		return nil, err
	}
	return train.NewCSVLogger(train.CSVLoggerConfig{Filename: filepath.Join(dir, "go", "history.csv")})
}

// CheckAgainstKeras runs Keras' fit on the example's model and data and fails t unless DIR/go's
// history.csv has Keras' columns and epochs (EarlyStopping's decision) and every value within
// 1e-5 relative (1e-4 for AUC, whose thresholds bin float32 scores), the learning rate
// (ReduceLROnPlateau's decisions) included.
func CheckAgainstKeras(t testing.TB, dir, modelPy string) {
	t.Helper()
	fitted, err := KerasFit(dir, modelPy)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadCSV(filepath.Join(dir, "go", "history.csv"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := ReadCSV(filepath.Join(dir, "keras", "history.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if len(want.Rows) != fitted.EpochsRun {
		t.Fatalf("Keras' CSVLogger has %d rows for %d epochs", len(want.Rows), fitted.EpochsRun)
	}
	for _, d := range Compare(got, want, 1e-5, 1e-4) {
		t.Error(d)
	}
	t.Logf("columns %v, %d epochs: equal to Keras' fit", got.Columns, len(got.Rows))
}

// Setup makes and exports the example whose model.py is in srcDir (importing customModule from
// there first, when given), loads the export and reads its archives: what examples/tabular
// spells out step by step.
func Setup(dir, srcDir, customModule string, log io.Writer) (m *tfgraph.Model, trainData, validData train.ArrayData, err error) {
	if err = Prepare(dir, filepath.Join(srcDir, "model.py")); err != nil {
		return
	}
	modelDir, err := Export(dir, srcDir, customModule, log)
	if err != nil {
		return
	}
	if m, err = tfgraph.Load(modelDir, tfgraph.Options{}); err != nil {
		return
	}
	if trainData, err = train.LoadArrayData(filepath.Join(dir, "train.npz"), m.Inputs(), m.Targets(), arrays.Limits{}); err == nil {
		validData, err = train.LoadArrayData(filepath.Join(dir, "valid.npz"), m.Inputs(), m.Targets(), arrays.Limits{})
	}
	if err != nil {
		m.Close()
		m = nil
	}
	return
}
