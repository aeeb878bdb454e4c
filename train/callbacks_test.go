package train

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMonitorRule(t *testing.T) {
	warn := func(string, ...any) {}
	resolved := func(monitor string, mode Mode, minDelta float64, m Model) monitorRule {
		r := newMonitorRule("Test", monitor, mode, minDelta, warn)
		if err := r.resolve("Test", m); err != nil {
			t.Fatalf("resolve %s/%s: %v", monitor, mode, err)
		}
		return r
	}
	noMetrics := newFakeModel(0.1, nil)
	plain := Model(plainModel{})
	cases := []struct {
		name      string
		rule      monitorRule
		value     float64
		reference *float64
		want      bool
	}{
		{"none reference always improves", resolved("val_loss", ModeAuto, 0, noMetrics), math.NaN(), nil, true},
		{"auto val_loss is min", resolved("val_loss", ModeAuto, 0, noMetrics), 0.4, floatPtr(0.5), true},
		{"tie is not improvement", resolved("loss", ModeAuto, 0, noMetrics), 0.5, floatPtr(0.5), false},
		{"float32 tie", resolved("val_accuracy", ModeMax, 0, noMetrics), 0.30000001, floatPtr(0.3), false},
		{"float32 distinct", resolved("loss", ModeMin, 0, noMetrics), 0.29999999, floatPtr(0.3), true},
		{"min_delta exactly equal", resolved("loss", ModeMin, 0.1, noMetrics), 0.9, floatPtr(1.0), false},
		{"min_delta slightly more", resolved("loss", ModeMin, 0.1, noMetrics), 0.8999, floatPtr(1.0), true},
		{"negative min_delta is abs", resolved("loss", ModeMin, -0.1, noMetrics), 0.95, floatPtr(1.0), false},
		{"max with min_delta", resolved("val_accuracy", ModeMax, 0.05, noMetrics), 0.56, floatPtr(0.5), true},
		{"max with min_delta short", resolved("val_accuracy", ModeMax, 0.05, noMetrics), 0.54, floatPtr(0.5), false},
		{"auto accuracy via Keras table", resolved("val_accuracy", ModeAuto, 0, plain), 0.6, floatPtr(0.5), true},
		{"NaN never improves", resolved("loss", ModeMin, 0, noMetrics), math.NaN(), floatPtr(0.5), false},
		{"nothing improves on NaN", resolved("loss", ModeMin, 0, noMetrics), 0.1, floatPtr(math.NaN()), false},
	}
	for _, c := range cases {
		if got := c.rule.isImprovement(c.value, c.reference); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
	// Keras needs the metric compiled: a Model reporting directions without
	// "accuracy" makes auto fail, like model.metrics without it does.
	r := newMonitorRule("Test", "val_accuracy", ModeAuto, 0, warn)
	if err := r.resolve("Test", noMetrics); err == nil {
		t.Error("auto on an uncompiled metric should fail")
	}
	r = newMonitorRule("Test", "val_foo", ModeAuto, 0, warn)
	if err := r.resolve("Test", plain); err == nil {
		t.Error("auto on an unknown metric should fail")
	}
	var warned bool
	r = newMonitorRule("Test", "loss", "bogus", 0, func(string, ...any) { warned = true })
	if !warned || r.mode != ModeAuto {
		t.Errorf("unknown mode: warned=%v mode=%s, want a warning and auto", warned, r.mode)
	}
}

// plainModel does not report metric directions, so the Keras table applies.
type plainModel struct{}

func (plainModel) LearningRate() (float64, error) { return 0, nil }
func (plainModel) SetLearningRate(float64) error  { return nil }
func (plainModel) SaveWeights(string) error       { return nil }
func (plainModel) RestoreWeights(string) error    { return nil }

func TestStateRoundTripThroughCallbacksList(t *testing.T) {
	dir := t.TempDir()
	build := func() Callbacks {
		es := DefaultEarlyStoppingConfig()
		es.Patience, es.RestoreBestWeights, es.ScratchDir, es.Out = 2, true, filepath.Join(dir, "scratch"), &strings.Builder{}
		rl := DefaultReduceLROnPlateauConfig()
		rl.Patience, rl.Factor, rl.Cooldown = 1, 0.5, 1
		mc := DefaultModelCheckpointConfig(filepath.Join(dir, "best"))
		mc.SaveBestOnly = true
		rlCallback, err1 := NewReduceLROnPlateau(rl)
		esCallback, err2 := NewEarlyStopping(es)
		mcCallback, err3 := NewModelCheckpoint(mc)
		csvCallback, err4 := NewCSVLogger(CSVLoggerConfig{Filename: filepath.Join(dir, "log.csv")})
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			t.Fatalf("build callbacks: %v", err)
		}
		return Callbacks{rlCallback, esCallback, mcCallback, csvCallback}
	}
	losses := []float64{1.0, 0.8, 0.8, 0.7, 0.75, 0.74, 0.73, 0.72, 0.71}
	type decision struct {
		lr   float32
		stop bool
	}
	run := func(resumeAt int) ([]decision, int, string) {
		os.RemoveAll(dir)
		os.MkdirAll(dir, 0o755)
		m := newFakeModel(0.1, nil)
		cbs := build()
		if err := cbs.OnTrainBegin(m); err != nil {
			t.Fatal(err)
		}
		var got []decision
		for epoch, loss := range losses {
			if epoch == resumeAt {
				states, err := cbs.MarshalState()
				if err != nil {
					t.Fatal(err)
				}
				raw, err := json.Marshal(states)
				if err != nil {
					t.Fatal(err)
				}
				// The crash happens mid-epoch after the CSV row was written.
				f, _ := os.OpenFile(filepath.Join(dir, "log.csv"), os.O_APPEND|os.O_WRONLY, 0)
				f.WriteString("garbage row\r\n")
				f.Close()
				var restored map[string]json.RawMessage
				if err := json.Unmarshal(raw, &restored); err != nil {
					t.Fatal(err)
				}
				cbs = build()
				if err := cbs.UnmarshalState(restored); err != nil {
					t.Fatal(err)
				}
				if err := cbs.OnTrainBegin(m); err != nil {
					t.Fatal(err)
				}
			}
			m.weights = epoch
			if _, err := cbs.OnEpochEnd(epoch, EpochLogs{"loss": loss + 1, "val_loss": loss}, m); err != nil {
				t.Fatal(err)
			}
			stop := cbs.StopTraining() != nil
			got = append(got, decision{m.lr, stop})
			if stop {
				break
			}
		}
		if err := cbs.OnTrainEnd(m); err != nil {
			t.Fatal(err)
		}
		csv, _ := os.ReadFile(filepath.Join(dir, "log.csv"))
		return got, m.weights, string(csv)
	}
	want, wantWeights, wantCSV := run(-1)
	for resumeAt := 1; resumeAt < len(want); resumeAt++ {
		got, weights, csv := run(resumeAt)
		if len(got) != len(want) || weights != wantWeights || csv != wantCSV {
			t.Fatalf("resume at %d: %v weights %d csv\n%s\nwant %v weights %d csv\n%s", resumeAt, got, weights, csv, want, wantWeights, wantCSV)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("resume at %d, epoch %d: %+v, want %+v", resumeAt, i, got[i], want[i])
			}
		}
	}
	if !strings.HasPrefix(wantCSV, "epoch,learning_rate,loss,val_loss\r\n0,0.10000000149011612,2.0,1.0\r\n") {
		t.Errorf("csv should carry the learning_rate ReduceLROnPlateau added:\n%s", wantCSV)
	}
}

func TestCallbacksWrapErrors(t *testing.T) {
	cfg := DefaultEarlyStoppingConfig()
	cfg.Monitor = "val_foo"
	es, err := NewEarlyStopping(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Callbacks{es}.OnEpochEnd(0, EpochLogs{"val_foo": 1}, plainModel{})
	if err == nil || !strings.HasPrefix(err.Error(), "callback EarlyStopping: on_epoch_end: ") {
		t.Fatalf("got %v", err)
	}
	if err := (Callbacks{es}).UnmarshalState(map[string]json.RawMessage{}); err == nil {
		t.Error("missing state should be an error")
	}
	failing := failingModel{}
	rcfg := DefaultReduceLROnPlateauConfig()
	rl, err := NewReduceLROnPlateau(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Callbacks{rl}.OnEpochEnd(0, EpochLogs{"val_loss": 1}, failing)
	if !errors.Is(err, errNoLR) {
		t.Errorf("want wrapped errNoLR, got %v", err)
	}
	if _, err := NewEarlyStopping(EarlyStoppingConfig{RestoreBestWeights: true}); err == nil {
		t.Error("restore without scratch dir should be rejected")
	}
}

var errNoLR = errors.New("no learning rate")

type failingModel struct{ plainModel }

func (failingModel) LearningRate() (float64, error) { return 0, errNoLR }

func TestCSVLoggerAppendAndColumns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.csv")
	first := runCSV(t, CSVLoggerConfig{Filename: path}, []map[string]any{{"loss": 0.5, "accuracy": 0.25}})
	want := "epoch,accuracy,loss,val_accuracy,val_loss\r\n0,0.25,0.5,NA,NA\r\n"
	if first != want {
		t.Fatalf("got %q want %q", first, want)
	}
	appended := runCSV(t, CSVLoggerConfig{Filename: path, Append: true}, []map[string]any{{"loss": 0.125, "accuracy": 0.5}})
	want += "0,0.5,0.125,NA,NA\r\n"
	if appended != want {
		t.Fatalf("append: got %q want %q", appended, want)
	}
	if _, err := NewCSVLogger(CSVLoggerConfig{Filename: path, Separator: ",,"}); err == nil {
		t.Error("multi-character separator should be rejected")
	}
}

func TestStateFloatJSON(t *testing.T) {
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), 0.1, -2} {
		raw, err := json.Marshal(stateFloat{floatPtr(v)})
		if err != nil {
			t.Fatal(err)
		}
		var back stateFloat
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatal(err)
		}
		if back.v == nil || !(*back.v == v || math.IsNaN(v) && math.IsNaN(*back.v)) {
			t.Errorf("%v round-tripped to %v", v, back.v)
		}
	}
	var none stateFloat
	raw, _ := json.Marshal(none)
	if string(raw) != "null" {
		t.Errorf("nil marshals to %s", raw)
	}
}

// A run directory whose name has braces is a name: the recipe's checkpoint writes to it
// literally, while a user's own filepath template is still formatted (Keras' filepath).
func TestRunDirWithBracesIsNotATemplate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "runs", "{x}", "a}b{")
	ck, err := NewModelCheckpoint(ModelCheckpointConfig{Filepath: EscapeFilepath(Layout(dir).Best()), Monitor: "val_loss", Out: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	m := newFakeModel(1e-3, nil)
	for epoch := range 2 {
		if err := ck.OnEpochEnd(epoch, EpochLogs{"val_loss": 1}, m); err != nil {
			t.Fatalf("epoch %d: %v", epoch, err)
		}
	}
	if ck.LastSaved != Layout(dir).Best() {
		t.Fatalf("saved to %q, want %q", ck.LastSaved, Layout(dir).Best())
	}
	own, err := NewModelCheckpoint(ModelCheckpointConfig{Filepath: filepath.Join(EscapeFilepath(dir), "ep{epoch:02d}"), Monitor: "val_loss", Out: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := own.OnEpochEnd(2, EpochLogs{"val_loss": 1}, m); err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "ep03"); own.LastSaved != want {
		t.Fatalf("a user's template saved to %q, want %q", own.LastSaved, want)
	}
}

// Two callbacks of one kind coexist once one has a name of its own (their resume states are
// kept by name), and a zero-value config monitors Keras' default, val_loss (a zero factor is
// Keras' factor=0, which the parity tests hold, not a default).
func TestNamedCallbacksAndZeroConfigs(t *testing.T) {
	dir := t.TempDir()
	a, err := NewModelCheckpoint(ModelCheckpointConfig{Filepath: dir + "/a"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewModelCheckpoint(ModelCheckpointConfig{Filepath: dir + "/b", Monitor: "val_auc", Mode: ModeMax})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (Callbacks{a, b}).MarshalState(); err == nil {
		t.Fatal("two unnamed ModelCheckpoints accepted: their states would collide")
	}
	named, err := NewModelCheckpoint(ModelCheckpointConfig{Name: "best_auc", Filepath: dir + "/b", Monitor: "val_auc", Mode: ModeMax})
	if err != nil {
		t.Fatal(err)
	}
	states, err := (Callbacks{a, named}).MarshalState()
	if err != nil || len(states) != 2 || states["best_auc"] == nil {
		t.Fatalf("states %v, %v", states, err)
	}
	if a.cfg.Monitor != "val_loss" {
		t.Errorf("zero-value ModelCheckpoint monitors %q", a.cfg.Monitor)
	}
	r, err := NewReduceLROnPlateau(ReduceLROnPlateauConfig{})
	if err != nil || r.cfg.Monitor != "val_loss" || r.Name() != "ReduceLROnPlateau" {
		t.Fatalf("zero-value ReduceLROnPlateau: %+v, %v", r, err)
	}
}
