package savedmodel

import (
	"encoding/json"
	"math"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/emotions-dev/emotions/internal/testutil"
)

type genericSpec struct {
	Name  string `json:"name"`
	Dtype string `json:"dtype"`
	Shape []int  `json:"shape"`
}

type genericRun struct {
	Keras     map[string][]float64 `json:"keras"`
	Ours      map[string][]float64 `json:"ours"`
	ServeKeys []string             `json:"serve_keys"`
	ServeDiff float64              `json:"serve_diff"`
	SigInputs []string             `json:"signature_inputs"`
	Meta      struct {
		Format  int           `json:"format"`
		Kind    string        `json:"kind"`
		Inputs  []genericSpec `json:"inputs"`
		Outputs []genericSpec `json:"outputs"`
		Targets []genericSpec `json:"targets"`
		Losses  []struct {
			Output string  `json:"output"`
			Loss   string  `json:"loss"`
			Weight float64 `json:"weight"`
		} `json:"losses"`
		Logs []struct {
			Name string `json:"name"`
		} `json:"logs"`
		Monitor map[string]string `json:"monitor"`
	} `json:"meta"`
}

// Six compiled Keras models (tabular regression with sample weights; int32 token ids with a
// sparse and a binary cross-entropy, accuracy and AUC; two inputs and two outputs with
// loss_weights; a Sequential one with Huber and RMSE; a registered subclassed one built by a
// call, loaded with --custom-module; one input of each of string (a StringLookup table), bool,
// float64, int64 and float16) exported with --generic: two epochs of the SavedModel's reset_metrics,
// train_step and evaluate signatures give every value Keras fit's History gives on an identical
// copy, and serving_default answers with the model's own output names; a model with two
// problems is refused with both named in one message, and a metric that does not fit its
// target (AUC on a sparse 3-class target, which Keras fit fails on) is refused by name, beside
// a learning-rate schedule.
func TestGenericExportMatchesKerasFit(t *testing.T) {
	work := t.TempDir()
	root := testutil.RepoRoot(t)
	out := testutil.RunPython(t, filepath.Join(root, "savedmodel", "testdata", "check_generic.py"),
		filepath.Join(root, "savedmodel", "export.py"), work)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var r struct {
		Tabular, Text, TwoByTwo, Sequential, Subclassed, Dtypes genericRun
		Refusal, SparseAUC                                      refusal
	}
	raw := map[string]json.RawMessage{}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &raw); err != nil {
		t.Fatalf("check_generic.py said %q: %v", out, err)
	}
	runs := map[string]*genericRun{"tabular": &r.Tabular, "text": &r.Text, "two_by_two": &r.TwoByTwo,
		"sequential": &r.Sequential, "subclassed": &r.Subclassed, "dtypes": &r.Dtypes}
	for name, dst := range map[string]any{"tabular": &r.Tabular, "text": &r.Text, "two_by_two": &r.TwoByTwo,
		"sequential": &r.Sequential, "subclassed": &r.Subclassed, "dtypes": &r.Dtypes,
		"refusal": &r.Refusal, "sparse_auc": &r.SparseAUC} {
		if err := json.Unmarshal(raw[name], dst); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}

	for name, p := range runs {
		run := *p
		compareHistories(t, name, run)
		if run.Meta.Format != 3 || run.Meta.Kind != "generic" {
			t.Errorf("%s: emotions.json format %d kind %q, want 3 generic", name, run.Meta.Format, run.Meta.Kind)
		}
		var outNames []string
		for _, o := range run.Meta.Outputs {
			outNames = append(outNames, o.Name)
		}
		sort.Strings(outNames)
		if strings.Join(run.ServeKeys, ",") != strings.Join(outNames, ",") {
			t.Errorf("%s: serving_default returns %v, want the model's outputs %v", name, run.ServeKeys, outNames)
		}
		if run.ServeDiff > 1e-5 {
			t.Errorf("%s: serving_default differs from Keras predict by %g", name, run.ServeDiff)
		}
		if run.Meta.Monitor["loss"] != "min" {
			t.Errorf("%s: monitor mode of loss %q, want min", name, run.Meta.Monitor["loss"])
		}
		var logs []string
		for _, l := range run.Meta.Logs {
			logs = append(logs, l.Name)
		}
		sort.Strings(logs)
		var kerasLogs []string
		for k := range run.Keras {
			if !strings.HasPrefix(k, "val_") {
				kerasLogs = append(kerasLogs, k)
			}
		}
		sort.Strings(kerasLogs)
		if strings.Join(logs, ",") != strings.Join(kerasLogs, ",") {
			t.Errorf("%s: emotions.json logs %v, Keras logs %v", name, logs, kerasLogs)
		}
	}

	if got := r.Tabular.Meta.Monitor["mae"]; got != "min" {
		t.Errorf("tabular: monitor mode of mae %q, want min", got)
	}
	text := r.Text.Meta
	if len(text.Inputs) != 1 || text.Inputs[0].Name != "tokens" || text.Inputs[0].Dtype != "int32" || !sameInts(text.Inputs[0].Shape, []int{-1, 20}) {
		t.Errorf("text: inputs %+v, want tokens int32 [-1 20]", text.Inputs)
	}
	if len(text.Targets) != 2 || text.Targets[0].Dtype != "int32" || !sameInts(text.Targets[0].Shape, []int{-1}) {
		t.Errorf("text: targets %+v, want topic int32 [-1] (sparse) first", text.Targets)
	}
	if strings.Join(r.Text.SigInputs, ",") != "positive,sample_weights,tokens,topic" {
		t.Errorf("text: train_step takes %v", r.Text.SigInputs)
	}
	sub := r.Subclassed.Meta
	if len(sub.Inputs) != 1 || sub.Inputs[0].Name != "inputs" || !sameInts(sub.Inputs[0].Shape, []int{-1, 8}) ||
		len(sub.Outputs) != 1 || sub.Outputs[0].Name != "output_0" {
		t.Errorf("subclassed: inputs %+v outputs %+v, want inputs [-1 8] -> output_0", sub.Inputs, sub.Outputs)
	}
	if r.Sequential.Meta.Losses[0].Loss != "huber" || r.Sequential.Meta.Monitor["rmse"] != "min" {
		t.Errorf("sequential: losses %+v monitor %v, want huber and rmse min", r.Sequential.Meta.Losses, r.Sequential.Meta.Monitor)
	}
	var dtypes []string
	for _, in := range r.Dtypes.Meta.Inputs {
		dtypes = append(dtypes, in.Name+":"+in.Dtype)
	}
	if got := strings.Join(dtypes, ","); got != "word:string,flag:bool,wide:float64,ids:int64,half:float16" {
		t.Errorf("dtypes: inputs %s", got)
	}
	if m := r.Dtypes.Meta.Monitor; m["accuracy"] != "max" || m["precision"] != "max" {
		t.Errorf("dtypes: monitor %v, want accuracy and precision max", m)
	}
	two := r.TwoByTwo.Meta
	if len(two.Losses) != 2 || two.Losses[0].Output != "label" || two.Losses[0].Loss != "categorical_crossentropy" ||
		two.Losses[0].Weight != 1 || two.Losses[1].Output != "score" || two.Losses[1].Weight != 0.5 {
		t.Errorf("two_by_two: losses %+v, want label categorical_crossentropy 1, score 0.5", two.Losses)
	}

	r.Refusal.check(t, "a model overriding train_step with an untraceable loss",
		"2 problems", "OwnStep overrides train_step", "output y: loss numpy_loss cannot be exported")
	r.SparseAUC.check(t, "AUC on a sparse 3-class target with a learning-rate schedule", "2 problems",
		"uses a learning-rate schedule", "output klass: metric auc cannot be exported")
}

type refusal struct {
	Message *string
	Wrote   bool
}

func (r refusal) check(t *testing.T, what string, wants ...string) {
	t.Helper()
	if r.Message == nil || r.Wrote {
		t.Errorf("%s was exported", what)
		return
	}
	for _, want := range wants {
		if !strings.Contains(*r.Message, want) {
			t.Errorf("refusal of %s %q does not say %q", what, *r.Message, want)
		}
	}
}

// compareHistories checks every History value of Keras fit against the export's, within 1e-5
// relative (1e-4 for AUC, whose thresholds sum many small counts).
func compareHistories(t *testing.T, name string, run genericRun) {
	t.Helper()
	if len(run.Keras) == 0 {
		t.Errorf("%s: Keras gave no history", name)
	}
	for key, want := range run.Keras {
		got, ok := run.Ours[key]
		if !ok || len(got) != len(want) {
			t.Errorf("%s: %s: export gave %v, Keras %v", name, key, got, want)
			continue
		}
		tol := 1e-5
		if strings.Contains(key, "auc") {
			tol = 1e-4
		}
		for i := range want {
			if math.Abs(got[i]-want[i]) > tol*math.Max(math.Abs(want[i]), 1e-3) {
				t.Errorf("%s: %s epoch %d: export %v, Keras %v", name, key, i+1, got[i], want[i])
			}
		}
	}
	for key := range run.Ours {
		if _, ok := run.Keras[key]; !ok {
			t.Errorf("%s: the export logs %s, Keras does not", name, key)
		}
	}
}
