package experiment

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/emotions-dev/emotions/internal/atomicfs"
)

// Options say where the runner finds things and writes results. Zero fields take the
// defaults below, relative to Root.
type Options struct {
	Root     string    // repository root (default: the working directory)
	Binary   string    // emotions binary run for each step (default: this executable)
	Results  string    // RESULTS.md to append to (default Root/experiments/RESULTS.md)
	PlotsDir string    // plots are copied to PlotsDir/NAME/ (default Root/experiments/results)
	RunsDir  string    // runs go to RunsDir/NAME-<timestamp>/ (default Root/runs/experiments)
	Log      io.Writer // steps' output (default os.Stderr); each step also logs to RUN/logs/
}

func (o *Options) defaults() error {
	if o.Root == "" {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		o.Root = wd
	}
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return err
	}
	o.Root = root
	if o.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find the emotions binary: %w", err)
		}
		o.Binary = exe
	}
	if o.Results == "" {
		o.Results = filepath.Join(root, "experiments", "RESULTS.md")
	}
	if o.PlotsDir == "" {
		o.PlotsDir = filepath.Join(root, "experiments", "results")
	}
	if o.RunsDir == "" {
		o.RunsDir = filepath.Join(root, "runs", "experiments")
	}
	if o.Log == nil {
		o.Log = os.Stderr
	}
	return nil
}

// Split is what `emotions evaluate --json` reports (the fields the runner uses).
type Split struct {
	Accuracy     float64    `json:"accuracy"`
	Loss         float64    `json:"loss"`
	N            int        `json:"n"`
	AccuracyCI95 [2]float64 `json:"accuracy_ci95"`
}

// TrainSummary is the part of a train run's summary.json the row reports.
type TrainSummary struct {
	EpochsRun   int     `json:"epochs_run"`
	BestEpoch   int     `json:"best_epoch"`
	StopReason  string  `json:"stop_reason"`
	WallSeconds float64 `json:"wall_seconds"`
}

// Outcome is one finished experiment: the row's content.
type Outcome struct {
	Name, Kind, Description string
	RunDir                  string
	Started                 time.Time
	Commit, Machine         string
	Data                    string
	Settings                string
	Train, Valid, Test      Split
	TestSplit               string
	Trains                  []TrainSummary // one per train step, in order
	WallSeconds             float64
}

// Run executes the definition NAME in a new run directory and appends its row to the
// results file.
func Run(ctx context.Context, name string, o Options) (*Outcome, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	start := time.Now()
	runDir := filepath.Join(o.RunsDir, fmt.Sprintf("%s-%s", name, start.UTC().Format("20060102T150405Z")))
	jr := &journal{Name: name, Started: start.UTC(), Commit: gitCommit(o.Root)}
	return execute(ctx, o, runDir, jr, false)
}

// Resume continues the run in runDir (interrupted, killed, or stopped by a failing step)
// after the last step it finished, with the definition it was started from: finished steps
// are skipped, an interrupted train step continues from its last/ state (train --resume),
// anything else half-written by the step that stopped is removed and that step run again.
// A finished step whose command line the definition no longer produces is an error: the
// results would mix two recipes.
func Resume(ctx context.Context, runDir string, o Options) (*Outcome, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	runDir, err := filepath.Abs(runDir)
	if err != nil {
		return nil, err
	}
	var jr journal
	if err := readJSON(filepath.Join(runDir, journalFile), &jr); err != nil {
		return nil, fmt.Errorf("resume %s: %w (not a run directory of `experiment run`?)", runDir, err)
	}
	if _, err := os.Stat(filepath.Join(runDir, "experiment.json")); err == nil {
		return nil, fmt.Errorf("resume %s: the run finished (its row is in the results); nothing to resume", runDir)
	}
	return execute(ctx, o, runDir, &jr, true)
}

// journalFile records a run's finished steps (RUN/progress.json), rewritten atomically
// after each one, so that Resume knows where the run stopped.
const journalFile = "progress.json"

type journal struct {
	Name    string        `json:"name"`
	Started time.Time     `json:"started"`
	Commit  string        `json:"commit"`
	Resumed []string      `json:"resumed,omitempty"` // commits of later sessions, if any
	Steps   []journalStep `json:"steps"`
}

type journalStep struct {
	Name    string   `json:"name"`
	Args    []string `json:"args"`
	Seconds float64  `json:"seconds"`
}

func (j *journal) save(runDir string) error {
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	return atomicfs.WriteFile(filepath.Join(runDir, journalFile), append(b, '\n'), 0o644)
}

// commit is the run's commit, and those it was resumed at when they differ.
func (j *journal) commit() string {
	c := j.Commit
	for _, r := range j.Resumed {
		if r != j.Commit && !strings.Contains(c, r) {
			c += ", resumed at " + r
		}
	}
	return c
}

// execute runs the definition jr.Name in runDir, skipping the steps jr records as finished
// (resuming: jr was read from runDir, rather than started afresh).
func execute(ctx context.Context, o Options, runDir string, jr *journal, resuming bool) (*Outcome, error) {
	name := jr.Name
	def, err := Load(o.Root, name)
	if err != nil {
		return nil, err
	}
	vars, err := def.resolvePaths(o.Root)
	if err != nil {
		return nil, err
	}
	if len(jr.Steps) > len(def.Steps) {
		return nil, fmt.Errorf("experiment %s: resume %s: the run finished %d steps, the definition now has %d: start a new run",
			name, runDir, len(jr.Steps), len(def.Steps))
	}
	session := time.Now()
	if err := os.MkdirAll(filepath.Join(runDir, "logs"), 0o755); err != nil {
		return nil, fmt.Errorf("create run directory: %w", err)
	}
	if !resuming {
		if err := jr.save(runDir); err != nil {
			return nil, err
		}
	}
	// A resumption is recorded once the finished steps are known to match the definition.
	markResumed := func() error {
		if !resuming {
			return nil
		}
		resuming = false
		jr.Resumed = append(jr.Resumed, gitCommit(o.Root))
		return jr.save(runDir)
	}
	vars["run"] = runDir
	data := def.Data
	if rel, err := filepath.Rel(o.Root, vars["data"]); err == nil {
		data = rel // shows an EMOTIONS_EXPERIMENT_DATA override
	}
	out := &Outcome{Name: name, Kind: def.Kind, Description: def.Description, RunDir: runDir, Started: jr.Started,
		Machine: machine(), Data: data, TestSplit: def.EvaluateOn}
	fmt.Fprintf(o.Log, "experiment %s: %s\nrun directory %s\n", name, def.Description, runDir)
	if resuming {
		fmt.Fprintf(o.Log, "resuming: %d of %d steps finished\n", len(jr.Steps), len(def.Steps))
	}

	var settings []string
	var earlier float64 // seconds of the steps finished in earlier sessions
	lastTrain := ""
	for i, s := range def.Steps {
		if (s.Command == "new-model" || s.Command == "train" || s.Command == "split" || s.Command == "python") && s.Flags["out"] == nil {
			s.Flags = withFlag(s.Flags, "out", filepath.Join(runDir, s.Name))
		}
		args, err := s.args(vars)
		if err != nil {
			return nil, err
		}
		outDir := ""
		if dir, ok := s.Flags["out"].(string); ok {
			if outDir, err = expand(dir, vars); err != nil {
				return nil, err
			}
			vars[s.Name] = outDir
		}
		if i < len(jr.Steps) {
			done := jr.Steps[i]
			if done.Name != s.Name || !slices.Equal(done.Args, args) {
				return nil, fmt.Errorf("experiment %s: resume %s: step %d ran as %q (%s), the definition now says %q (%s): start a new run",
					name, runDir, i+1, done.Name, strings.Join(done.Args, " "), s.Name, strings.Join(args, " "))
			}
			fmt.Fprintf(o.Log, "step %s: finished earlier, skipped\n", s.Name)
			earlier += done.Seconds
		} else {
			if err := markResumed(); err != nil {
				return nil, err
			}
			stepStart := time.Now()
			if err := runStepOf(ctx, o, s, args, outDir, runDir, vars, filepath.Join(runDir, "logs", fmt.Sprintf("%02d-%s.log", i+1, s.Name))); err != nil {
				return nil, fmt.Errorf("experiment %s step %s: %w", name, s.Name, err)
			}
			jr.Steps = append(jr.Steps, journalStep{Name: s.Name, Args: args, Seconds: time.Since(stepStart).Seconds()})
			if err := jr.save(runDir); err != nil {
				return nil, err
			}
		}
		settings = append(settings, s.summary())
		if s.Command == "train" {
			lastTrain = vars[s.Name]
			var ts TrainSummary
			if err := readJSON(filepath.Join(lastTrain, "summary.json"), &ts); err != nil {
				return nil, err
			}
			out.Trains = append(out.Trains, ts)
		}
	}
	if err := markResumed(); err != nil {
		return nil, err
	}
	out.Commit = jr.commit()
	if def.Notes != "" {
		settings = append(settings, def.Notes)
	}
	out.Settings = strings.Join(settings, "; ")

	// The best model (RUN/best) of the last train step, on every split.
	evalData := vars["data"]
	if def.EvaluateData != "" {
		if evalData, err = expand(def.EvaluateData, vars); err != nil {
			return nil, err
		}
		// The headline figure is only comparable with the other rows on ${data}'s own split.
		diff, err := sameFiles(filepath.Join(vars["data"], def.EvaluateOn), filepath.Join(evalData, def.EvaluateOn))
		if err != nil {
			return nil, fmt.Errorf("experiment %s: evaluate_data: %w", name, err)
		}
		if diff != "" {
			return nil, fmt.Errorf("experiment %s: evaluate_data %s: its %s split differs from ${data}'s: %s", name, def.EvaluateData, def.EvaluateOn, diff)
		}
		out.Data = fmt.Sprintf("%s re-split by %s", out.Data, def.EvaluateData)
	}
	splits := []struct {
		name string
		dst  *Split
	}{{"train", &out.Train}, {"valid", &out.Valid}, {def.EvaluateOn, &out.Test}}
	for _, sp := range splits {
		args := []string{"evaluate", "--model", lastTrain, "--data", filepath.Join(evalData, sp.name), "--json"}
		if sp.dst == &out.Test {
			args = append(args, "--confusion", filepath.Join(lastTrain, "confusion.png"))
		}
		logPath := filepath.Join(runDir, "logs", "evaluate-"+sp.name+".log")
		var stdout strings.Builder
		if err := runStep(ctx, o, args, logPath, &stdout); err != nil {
			return nil, fmt.Errorf("experiment %s: evaluate on %s: %w (log: %s)", name, sp.name, err, logPath)
		}
		if err := json.Unmarshal([]byte(stdout.String()), sp.dst); err != nil {
			return nil, fmt.Errorf("experiment %s: evaluate on %s: reading its JSON: %w", name, sp.name, err)
		}
	}
	// Wall time is the work's, not the pauses between sessions.
	out.WallSeconds = earlier + time.Since(session).Seconds()

	if err := copyPlots(lastTrain, filepath.Join(o.PlotsDir, name)); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(map[string]any{"definition": def, "outcome": out}, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := atomicfs.WriteFile(filepath.Join(runDir, "experiment.json"), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	if err := AppendRow(o.Results, out); err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Log, "experiment %s: test accuracy %.4f (95%% CI %.4f-%.4f, n=%d); row appended to %s\n",
		name, out.Test.Accuracy, out.Test.AccuracyCI95[0], out.Test.AccuracyCI95[1], out.Test.N, o.Results)
	return out, nil
}

// runStepOf runs one step whose output goes to outDir (may be ""). What an earlier, stopped
// attempt left there is continued (a train run with a last/ state) or removed first.
func runStepOf(ctx context.Context, o Options, s Step, args []string, outDir, runDir string, vars map[string]string, logPath string) error {
	if outDir != "" {
		if _, err := os.Stat(outDir); err == nil {
			if s.Command == "train" {
				// train.LastDir's state file, named here because package train links TensorFlow.
				if _, err := os.Stat(filepath.Join(outDir, "last", "train_state.json")); err == nil {
					// train keeps its own settings in last/; --epochs only restates the total.
					resume := []string{"train", "--resume", outDir}
					if e, ok := s.Flags["epochs"]; ok {
						resume = append(resume, "--epochs", fmt.Sprint(e))
					}
					return withLog(runProgram(ctx, o, o.Binary, resume, stepEnv(s), logPath, nil), logPath)
				}
			}
			if rel, err := filepath.Rel(runDir, outDir); err != nil || strings.HasPrefix(rel, "..") || rel == "." {
				return fmt.Errorf("%s exists and is not inside the run directory %s: not removing it", outDir, runDir)
			}
			fmt.Fprintf(o.Log, "step %s: removing what a stopped attempt left in %s\n", s.Name, outDir)
			if err := os.RemoveAll(outDir); err != nil {
				return err
			}
		}
	}
	var err error
	switch s.Command {
	case "split":
		err = runSplit(s, vars)
	case "python":
		err = runPython(ctx, o, s, args[1:], logPath)
	default:
		err = runProgram(ctx, o, o.Binary, args, stepEnv(s), logPath, nil)
	}
	return withLog(err, logPath)
}

func withLog(err error, logPath string) error {
	if err != nil {
		return fmt.Errorf("%w (log: %s)", err, logPath)
	}
	return nil
}

// resolvePaths maps ${data} and the definition's paths to absolute directories, checking
// each exists before hours of work depend on it.
func (d *Def) resolvePaths(root string) (map[string]string, error) {
	vars := map[string]string{}
	refs := map[string]PathRef{"data": {Path: d.Data, Env: "EMOTIONS_EXPERIMENT_DATA"}}
	for k, v := range d.Paths {
		refs[k] = v
	}
	for k, ref := range refs {
		p := ref.Path
		if ref.Env != "" && os.Getenv(ref.Env) != "" {
			p = os.Getenv(ref.Env)
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(root, p)
		}
		if st, err := os.Stat(p); err != nil || !st.IsDir() {
			hint := ""
			if ref.Env != "" {
				hint = fmt.Sprintf(" (set %s to its location)", ref.Env)
			}
			return nil, fmt.Errorf("experiment %s: ${%s} = %s is not a directory%s", d.Name, k, p, hint)
		}
		vars[k] = p
	}
	return vars, nil
}

// runSplit reads the split step's flags (their keys were checked when the definition loaded).
func runSplit(s Step, vars map[string]string) error {
	var sp splitSpec
	for _, f := range []struct {
		key string
		dst *string
	}{{"from", &sp.From}, {"train", &sp.Train}, {"test", &sp.Test}} {
		v, ok := s.Flags[f.key]
		if !ok {
			continue
		}
		e, err := expand(fmt.Sprint(v), vars)
		if err != nil {
			return err
		}
		*f.dst = e
	}
	pct, err := strconv.Atoi(fmt.Sprint(s.Flags["valid-percent"]))
	if err != nil {
		return fmt.Errorf("split: valid-percent: %w", err)
	}
	sp.ValidPercent = pct
	return split(sp, vars[s.Name])
}

func withFlag(flags map[string]any, k string, v any) map[string]any {
	out := make(map[string]any, len(flags)+1)
	for fk, fv := range flags {
		out[fk] = fv
	}
	out[k] = v
	return out
}

// runStep runs the binary with args in Root, logging stdout and stderr to logPath and o.Log;
// stdout also goes to capture when given (evaluate's JSON). Cancelling ctx sends SIGINT,
// which makes train save last/ before exiting, as Ctrl-C does.
func runStep(ctx context.Context, o Options, args []string, logPath string, capture io.Writer) error {
	return runProgram(ctx, o, o.Binary, args, nil, logPath, capture)
}

// runPython runs a python step (args: SCRIPT [ARGS...] --flags) with the project's interpreter,
// the one `emotions new-model` uses: EMOTIONS_PYTHON, else Root/.venv/bin/python.
func runPython(ctx context.Context, o Options, s Step, args []string, logPath string) error {
	py := os.Getenv("EMOTIONS_PYTHON")
	if py == "" {
		py = filepath.Join(o.Root, ".venv", "bin", "python")
	}
	if _, err := os.Stat(py); err != nil {
		return fmt.Errorf("python step: no interpreter at %s (run make setup, or set EMOTIONS_PYTHON)", py)
	}
	return runProgram(ctx, o, py, args, stepEnv(s), logPath, nil)
}

// stepEnv is the step's "env" as NAME=value pairs, sorted (added to the runner's environment).
func stepEnv(s Step) []string {
	var env []string
	for k, v := range s.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}

// runProgram runs prog with args (and the extra environment env) in Root; see runStep.
func runProgram(ctx context.Context, o Options, prog string, args, env []string, logPath string, capture io.Writer) error {
	f, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("create log: %w", err)
	}
	defer f.Close()
	prefix := ""
	if len(env) > 0 {
		prefix = strings.Join(env, " ") + " "
	}
	fmt.Fprintf(io.MultiWriter(f, o.Log), "$ %s%s %s\n", prefix, filepath.Base(prog), strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Dir = o.Root
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 2 * time.Minute
	cmd.Stderr = io.MultiWriter(f, o.Log)
	if capture != nil {
		cmd.Stdout = io.MultiWriter(f, capture)
	} else {
		cmd.Stdout = io.MultiWriter(f, o.Log)
	}
	start := time.Now()
	err = cmd.Run()
	fmt.Fprintf(f, "# %.1f s, %v\n", time.Since(start).Seconds(), errOrOK(err))
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	return err
}

func errOrOK(err error) string {
	if err != nil {
		return err.Error()
	}
	return "ok"
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// copyPlots copies the last train run's curves and the test confusion matrix; a missing
// plot is an error because the row would point at it.
func copyPlots(run, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dst, err)
	}
	for _, name := range []string{"loss.png", "accuracy.png", "confusion.png"} {
		b, err := os.ReadFile(filepath.Join(run, name))
		if err != nil {
			return fmt.Errorf("copy plot: %w", err)
		}
		if err := atomicfs.WriteFile(filepath.Join(dst, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// gitCommit is the short HEAD, "+dirty" when tracked or untracked files differ from it.
// What the runner itself writes (RESULTS.md rows, results/ plots) does not count: the
// second experiment of a series run from a clean checkout is as clean as the first.
func gitCommit(root string) string {
	head, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(head))
	st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--",
		".", ":(exclude)experiments/RESULTS.md", ":(exclude)experiments/results").Output()
	if err != nil || len(st) > 0 {
		c += "+dirty"
	}
	return c
}

// machine is "N cores, CPU model, SIMD" from /proc/cpuinfo (Linux; elsewhere just the
// cores). SIMD is avx512f or avx2, the widest of the two the CPU has: TensorFlow's CPU kernels
// run several times faster with AVX-512, so figures from different machines compare only
// with it named.
func machine() string {
	cores := 0
	model, simd := "", ""
	b, err := os.ReadFile("/proc/cpuinfo")
	if err == nil {
		for line := range strings.Lines(string(b)) {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "processor":
				cores++
			case "model name":
				model = strings.TrimSpace(v)
			case "flags":
				flags := strings.Fields(v)
				switch {
				case slices.Contains(flags, "avx512f"):
					simd = "avx512f"
				case slices.Contains(flags, "avx2") && simd == "":
					simd = "avx2 (no avx512f)"
				}
			}
		}
	}
	if cores == 0 {
		return "unknown machine"
	}
	out := fmt.Sprintf("%d cores", cores)
	for _, part := range []string{model, simd} {
		if part != "" {
			out += ", " + part
		}
	}
	return out
}
