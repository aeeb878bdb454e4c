package train

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fakeModel stores the learning rate in float32 like a Keras optimizer
// variable, and its "weights" are the number of the epoch that produced
// them, so the test sees which epoch's weights got restored.
type fakeModel struct {
	lr       float32
	weights  int
	saved    map[string]int
	saves    []string
	restores []string
	metrics  map[string]Mode
}

func newFakeModel(lr float64, compiled []string) *fakeModel {
	m := &fakeModel{lr: float32(lr), saved: map[string]int{}, metrics: map[string]Mode{}}
	for _, name := range compiled {
		if d, ok := KerasMetricDirections[name]; ok {
			m.metrics[name] = d
		}
	}
	return m
}

func (m *fakeModel) LearningRate() (float64, error)   { return float64(m.lr), nil }
func (m *fakeModel) SetLearningRate(lr float64) error { m.lr = float32(lr); return nil }
func (m *fakeModel) SaveWeights(dir string) error {
	m.saved[dir] = m.weights
	m.saves = append(m.saves, dir)
	return nil
}
func (m *fakeModel) RestoreWeights(dir string) error {
	w, ok := m.saved[dir]
	if !ok {
		return fmt.Errorf("nothing saved in %s", dir)
	}
	m.weights = w
	m.restores = append(m.restores, dir)
	return nil
}
func (m *fakeModel) MetricDirection(name string) (Mode, bool) {
	d, ok := m.metrics[name]
	return d, ok
}

type parityFile struct {
	KerasVersion string           `json:"keras_version"`
	Scenarios    []parityScenario `json:"scenarios"`
	FormatCases  []struct {
		Template string         `json:"template"`
		Epoch    int            `json:"epoch"`
		Logs     map[string]any `json:"logs"`
		Out      *string        `json:"out"`
		Error    *string        `json:"error"`
	} `json:"format_cases"`
	ReprCases []struct {
		Value any    `json:"value"`
		Repr  string `json:"repr"`
	} `json:"repr_cases"`
	CSVCases []struct {
		Name     string           `json:"name"`
		Params   map[string]any   `json:"params"`
		Existing *string          `json:"existing"`
		Logs     []map[string]any `json:"logs"`
		Content  string           `json:"content"`
	} `json:"csv_cases"`
}

type parityScenario struct {
	Name      string           `json:"name"`
	Callback  string           `json:"callback"`
	Params    map[string]any   `json:"params"`
	Metrics   []string         `json:"metrics"`
	InitialLR float64          `json:"initial_lr"`
	Logs      []map[string]any `json:"logs"`
	Result    struct {
		Error            *string       `json:"error"`
		ErrorAt          any           `json:"error_at"`
		Epochs           []parityEpoch `json:"epochs"`
		FinalWeightEpoch *int          `json:"final_weight_epoch"`
	} `json:"result"`
}

type parityEpoch struct {
	LR               float64  `json:"lr"`
	LogsLearningRate *float64 `json:"logs_learning_rate"`
	Saved            []string `json:"saved"`
	StopTraining     bool     `json:"stop_training"`
	Best             any      `json:"best"`
	Wait             *int     `json:"wait"`
	CooldownCounter  *int     `json:"cooldown_counter"`
	StoppedEpoch     *int     `json:"stopped_epoch"`
	BestEpoch        *int     `json:"best_epoch"`
}

// kerasPython finds the project venv's python; EMOTIONS_PYTHON overrides.
func kerasPython(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("EMOTIONS_PYTHON"); p != "" {
		return p
	}
	p, err := filepath.Abs(filepath.Join("..", ".venv", "bin", "python"))
	if err != nil {
		t.Fatalf("locate venv python: %v", err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("Keras parity needs the project venv at %s (%v): run `make setup` (or set EMOTIONS_PYTHON)", p, err)
	}
	return p
}

func loadKerasParity(t *testing.T) parityFile {
	t.Helper()
	out := filepath.Join(t.TempDir(), "keras_callbacks.json")
	cmd := exec.Command(kerasPython(t), filepath.Join("testdata", "keras_callbacks.py"), out)
	cmd.Env = append(os.Environ(), "TF_CPP_MIN_LOG_LEVEL=2", "KERAS_BACKEND=tensorflow")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("run Keras parity script (run `make setup` if the venv is broken): %v\n%s", err, msg)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("read parity output: %v", err)
	}
	var pf parityFile
	if err := json.Unmarshal(raw, &pf); err != nil {
		t.Fatalf("decode parity output: %v", err)
	}
	if pf.KerasVersion != "3.15.1" {
		t.Fatalf("parity script ran Keras %s, the port follows 3.15.1", pf.KerasVersion)
	}
	return pf
}

func mustFloat(t *testing.T, raw any) float64 {
	t.Helper()
	v, ok, err := floatFromJSON(raw)
	if err != nil || !ok {
		t.Fatalf("expected a float, got %v (%v)", raw, err)
	}
	return v
}

func decodeLogs(t *testing.T, raw map[string]any) EpochLogs {
	t.Helper()
	logs := EpochLogs{}
	for k, v := range raw {
		logs[k] = mustFloat(t, v)
	}
	return logs
}

// newParityCallback builds the Go callback from the Keras kwargs.
func newParityCallback(t *testing.T, sc parityScenario, dir string) (StatefulCallback, error) {
	t.Helper()
	p := map[string]any{}
	for k, v := range sc.Params {
		p[k] = v
	}
	take := func(key string) (any, bool) {
		v, ok := p[key]
		delete(p, key)
		return v, ok
	}
	str := func(key string, into *string) {
		if v, ok := take(key); ok {
			*into = v.(string)
		}
	}
	num := func(key string, into *float64) {
		if v, ok := take(key); ok {
			*into = mustFloat(t, v)
		}
	}
	integer := func(key string, into *int) {
		if v, ok := take(key); ok {
			*into = int(mustFloat(t, v))
		}
	}
	boolean := func(key string, into *bool) {
		if v, ok := take(key); ok {
			*into = v.(bool)
		}
	}
	optional := func(key string, into **float64) {
		if v, ok := take(key); ok && v != nil {
			*into = floatPtr(mustFloat(t, v))
		}
	}
	mode := func(into *Mode) {
		if v, ok := take("mode"); ok {
			*into = Mode(v.(string))
		}
	}
	quiet := &strings.Builder{}
	var cb StatefulCallback
	var err error
	switch sc.Callback {
	case "EarlyStopping":
		cfg := DefaultEarlyStoppingConfig()
		str("monitor", &cfg.Monitor)
		num("min_delta", &cfg.MinDelta)
		integer("patience", &cfg.Patience)
		mode(&cfg.Mode)
		optional("baseline", &cfg.Baseline)
		boolean("restore_best_weights", &cfg.RestoreBestWeights)
		integer("start_from_epoch", &cfg.StartFromEpoch)
		cfg.ScratchDir, cfg.Out = filepath.Join(dir, "scratch"), quiet
		cb, err = NewEarlyStopping(cfg)
	case "ReduceLROnPlateau":
		cfg := DefaultReduceLROnPlateauConfig()
		str("monitor", &cfg.Monitor)
		num("factor", &cfg.Factor)
		integer("patience", &cfg.Patience)
		mode(&cfg.Mode)
		num("min_delta", &cfg.MinDelta)
		integer("cooldown", &cfg.Cooldown)
		num("min_lr", &cfg.MinLR)
		cfg.Out = quiet
		cb, err = NewReduceLROnPlateau(cfg)
	case "ModelCheckpoint":
		cfg := DefaultModelCheckpointConfig("")
		str("filepath", &cfg.Filepath)
		cfg.Filepath = filepath.Join(dir, cfg.Filepath)
		str("monitor", &cfg.Monitor)
		boolean("save_best_only", &cfg.SaveBestOnly)
		mode(&cfg.Mode)
		optional("initial_value_threshold", &cfg.InitialValueThreshold)
		cfg.Out = quiet
		cb, err = NewModelCheckpoint(cfg)
	default:
		t.Fatalf("unknown callback %s", sc.Callback)
	}
	if len(p) > 0 {
		t.Fatalf("parameters not mapped to Go: %v", p)
	}
	return cb, err
}

// parityRun drives the callback the way Keras' fit does and records what the
// Keras script records. With resumeAt >= 0 the callback is replaced at that
// epoch by a fresh one restored from MarshalState.
type parityRun struct {
	epochs      []parityEpoch
	err         error
	errAt       any
	finalWeight int
	saves       []string
}

func runParity(t *testing.T, sc parityScenario, resumeAt int) parityRun {
	t.Helper()
	dir := t.TempDir()
	cb, err := newParityCallback(t, sc, dir)
	if err != nil {
		return parityRun{err: err, errAt: "init"}
	}
	m := newFakeModel(sc.InitialLR, sc.Metrics)
	var run parityRun
	if err := (Callbacks{cb}).OnTrainBegin(m); err != nil {
		t.Fatalf("OnTrainBegin: %v", err)
	}
	for epoch, raw := range sc.Logs {
		if epoch == resumeAt {
			state, err := cb.MarshalState()
			if err != nil {
				t.Fatalf("MarshalState: %v", err)
			}
			cb, err = newParityCallback(t, sc, dir)
			if err != nil {
				t.Fatalf("rebuild: %v", err)
			}
			if err := cb.UnmarshalState(state); err != nil {
				t.Fatalf("UnmarshalState: %v", err)
			}
			if err := (Callbacks{cb}).OnTrainBegin(m); err != nil {
				t.Fatalf("OnTrainBegin after resume: %v", err)
			}
		}
		m.weights = epoch
		logs := decodeLogs(t, raw)
		nSaves := len(m.saves)
		if _, err := (Callbacks{cb}).OnEpochEnd(epoch, logs, m); err != nil {
			run.err, run.errAt = err, float64(epoch)
			return run
		}
		stop := (Callbacks{cb}).StopTraining() != nil
		rec := parityEpoch{LR: float64(m.lr), StopTraining: stop, Saved: []string{}}
		if lr, ok := logs["learning_rate"]; ok {
			rec.LogsLearningRate = &lr
		}
		var best float64
		var hasBest bool
		switch c := cb.(type) {
		case *EarlyStopping:
			best, hasBest = c.Best()
			rec.Wait, rec.StoppedEpoch, rec.BestEpoch = intPtr(c.Wait()), intPtr(c.StoppedEpoch()), intPtr(c.BestEpoch())
		case *ReduceLROnPlateau:
			best, hasBest = c.Best()
			rec.Wait, rec.CooldownCounter = intPtr(c.Wait()), intPtr(c.CooldownCounter())
		case *ModelCheckpoint:
			best, hasBest = c.Best()
			for _, s := range m.saves[nSaves:] {
				rel, _ := filepath.Rel(dir, s)
				rec.Saved = append(rec.Saved, rel)
			}
		}
		if hasBest {
			rec.Best = jsonishFloat(best)
		}
		run.epochs = append(run.epochs, rec)
		if stop {
			break
		}
	}
	if err := (Callbacks{cb}).OnTrainEnd(m); err != nil {
		t.Fatalf("OnTrainEnd: %v", err)
	}
	run.finalWeight = m.weights
	return run
}

func intPtr(v int) *int { return &v }

// jsonishFloat gives the form the Keras script writes for a float.
func jsonishFloat(v float64) any {
	switch {
	case math.IsNaN(v):
		return "nan"
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	}
	return v
}

func compareParity(t *testing.T, sc parityScenario, got parityRun) {
	t.Helper()
	want := sc.Result
	if want.Error != nil || got.err != nil {
		if want.Error == nil || got.err == nil || !reflect.DeepEqual(want.ErrorAt, got.errAt) {
			t.Fatalf("error mismatch: keras %v at %v, go %v at %v", deref(want.Error), want.ErrorAt, got.err, got.errAt)
		}
		return
	}
	if len(got.epochs) != len(want.Epochs) {
		t.Fatalf("ran %d epochs, keras ran %d", len(got.epochs), len(want.Epochs))
	}
	for i, w := range want.Epochs {
		g := got.epochs[i]
		// Learning rates are float32 variables in Keras: compare as float32.
		if float32(g.LR) != float32(w.LR) {
			t.Errorf("epoch %d: lr %v, keras %v", i, float32(g.LR), float32(w.LR))
		}
		if (g.LogsLearningRate == nil) != (w.LogsLearningRate == nil) ||
			(g.LogsLearningRate != nil && *g.LogsLearningRate != *w.LogsLearningRate) {
			t.Errorf("epoch %d: logs[learning_rate] %v, keras %v", i, derefF(g.LogsLearningRate), derefF(w.LogsLearningRate))
		}
		if w.Saved == nil {
			w.Saved = []string{}
		}
		checks := []struct {
			name      string
			got, want any
		}{
			{"saved", g.Saved, w.Saved},
			{"stop_training", g.StopTraining, w.StopTraining},
			{"best", g.Best, w.Best},
			{"wait", g.Wait, w.Wait},
			{"cooldown_counter", g.CooldownCounter, w.CooldownCounter},
			{"stopped_epoch", g.StoppedEpoch, w.StoppedEpoch},
			{"best_epoch", g.BestEpoch, w.BestEpoch},
		}
		for _, c := range checks {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("epoch %d: %s = %v, keras %v", i, c.name, show(c.got), show(c.want))
			}
		}
	}
	if want.FinalWeightEpoch == nil || *want.FinalWeightEpoch != got.finalWeight {
		t.Errorf("weights at train end are from epoch %d, keras %v", got.finalWeight, show(want.FinalWeightEpoch))
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func derefF(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}

func show(v any) any {
	if p, ok := v.(*int); ok && p != nil {
		return *p
	}
	return v
}

func TestKerasParity(t *testing.T) {
	pf := loadKerasParity(t)
	if len(pf.Scenarios) < 30 {
		t.Fatalf("only %d scenarios", len(pf.Scenarios))
	}
	for _, sc := range pf.Scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			compareParity(t, sc, runParity(t, sc, -1))
		})
		// A run resumed from MarshalState at every epoch boundary must make
		// the same decisions as the uninterrupted Keras run.
		for resumeAt := 1; resumeAt < len(sc.Logs); resumeAt++ {
			t.Run(fmt.Sprintf("%s/resume_at_%d", sc.Name, resumeAt), func(t *testing.T) {
				compareParity(t, sc, runParity(t, sc, resumeAt))
			})
		}
	}
	t.Run("format", func(t *testing.T) {
		for _, fc := range pf.FormatCases {
			logs := decodeLogs(t, fc.Logs)
			got, err := formatCheckpointPath(fc.Template, fc.Epoch, logs)
			switch {
			case fc.Error != nil && err == nil:
				t.Errorf("%q: got %q, python raised %s", fc.Template, got, *fc.Error)
			case fc.Error == nil && err != nil:
				t.Errorf("%q: error %v, python gave %q", fc.Template, err, *fc.Out)
			case fc.Error == nil && got != *fc.Out:
				t.Errorf("%q: got %q, python %q", fc.Template, got, *fc.Out)
			}
		}
	})
	t.Run("repr", func(t *testing.T) {
		for _, rc := range pf.ReprCases {
			v := mustFloat(t, rc.Value)
			if got := pyFloatRepr(v); got != rc.Repr {
				t.Errorf("pyFloatRepr(%v) = %q, python %q", v, got, rc.Repr)
			}
		}
	})
	t.Run("csv", func(t *testing.T) {
		for _, cc := range pf.CSVCases {
			path := filepath.Join(t.TempDir(), cc.Name+".csv")
			if cc.Existing != nil {
				if err := os.WriteFile(path, []byte(*cc.Existing), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cfg := CSVLoggerConfig{Filename: path}
			if v, ok := cc.Params["separator"]; ok {
				cfg.Separator = v.(string)
			}
			if v, ok := cc.Params["append"]; ok {
				cfg.Append = v.(bool)
			}
			got := runCSV(t, cfg, cc.Logs)
			if got != cc.Content {
				t.Errorf("%s:\n got %q\nwant %q", cc.Name, got, cc.Content)
			}
		}
	})
}

func runCSV(t *testing.T, cfg CSVLoggerConfig, rawLogs []map[string]any) string {
	t.Helper()
	c, err := NewCSVLogger(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.OnTrainBegin(nil); err != nil {
		t.Fatal(err)
	}
	for epoch, raw := range rawLogs {
		if err := c.OnEpochEnd(epoch, decodeLogs(t, raw), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.OnTrainEnd(nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(cfg.Filename)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
