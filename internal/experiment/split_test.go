package experiment

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emotions-dev/emotions/preprocess"
)

// writeFiles creates dir/<class>/<name> for each "class/name".
func writeFiles(t *testing.T, dir string, files ...string) {
	t.Helper()
	for _, f := range files {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// listFiles returns "class/name" of every file under dir.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	if err := walkClassFolders(dir, func(class, name string) error {
		out = append(out, class+"/"+name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSplitMovesPeople: a pool split into train and valid by person, with a train folder
// added whole and test linked unchanged; nobody ends up on both sides.
func TestSplitMovesPeople(t *testing.T) {
	tmp := t.TempDir()
	train, pool, test := filepath.Join(tmp, "train"), filepath.Join(tmp, "pool"), filepath.Join(tmp, "test")
	writeFiles(t, train, "sad/Kept_One_0001.jpg", "sad/Kept_One_0002.jpg", "happy/Kept_Two_0001.jpg")
	var poolFiles []string
	for i := range 40 {
		name := "Person_" + string(rune('A'+i%26)) + strings.Repeat("x", i/26)
		poolFiles = append(poolFiles, "sad/"+name+"_0001.jpg", "happy/"+name+"_0002.jpg")
	}
	writeFiles(t, pool, poolFiles...)
	writeFiles(t, test, "sad/Tested_0001.jpg", "angry/Tested_0002.jpg")

	out := filepath.Join(tmp, "out")
	if err := split(splitSpec{From: pool, Train: train, Test: test, ValidPercent: 50}, out); err != nil {
		t.Fatal(err)
	}
	side := map[string]string{}
	for _, part := range []string{"train", "valid"} {
		for _, f := range listFiles(t, filepath.Join(out, part)) {
			p := preprocess.PersonOf(f)
			if other, ok := side[p]; ok && other != part {
				t.Errorf("%s is in both train and valid", p)
			}
			side[p] = part
		}
	}
	nTrain, nValid := len(listFiles(t, filepath.Join(out, "train"))), len(listFiles(t, filepath.Join(out, "valid")))
	if nTrain+nValid != 3+80 || nValid < 20 || nValid > 60 {
		t.Errorf("train %d + valid %d files, want 83 with about half of the pool's people in valid", nTrain, nValid)
	}
	for _, f := range []string{"sad/Kept_One_0001.jpg", "sad/Kept_One_0002.jpg", "happy/Kept_Two_0001.jpg"} {
		if _, err := os.Stat(filepath.Join(out, "train", f)); err != nil {
			t.Errorf("train folder's %s not kept in train: %v", f, err)
		}
	}
	if diff, err := sameFiles(test, filepath.Join(out, "test")); err != nil || diff != "" {
		t.Errorf("test not linked unchanged: %q %v", diff, err)
	}
	writeFiles(t, filepath.Join(out, "test"), "sad/Extra_0001.jpg")
	if diff, _ := sameFiles(test, filepath.Join(out, "test")); !strings.Contains(diff, "sad/Extra_0001.jpg") {
		t.Errorf("sameFiles missed an extra file: %q", diff)
	}

	// Again from scratch: the split depends only on the names.
	again := filepath.Join(tmp, "again")
	if err := split(splitSpec{From: pool, Train: train, Test: test, ValidPercent: 50}, again); err != nil {
		t.Fatal(err)
	}
	if diff, err := sameFiles(filepath.Join(out, "valid"), filepath.Join(again, "valid")); err != nil || diff != "" {
		t.Errorf("two splits of the same files differ: %q %v", diff, err)
	}

	// A pool person who is also in the train folder and hashes to valid is refused by name.
	var inValid string
	for p, part := range side {
		if part == "valid" {
			inValid = p
			break
		}
	}
	writeFiles(t, train, "angry/"+inValid+"_0009.jpg")
	err := split(splitSpec{From: pool, Train: train, ValidPercent: 50}, filepath.Join(tmp, "bad"))
	if err == nil || !strings.Contains(err.Error(), inValid) || !strings.Contains(err.Error(), "both sides") {
		t.Errorf("an identity in train and valid: %v", err)
	}
}

func TestEvaluateDataChecked(t *testing.T) {
	steps := func(test bool) []Step {
		sp := map[string]any{"from": "${data}/valid", "valid-percent": 50}
		if test {
			sp["test"] = "${data}/test"
		}
		return []Step{{Name: "resplit", Command: "split", Flags: sp},
			{Name: "t", Command: "train", Flags: map[string]any{"data": "${resplit}"}}}
	}
	for _, c := range []struct {
		ref  string
		test bool
		ok   bool
	}{{"${resplit}", true, true}, {"${resplit}", false, false}, {"${t}", true, false}, {"${resplit}/x", true, false}} {
		d := &Def{Data: "d", EvaluateData: c.ref, Steps: steps(c.test)}
		if err := d.check(); (err == nil) != c.ok {
			t.Errorf("evaluate_data %s (split has test: %v): %v", c.ref, c.test, err)
		}
	}
	var s Step
	if err := json.Unmarshal([]byte(`{"split": {"from": "x", "valid-percent": 5, "tset": "y"}}`), &s); err == nil || !strings.Contains(err.Error(), "tset") {
		t.Errorf("a split with a misspelt key: %v", err)
	}
	var s2 Step
	if err := json.Unmarshal([]byte(`{"split": {"valid-percent": 5}}`), &s2); err == nil || !strings.Contains(err.Error(), "from") {
		t.Errorf("a split without from: %v", err)
	}
}

// TestRunResplit: a definition that moves half of valid's people into training evaluates its
// train/valid figures on the re-split and its test on faces4's unchanged test split.
func TestRunResplit(t *testing.T) {
	root, tmp, bin := buildRunner(t)
	proj := filepath.Join(tmp, "proj")
	os.MkdirAll(filepath.Join(proj, "experiments", "defs"), 0o755)
	def := map[string]any{
		"description": "resplit test", "kind": "smoke", "evaluate_on": "test",
		"data": filepath.Join(root, "data", "faces4"), "evaluate_data": "${resplit}",
		"steps": []map[string]any{
			{"name": "resplit", "split": map[string]any{"from": "${data}/valid", "valid-percent": 50, "train": "${data}/train", "test": "${data}/test"}},
			{"name": "model", "new-model": map[string]any{"backbone": "tiny", "seed": 0, "no-xla": true}},
			{"name": "train", "train": map[string]any{"data": "${resplit}", "model": "${model}", "epochs": 1,
				"batch-size": 64, "seed": 0, "person-weights": true}},
		},
	}
	b, _ := json.Marshal(def)
	os.WriteFile(filepath.Join(proj, "experiments", "defs", "resplit.json"), b, 0o644)
	var log strings.Builder
	out, err := Run(context.Background(), "resplit", Options{Root: proj, Binary: bin, Results: filepath.Join(tmp, "RESULTS.md"),
		PlotsDir: filepath.Join(tmp, "results"), RunsDir: filepath.Join(tmp, "runs"), Log: &log})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, tail(log.String(), 3000))
	}
	if out.Train.N+out.Valid.N != 603+145 || out.Train.N <= 603 || out.Test.N != 240 {
		t.Errorf("evaluated %d/%d/%d, want train > 603, train+valid = 748 and faces4's 240 test faces", out.Train.N, out.Valid.N, out.Test.N)
	}
	if !strings.Contains(out.Data, "re-split by ${resplit}") {
		t.Errorf("data column %q does not say it was re-split", out.Data)
	}
	t.Logf("faces4 re-split: %d/%d/%d", out.Train.N, out.Valid.N, out.Test.N)
}
