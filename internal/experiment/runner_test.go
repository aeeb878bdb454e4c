package experiment

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emotions-dev/emotions/internal/testutil"
)

// TestRunTinySmoke runs experiments/defs/tiny-smoke.json end to end with a freshly built
// binary and a temporary results file: it checks the runner (steps, evaluations, row, plots),
// not an accuracy.
func TestRunTinySmoke(t *testing.T) {
	root, tmp, bin := buildRunner(t)
	results := filepath.Join(tmp, "RESULTS.md")
	var log strings.Builder
	out, err := Run(context.Background(), "tiny-smoke", Options{Root: root, Binary: bin, Results: results,
		PlotsDir: filepath.Join(tmp, "results"), RunsDir: filepath.Join(tmp, "runs"), Log: &log})
	if err != nil {
		t.Fatalf("run tiny-smoke: %v\n%s", err, tail(log.String(), 4000))
	}
	if out.Train.N != 603 || out.Valid.N != 145 || out.Test.N != 240 {
		t.Errorf("evaluated %d/%d/%d images, want faces4's 603/145/240", out.Train.N, out.Valid.N, out.Test.N)
	}
	for _, s := range []Split{out.Train, out.Valid, out.Test} {
		if s.Accuracy < 0 || s.Accuracy > 1 || !(s.Loss > 0) || s.AccuracyCI95[0] > s.Accuracy || s.AccuracyCI95[1] < s.Accuracy {
			t.Errorf("implausible split figures %+v", s)
		}
	}
	if len(out.Trains) != 1 || out.Trains[0].EpochsRun != 2 {
		t.Errorf("train summaries %+v, want one run of 2 epochs", out.Trains)
	}
	doc, err := os.ReadFile(results)
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for line := range strings.Lines(string(doc)) {
		if strings.HasPrefix(line, "| [tiny-smoke]") {
			rows = append(rows, line)
		}
	}
	if len(rows) != 1 || !strings.Contains(string(doc), "<!-- results:smoke -->") {
		t.Fatalf("want one tiny-smoke row under the smoke marker, got:\n%s", doc)
	}
	if cells := strings.Split(rows[0], " | "); len(cells) != 13 || !strings.Contains(rows[0], "data/faces4 (603/145/240)") {
		t.Errorf("row has %d cells, want 13: %s", len(cells), rows[0])
	}
	for _, p := range []string{"loss.png", "accuracy.png", "confusion.png"} {
		if st, err := os.Stat(filepath.Join(tmp, "results", "tiny-smoke", p)); err != nil || st.Size() == 0 {
			t.Errorf("plot %s not copied: %v", p, err)
		}
	}
}

// buildRunner builds the emotions binary the runner runs for each step into a temporary
// directory; the steps' python is the project's.
func buildRunner(t *testing.T) (root, tmp, bin string) {
	root = testutil.RepoRoot(t)
	t.Setenv("EMOTIONS_PYTHON", testutil.Python(t))
	tmp = t.TempDir()
	bin = filepath.Join(tmp, "emotions")
	// The cgo flags come from the environment (make exports them; by hand: source .tflib/env.sh).
	build := exec.Command("go", "build", "-o", bin, "./cmd/emotions")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/emotions: %v\n%s", err, out)
	}
	return root, tmp, bin
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// TestInsertRow checks the table edits: a new kind's table lands in kind order above
// Benchmarks, and rows append to the end of their own table.
func TestInsertRow(t *testing.T) {
	doc := resultsHeader
	doc = insertRow(doc, "bench:bench-train", "### bench-train", benchHeader, "| b1 |\n", nil)
	doc = insertRow(doc, "results:levers", "## Levers", rowHeader, "| l1 |\n", sectionsAfter("levers"))
	doc = insertRow(doc, "results:seed", "## Seed", rowHeader, "| s1 |\n", sectionsAfter("seed"))
	doc = insertRow(doc, "results:seed", "## Seed", rowHeader, "| s2 |\n", sectionsAfter("seed"))
	doc = insertRow(doc, "bench:bench-train", "### bench-train", benchHeader, "| b2 |\n", nil)
	order := []string{"## Seed", "| s1 |", "| s2 |", "## Levers", "| l1 |", "## Benchmarks", "### bench-train", "| b1 |", "| b2 |"}
	at := 0
	for _, want := range order {
		i := strings.Index(doc[at:], want)
		if i < 0 {
			t.Fatalf("%q missing or out of order in:\n%s", want, doc)
		}
		at += i + len(want)
	}
	if strings.Count(doc, "<!-- results:seed -->") != 1 || strings.Count(doc, rowHeader) != 2 {
		t.Errorf("tables duplicated:\n%s", doc)
	}
}

func TestStepArgs(t *testing.T) {
	d := &Def{Data: "d", Steps: []Step{{Name: "m", Command: "new-model", Flags: map[string]any{"seed": 1}}}}
	if err := d.check(); err == nil {
		t.Error("a definition without a train step was accepted")
	}
	s := Step{Name: "t", Command: "train", Flags: map[string]any{"model": "${m}/best", "augment": true, "remainder": false, "epochs": 3}}
	args, err := s.args(map[string]string{"m": "/r/m"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(args, " "), "train --augment --epochs 3 --model /r/m/best"; got != want {
		t.Errorf("args %q, want %q", got, want)
	}
	if _, err := s.args(map[string]string{}); err == nil {
		t.Error("an unknown ${m} was accepted")
	}
}

// TestDefsLoad checks every definition in experiments/defs parses and names its references.
func TestDefsLoad(t *testing.T) {
	defs, err := List(testutil.RepoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range defs {
		vars := map[string]string{"data": "/d", "run": "/r"}
		for k := range d.Paths {
			vars[k] = "/p"
		}
		for _, s := range d.Steps {
			vars[s.Name] = "/r/" + s.Name
		}
		for _, s := range d.Steps {
			if _, err := s.args(vars); err != nil {
				t.Errorf("%s: %v", d.Name, err)
			}
		}
	}
	if len(defs) < 11 {
		t.Errorf("found %d definitions, want at least 11", len(defs))
	}
}

// TestPythonStep checks the python step: its JSON (with a per-step env), the command line
// (script, positional args, sorted flags, references expanded) and a real run of a script.
func TestPythonStep(t *testing.T) {
	var s Step
	js := `{"name": "labels", "env": {"TF_ENABLE_ONEDNN_OPTS": "0"},
	        "python": {"script": "s.py", "args": "label ${run}/x", "npz": "${crops}", "threshold": 0.6}}`
	if err := json.Unmarshal([]byte(js), &s); err != nil {
		t.Fatal(err)
	}
	if s.Command != "python" || s.Env["TF_ENABLE_ONEDNN_OPTS"] != "0" {
		t.Fatalf("parsed %+v", s)
	}
	args, err := s.args(map[string]string{"run": "/r", "crops": "/r/c.npz"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(args, " "), "python s.py label /r/x --npz /r/c.npz --threshold 0.6"; got != want {
		t.Errorf("args %q, want %q", got, want)
	}
	if got := s.summary(); !strings.Contains(got, "script=s.py") || !strings.Contains(got, "env TF_ENABLE_ONEDNN_OPTS=0") {
		t.Errorf("summary %q lacks the script or the env", got)
	}
	var bad Step
	if err := json.Unmarshal([]byte(`{"python": {"args": "x"}}`), &bad); err == nil {
		t.Error("a python step without a script was accepted")
	}

	// A real run: the script writes its argv and an env variable to --out.
	root := t.TempDir()
	script := filepath.Join(root, "w.py")
	code := "import os, sys\nout = sys.argv[sys.argv.index('--out') + 1]\n" +
		"open(out, 'w').write(' '.join(sys.argv[1:]) + ' ' + os.environ['EMOTIONS_TEST_ENV'])\n"
	if err := os.WriteFile(script, []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("EMOTIONS_PYTHON", testutil.Python(t))
	out := filepath.Join(root, "out.txt")
	run := Step{Name: "w", Command: "python", Flags: map[string]any{"script": "w.py", "args": "sub", "out": out},
		Env: map[string]string{"EMOTIONS_TEST_ENV": "yes"}}
	args, err = run.args(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	if err := runPython(context.Background(), Options{Root: root, Log: &log}, run, args[1:], filepath.Join(root, "w.log")); err != nil {
		t.Fatalf("python step: %v\n%s", err, log.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "sub --out "+out+" yes"; got != want {
		t.Errorf("script saw %q, want %q", got, want)
	}
}

// The runner's own output (rows, plots) does not make the next row's commit "+dirty".
func TestGitCommitIgnoresRunnerOutput(t *testing.T) {
	root := t.TempDir()
	git := func(args ...string) {
		cmd := exec.Command("git", append([]string{"-C", root, "-c", "user.name=t", "-c", "user.email=t@t"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	write := func(rel, body string) {
		os.MkdirAll(filepath.Dir(filepath.Join(root, rel)), 0o755)
		if err := os.WriteFile(filepath.Join(root, rel), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git("init", "-q")
	write("experiments/RESULTS.md", "# results\n")
	write("main.go", "package main\n")
	git("add", ".")
	git("commit", "-qm", "first")
	write("experiments/RESULTS.md", "# results\n| row |\n")
	write("experiments/results/seed/loss.png", "png")
	if c := gitCommit(root); strings.HasSuffix(c, "+dirty") || c == "unknown" {
		t.Errorf("after the runner's own writes: %s, want the clean commit", c)
	}
	write("main.go", "package main // changed\n")
	if c := gitCommit(root); !strings.HasSuffix(c, "+dirty") {
		t.Errorf("after a source change: %s, want +dirty", c)
	}
}

// cancelOn cancels when the log shows a line, as Ctrl-C would at that point.
type cancelOn struct {
	strings.Builder
	line   string
	cancel context.CancelFunc
}

func (w *cancelOn) Write(p []byte) (int, error) {
	n, err := w.Builder.Write(p)
	if w.line != "" && strings.Contains(w.Builder.String(), w.line) {
		w.cancel()
		w.line = ""
	}
	return n, err
}

// A run stopped by a failing step, then by Ctrl-C in the middle of training, continues with
// `experiment resume`: finished steps are not run again, the train step continues from its
// last/ state, a definition that changed a finished step is refused, and a finished run is
// not resumed.
func TestResume(t *testing.T) {
	root, tmp, bin := buildRunner(t)
	// A root of its own, whose definition the test edits; the data stays the repository's.
	proj := filepath.Join(tmp, "proj")
	os.MkdirAll(filepath.Join(proj, "experiments", "defs"), 0o755)
	writeDef := func(seed int, valid string) {
		def := map[string]any{
			"description": "resume test", "kind": "smoke", "evaluate_on": "test",
			"data": filepath.Join(root, "data", "faces4"),
			"steps": []map[string]any{
				{"name": "model", "new-model": map[string]any{"backbone": "tiny", "seed": seed, "no-xla": true}},
				{"name": "train", "train": map[string]any{"train": "${data}/train", "valid": valid,
					"model": "${model}", "epochs": 3, "batch-size": 64, "seed": 0, "no-early-stopping": true}},
			},
		}
		b, _ := json.Marshal(def)
		if err := os.WriteFile(filepath.Join(proj, "experiments", "defs", "resume.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	opts := func(log io.Writer) Options {
		return Options{Root: proj, Binary: bin, Results: filepath.Join(tmp, "RESULTS.md"),
			PlotsDir: filepath.Join(tmp, "results"), RunsDir: filepath.Join(tmp, "runs"), Log: log}
	}

	writeDef(0, "${data}/no-such-split")
	var log strings.Builder
	if _, err := Run(context.Background(), "resume", opts(&log)); err == nil || !strings.Contains(err.Error(), "step train") {
		t.Fatalf("a run whose train step cannot start: %v", err)
	}
	runs, _ := filepath.Glob(filepath.Join(tmp, "runs", "resume-*"))
	if len(runs) != 1 {
		t.Fatalf("run directories %v", runs)
	}
	run := runs[0]
	modelPB := filepath.Join(run, "model", "saved_model.pb")
	before, err := os.Stat(modelPB)
	if err != nil {
		t.Fatal(err)
	}

	// Fixed, resumed, and interrupted during the second epoch.
	writeDef(0, "${data}/valid")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &cancelOn{line: "Epoch 2/3", cancel: cancel}
	if _, err := Resume(ctx, run, opts(w)); err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("interrupted resume: %v\n%s", err, tail(w.String(), 3000))
	}
	if !strings.Contains(w.String(), "step model: finished earlier, skipped") {
		t.Errorf("the finished model step was not skipped:\n%s", tail(w.String(), 3000))
	}
	if _, err := os.Stat(filepath.Join(run, "train", "last", "train_state.json")); err != nil {
		t.Fatalf("the interrupted train step left no state: %v", err)
	}

	// A definition that changed a finished step is refused.
	writeDef(1, "${data}/valid")
	if _, err := Resume(context.Background(), run, opts(io.Discard)); err == nil || !strings.Contains(err.Error(), "start a new run") {
		t.Fatalf("resume with a changed model step: %v", err)
	}

	writeDef(0, "${data}/valid")
	log.Reset()
	out, err := Resume(context.Background(), run, opts(&log))
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, tail(log.String(), 3000))
	}
	if !strings.Contains(log.String(), "train --resume "+filepath.Join(run, "train")) {
		t.Errorf("the train step did not continue from its state:\n%s", tail(log.String(), 3000))
	}
	if len(out.Trains) != 1 || out.Trains[0].EpochsRun != 3 || out.Test.N != 240 {
		t.Errorf("outcome %+v, want one 3-epoch train and a 240-image test", out)
	}
	if after, err := os.Stat(modelPB); err != nil || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("the model step was run again (%v)", err)
	}
	var jr journal
	if err := readJSON(filepath.Join(run, journalFile), &jr); err != nil || len(jr.Steps) != 2 || len(jr.Resumed) != 2 {
		t.Errorf("journal %+v (%v), want 2 steps and 2 resumptions (the refused one is not)", jr, err)
	}
	doc, _ := os.ReadFile(filepath.Join(tmp, "RESULTS.md"))
	if n := strings.Count(string(doc), "| [resume]"); n != 1 {
		t.Errorf("%d rows, want 1", n)
	}
	if _, err := Resume(context.Background(), run, opts(io.Discard)); err == nil || !strings.Contains(err.Error(), "nothing to resume") {
		t.Errorf("resuming a finished run: %v", err)
	}
}
