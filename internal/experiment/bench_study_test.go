package experiment

import (
	"encoding/json"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emotions-dev/emotions/internal/testutil"
)

// writeJSON writes v as JSON to dir/name, creating dir.
func writeJSON(t *testing.T, dir, name string, v any) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// studyRound writes one round of bench_study.sh's measurements; timing and test go into the
// Go summary.json when not nil, and evaluate (the report of a separate `emotions evaluate`)
// adds that process.
func studyRound(t *testing.T, dir string, goTrainWall float64, timing, test, evaluate map[string]any) {
	t.Helper()
	gd, pd := filepath.Join(dir, "go"), filepath.Join(dir, "peer")
	writeJSON(t, gd, "new-model.proc.json", map[string]any{"wall_s": 100.0, "peak_rss_mb": 3000.0})
	writeJSON(t, gd, "train.proc.json", map[string]any{"wall_s": goTrainWall, "peak_rss_mb": 4000.0})
	summary := map[string]any{"settings": map[string]any{"batch_size": 64}, "epochs_run": 6}
	if timing != nil {
		summary["timing"] = timing
	}
	if test != nil {
		summary["test"] = test
	}
	writeJSON(t, gd, "summary.json", summary)
	if evaluate != nil {
		writeJSON(t, gd, "evaluate.proc.json", map[string]any{"wall_s": 30.0, "peak_rss_mb": 2000.0})
		writeJSON(t, gd, "evaluate.json", evaluate)
	}
	writeJSON(t, pd, "proc.json", map[string]any{"wall_s": 500.0, "peak_rss_mb": 3500.0})
	writeJSON(t, pd, "figures.json", map[string]any{
		"import_s": 5.0, "preprocess_s": 26.0, "build_s": 10.0, "fit_s": 440.0, "test_s": 15.0,
		"first_step_s": 20.0, "train_step_s": 380.0, "train_function_s": 370.0, "steps": 54,
		"validation_s": 30.0, "checkpoint_blocking_s": 20.0, "checkpoint_blocking_per_epoch_s": []float64{5, 5, 5, 5},
		"batch_size": 64, "faces_found_share": 0.8, "test": map[string]any{"accuracy": 0.25, "loss": 1.4, "n": 240},
	})
}

func studyFigures(t *testing.T, rounds ...string) map[string]any {
	t.Helper()
	script := filepath.Join(testutil.RepoRoot(t), "experiments", "bench_study_figures.py")
	out := testutil.RunPython(t, append([]string{script, "--backbone", "inception_resnet_v2", "--epochs", "6"}, rounds...)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil {
		t.Fatalf("last line is not a JSON object: %v\n%s", err, out)
	}
	return m
}

func near(t *testing.T, m map[string]any, key string, want float64) {
	t.Helper()
	got, ok := m[key].(float64)
	if !ok || math.Abs(got-want) > 1e-6 {
		t.Errorf("%s = %v, want %v", key, m[key], want)
	}
}

func TestBenchStudyFiguresWithTiming(t *testing.T) {
	tmp := t.TempDir()
	timing := map[string]any{"load_model_s": 5.0, "preprocess_s": 3.0, "first_step_s": 10.0, "train_step_s": 350.0,
		"steps": 54, "validation_s": 10.0, "checkpoint_blocking_s": 30.0, "checkpoint_blocking_per_epoch_s": []float64{5, 5, 5, 5, 5, 5},
		"test_s": 8.0, "fit_s": 400.0}
	test := map[string]any{"accuracy": 0.3, "loss": 1.3, "n": 240}
	r1, r2, r3 := filepath.Join(tmp, "r1"), filepath.Join(tmp, "r2"), filepath.Join(tmp, "r3")
	studyRound(t, r1, 420, timing, test, nil)
	studyRound(t, r2, 430, timing, test, nil)
	slower := maps.Clone(timing)
	slower["train_step_s"] = 370.0 // this round's steady steps 360 s, as long as the peer's
	studyRound(t, r3, 500, slower, test, nil)
	m := studyFigures(t, r1, r2, r3)

	near(t, m, "go_wall_s", 530)       // median of new-model 100 + train 420/430/500
	near(t, m, "go_overhead_s", 180)   // 530 - 350 inside the train steps
	near(t, m, "peer_overhead_s", 120) // 500 - 380
	near(t, m, "go_train_step_s", 350)
	near(t, m, "go_model_s", 105)                                // new-model + load
	near(t, m, "peer_model_s", 15)                               // import + build
	near(t, m, "go_other_s", 14)                                 // 530 - (100 + 5 + 3 + 400 + 8)
	near(t, m, "go_loop_other_s", 10)                            // 400 - 350 - 10 - 30
	near(t, m, "go_images_per_s", math.Round(53*64/340.0*10)/10) // steady steps, one decimal
	near(t, m, "go_peak_rss_mb", 4000)
	near(t, m, "go_test_accuracy", 0.3)
	near(t, m, "wall_ratio", 1.06)
	near(t, m, "overhead_ratio", 1.5)
	near(t, m, "steady_ratio", 0.944) // steady steps 340 / 360
	runs, _ := m["steady_ratio_runs"].([]any)
	if len(runs) != 3 || runs[0] != 0.944 || runs[1] != 0.944 || runs[2] != 1.0 {
		t.Errorf("steady_ratio_runs = %v, want each round's Go / peer steady steps [0.944 0.944 1]", m["steady_ratio_runs"])
	}
	if goRuns, _ := m["go_steady_runs"].([]any); len(goRuns) != 3 || goRuns[2] != 360.0 {
		t.Errorf("go_steady_runs = %v, want [340 340 360]", m["go_steady_runs"])
	}
	if m["goal_met"] != false {
		t.Errorf("goal_met = %v, want false (wall 1.06 > 0.7, although steady 0.944 <= 1.0)", m["goal_met"])
	}
	if missing, _ := m["go_missing"].([]any); len(missing) != 0 {
		t.Errorf("go_missing = %v, want none", missing)
	}
	if m["go_test_source"] != "train --test" {
		t.Errorf("go_test_source = %v", m["go_test_source"])
	}
}

// Before `emotions train` writes "timing", the Go figures that need it are null and named as
// missing, never estimated; the walls still compare.
func TestBenchStudyFiguresWithoutTiming(t *testing.T) {
	tmp := t.TempDir()
	r := filepath.Join(tmp, "r1")
	studyRound(t, r, 400, nil, nil, map[string]any{"accuracy": 0.25, "loss": 1.4, "n": 240})
	m := studyFigures(t, r)

	near(t, m, "go_wall_s", 530) // new-model 100 + train 400 + evaluate 30
	near(t, m, "go_test_s", 30)
	near(t, m, "go_peak_rss_mb", 4000)
	near(t, m, "go_test_accuracy", 0.25)
	for _, key := range []string{"go_overhead_s", "go_train_step_s", "go_preprocess_s", "overhead_ratio", "steady_ratio", "goal_met"} {
		if v, ok := m[key]; !ok || v != nil {
			t.Errorf("%s = %v (present %v), want null", key, v, ok)
		}
	}
	if missing, _ := m["go_missing"].([]any); len(missing) != 1 || missing[0] != "timing" {
		t.Errorf("go_missing = %v, want [timing]", m["go_missing"])
	}
	if m["go_test_source"] != "evaluate process" {
		t.Errorf("go_test_source = %v", m["go_test_source"])
	}
}

// bench_proc.py reports the peak RSS of the whole process tree (a grandchild's allocation
// counts) and passes the command's exit status through.
func TestBenchProc(t *testing.T) {
	tmp := t.TempDir()
	py := testutil.Python(t)
	script := filepath.Join(testutil.RepoRoot(t), "experiments", "bench_proc.py")
	out := filepath.Join(tmp, "p.json")
	grandchild := `import subprocess, sys; sys.exit(subprocess.run([sys.executable, "-c", "b = bytearray(300 << 20); b[::4096] = b'x' * len(b[::4096]); raise SystemExit(3)"]).returncode)`
	cmd := exec.Command(py, script, "--out", out, "--", py, "-c", grandchild)
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Fatalf("exit = %v, want status 3 passed through", err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if rss, _ := m["peak_rss_mb"].(float64); rss < 300 || rss > 1000 {
		t.Errorf("peak_rss_mb = %v, want the grandchild's 300 MB and more", m["peak_rss_mb"])
	}
	if code, _ := m["exit_code"].(float64); code != 3 {
		t.Errorf("exit_code = %v, want 3", m["exit_code"])
	}
	if wall, _ := m["wall_s"].(float64); wall <= 0 {
		t.Errorf("wall_s = %v", m["wall_s"])
	}
}
