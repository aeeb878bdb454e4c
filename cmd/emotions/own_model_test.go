package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emotions-dev/emotions/internal/example"
	"github.com/emotions-dev/emotions/internal/testutil"
)

// A team's own compiled Keras model (two inputs, one of them int token ids; two outputs; sparse
// categorical and binary cross-entropy with loss_weights; accuracy and AUC) goes through the
// CLI as the README says: new-model --from, train on .npz archives (NumPy's int64 and float64
// arrays, cast as Keras casts them) with --no-shuffle, 2 epochs then resumed to 3, and its
// history.csv equals Keras' own 3-epoch fit with the same callbacks (emotions train's defaults); evaluate and predict take archives too;
// export + serve answer a REST predict with named inputs under the model's output names.
func TestOwnKerasModelThroughTheCLI(t *testing.T) {
	work := t.TempDir()
	modelPy := filepath.Join(testutil.RepoRoot(t), "cmd", "emotions", "testdata", "own_model", "model.py")
	t.Setenv("EMOTIONS_PYTHON", testutil.Python(t))
	if err := example.Prepare(work, modelPy); err != nil {
		t.Fatal(err)
	}
	model, run := filepath.Join(work, "model"), filepath.Join(work, "run")
	if _, stderr, code := emotions(t, "new-model", "--from", filepath.Join(work, "model.keras"), "--out", model, "--no-cache"); code != 0 {
		t.Fatalf("new-model --from exited %d:\n%s", code, stderr)
	}
	trainNPZ, validNPZ := filepath.Join(work, "train.npz"), filepath.Join(work, "valid.npz")
	// Two epochs, then the run resumed from its last/ to three: the three rows must be Keras'.
	out, stderr, code := emotions(t, "train", "--model", model, "--train", trainNPZ, "--valid", validNPZ, "--no-shuffle",
		"--epochs", "2", "--batch-size", "16", "--out", run)
	if code != 0 {
		t.Fatalf("train exited %d:\n%s\n%s", code, out, stderr)
	}
	if !strings.Contains(out, "val_flag_auc") || !strings.Contains(out, "val_topic_accuracy") {
		t.Errorf("train's epoch lines lack the model's metrics:\n%s", out)
	}
	if out, stderr, code := emotions(t, "train", "--resume", run, "--epochs", "3"); code != 0 || !strings.Contains(out, "Epoch 3/3") {
		t.Fatalf("train --resume exited %d:\n%s\n%s", code, out, stderr)
	}
	for _, f := range []string{"loss.png", "flag_auc.png", "topic_accuracy.png"} { // a curve per log, val_ beside
		if st, err := os.Stat(filepath.Join(run, f)); err != nil || st.Size() < 1000 {
			t.Errorf("train drew no %s: %v", f, err)
		}
	}

	if _, err := example.KerasFit(work, modelPy); err != nil {
		t.Fatal(err)
	}
	got, err := example.ReadCSV(filepath.Join(run, "history.csv"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := example.ReadCSV(filepath.Join(work, "keras", "history.csv"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range example.Compare(got, want, 1e-5, 1e-4) {
		t.Error(d)
	}

	// evaluate: Keras' evaluate logs of the best model on an archive.
	out, stderr, code = emotions(t, "evaluate", "--model", run, "--data", validNPZ, "--json")
	var logs map[string]float64
	if code != 0 || json.Unmarshal([]byte(out), &logs) != nil {
		t.Fatalf("evaluate --data exited %d:\n%s\n%s", code, out, stderr)
	}
	for _, k := range []string{"loss", "topic_loss", "flag_loss", "topic_accuracy", "flag_auc"} {
		if _, ok := logs[k]; !ok {
			t.Errorf("evaluate --data: no %s in %v", k, logs)
		}
	}
	// predict: every output for every row, into an archive.
	preds := filepath.Join(work, "preds.npz")
	if _, stderr, code := emotions(t, "predict", "--model", run, "--data", validNPZ, "--out", preds); code != 0 {
		t.Fatalf("predict --data exited %d:\n%s", code, stderr)
	}
	if st, err := os.Stat(preds); err != nil || st.Size() == 0 {
		t.Fatalf("predict --data wrote no %s: %v", preds, err)
	}
	// A class-folder flag on a model of arrays is refused by name.
	if _, stderr, code := emotions(t, "train", "--model", model, "--train", trainNPZ, "--valid", validNPZ, "--augment", "--out", filepath.Join(work, "run2")); code == 0 || !strings.Contains(stderr, "--augment") {
		t.Errorf("train --augment on arrays exited %d:\n%s", code, stderr)
	}

	// export + serve: a REST predict with named (columnar) inputs, answered under the model's
	// output names, as TF Serving answers a Keras export.
	base := filepath.Join(work, "serving")
	if _, stderr, code := emotions(t, "export", "--model", run, "--out", base); code != 0 {
		t.Fatalf("export exited %d:\n%s", code, stderr)
	}
	root := startServe(t, "--model-base", base, "--model-name", "own", "--port", "0", "--grpc-port", "0")
	body := `{"inputs": {"tokens": [[1,2,3,4,5,6,7,8,9,10,11,12],[0,0,0,0,0,0,0,0,0,0,0,0]], "meta": [[0.5,-1,2],[0,0,0]]}}`
	resp, err := http.Post(root+"/v1/models/own:predict", "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var answer struct {
		Outputs map[string][][]float64 `json:"outputs"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &answer) != nil {
		t.Fatalf("REST predict: %d %s", resp.StatusCode, raw)
	}
	if len(answer.Outputs["topic"]) != 2 || len(answer.Outputs["topic"][0]) != 3 || len(answer.Outputs["flag"]) != 2 {
		t.Fatalf("REST predict answered %s, want topic [2][3] and flag [2][1]", raw)
	}
}
