package experiment

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/emotions-dev/emotions/internal/atomicfs"
)

// The header a new RESULTS.md starts with. Tables are found by their marker comment, so
// the prose around them can be edited freely.
const resultsHeader = `# Experiment results

Every row below was appended by the experiment runner, never typed by hand:

    make experiment NAME=seed          # = bin/emotions experiment run seed
    bin/emotions experiment list       # the definitions in experiments/defs/

The runner executes the steps of ` + "`experiments/defs/NAME.json`" + ` (new-model, train, ...) with the
emotions binary itself, in ` + "`runs/experiments/NAME-<timestamp>/`" + ` (git-ignored; each step's log is in
its logs/), evaluates the best model (RUN/best of the last train step) with ` + "`emotions evaluate`" + ` on
the data's train, valid and test splits, copies loss.png, accuracy.png and confusion.png to
` + "`experiments/results/NAME/`" + `, and appends one row to the table of the definition's kind (write to a
temporary file, then rename). To reproduce a row, check out its commit and run the same
` + "`make experiment NAME=...`" + `; results differ slightly between machines (thread scheduling,
oneDNN kernels). EMOTIONS_RESULTS (or ` + "`--results`" + `) sends rows to another file.

Columns: accuracies and losses are those of ` + "`emotions evaluate`" + ` (inference mode: no Dropout,
BatchNorm moving statistics); "Test 95% CI" is the Wilson score interval of the test accuracy;
"Epochs" lists the epochs run by each train step, with the best (checkpointed) epoch of the last
in brackets; "Wall" covers the whole experiment (model export, training, the three evaluations).
A commit marked +dirty had uncommitted changes when the row was produced.

Data outside the repository: the pre-training set is referenced as ` + "`../shared/datasets/faces-pretrain`" + `
(relative to the repo root); set EMOTIONS_PRETRAIN_DATA to its location elsewhere.
`

var kindTitles = map[string]string{
	"seed":      "Seed recipe (InceptionResNetV2, 80x80, Adam 1e-3, batch 64, three callbacks)",
	"backbones": "Backbones (the seed's comparison table)",
	"levers":    "Levers (one change each against the seed recipe)",
	"smoke":     "Smoke tests (runner checks, not accuracy)",
}

var kindOrder = []string{"seed", "backbones", "levers", "smoke"}

const rowHeader = "| Experiment | Date (UTC) | Commit | Machine | Data | Settings | Train acc / loss | Valid acc / loss | Test acc / loss | Test 95% CI | Epochs | Stop | Wall |\n" +
	"|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"

const benchHeader = "| Date (UTC) | Commit | Machine | Command | Figures |\n|---|---|---|---|---|\n"

const benchSection = "## Benchmarks"

// AppendRow adds the outcome's row to its kind's table in the results file.
func AppendRow(path string, o *Outcome) error {
	epochs := make([]string, len(o.Trains))
	stop, trainWall := "", 0.0
	for i, t := range o.Trains {
		epochs[i] = fmt.Sprint(t.EpochsRun)
		stop = t.StopReason
		trainWall += t.WallSeconds
	}
	best := 0
	if len(o.Trains) > 0 {
		best = o.Trains[len(o.Trains)-1].BestEpoch
	}
	row := []string{
		fmt.Sprintf("[%s](results/%s/)", o.Name, o.Name),
		o.Started.UTC().Format("2006-01-02 15:04"),
		o.Commit, o.Machine,
		fmt.Sprintf("%s (%d/%d/%d)", o.Data, o.Train.N, o.Valid.N, o.Test.N),
		o.Settings,
		accLoss(o.Train), accLoss(o.Valid), accLoss(o.Test),
		fmt.Sprintf("%.3f-%.3f", o.Test.AccuracyCI95[0], o.Test.AccuracyCI95[1]),
		fmt.Sprintf("%s (best %d)", strings.Join(epochs, "+"), best),
		stop,
		fmt.Sprintf("%.1f min (train %.1f min)", o.WallSeconds/60, trainWall/60),
	}
	title, ok := kindTitles[o.Kind]
	if !ok {
		title = "Other: " + o.Kind
	}
	return updateResults(path, "results:"+o.Kind, "## "+title, rowHeader, tableRow(row), sectionsAfter(o.Kind))
}

// RecordBenchmark adds a benchmark's figures (the JSON object a bench script printed last)
// to the Benchmarks section, one table per benchmark; root is the checkout measured.
func RecordBenchmark(path, root, name, command string, figures []byte) error {
	var m map[string]any
	if err := json.Unmarshal(figures, &m); err != nil {
		return fmt.Errorf("benchmark %s: figures are not a JSON object: %w", name, err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		var v strings.Builder
		enc := json.NewEncoder(&v)
		enc.SetEscapeHTML(false) // keep ">=" readable
		if err := enc.Encode(m[k]); err != nil {
			return err
		}
		parts[i] = fmt.Sprintf("%s=%s", k, strings.Trim(strings.TrimSpace(v.String()), `"`))
	}
	row := []string{time.Now().UTC().Format("2006-01-02 15:04"), gitCommit(root), machine(),
		"`" + command + "`", strings.Join(parts, ", ")}
	return updateResults(path, "bench:"+name, "### "+name, benchHeader, tableRow(row), nil)
}

// sectionsAfter are the markers of the tables that must stay below a new kind's table,
// keeping tables in kindOrder with Benchmarks last.
func sectionsAfter(kind string) []string {
	for i, k := range kindOrder {
		if k == kind {
			var after []string
			for _, a := range kindOrder[i+1:] {
				after = append(after, "results:"+a)
			}
			return after
		}
	}
	return nil // an unknown kind goes just above Benchmarks
}

func accLoss(s Split) string { return fmt.Sprintf("%.4f / %.4f", s.Accuracy, s.Loss) }

func tableRow(cells []string) string {
	for i, c := range cells {
		cells[i] = strings.ReplaceAll(strings.ReplaceAll(c, "|", `\|`), "\n", " ")
	}
	return "| " + strings.Join(cells, " | ") + " |\n"
}

// updateResults inserts row at the end of the table marked <!-- marker -->, creating the
// file (with its header) and the table as needed. Readers see the old or the new file
// (atomicfs), and a lock on the directory serialises concurrent runners so no row is lost.
func updateResults(path, marker, heading, header, row string, before []string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("results %s: %w", path, err)
	}
	lock, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("results %s: lock: %w", path, err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("results %s: lock: %w", path, err)
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN)

	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		b, err = []byte(resultsHeader), nil
	}
	if err != nil {
		return fmt.Errorf("results %s: %w", path, err)
	}
	doc := insertRow(string(b), marker, heading, header, row, before)
	return atomicfs.WriteFile(path, []byte(doc), 0o644)
}

// insertRow is the pure text edit of updateResults.
func insertRow(doc, marker, heading, header, row string, before []string) string {
	lines := strings.SplitAfter(doc, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	mark := "<!-- " + marker + " -->"
	at := -1
	for i, l := range lines {
		if strings.TrimSpace(l) == mark {
			at = i
			break
		}
	}
	if at >= 0 {
		// After the marker: the table; the row goes after its last line.
		end := at + 1
		for end < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[end]), "|") {
			end++
		}
		if end == at+1 { // marker without a table: restore the header
			row = header + row
		}
		return strings.Join(lines[:end], "") + row + strings.Join(lines[end:], "")
	}
	section := heading + "\n\n" + mark + "\n" + header + row + "\n"
	if !strings.HasSuffix(doc, "\n") && doc != "" {
		doc += "\n"
	}
	// Insert above the first existing section of `before` (else above Benchmarks); a
	// benchmark table goes at the end, inside Benchmarks.
	target := -1
	for _, b := range before {
		if target = headingAbove(lines, "<!-- "+b+" -->"); target >= 0 {
			break
		}
	}
	isBench := strings.HasPrefix(marker, "bench:")
	if target < 0 && !isBench {
		target = indexLine(lines, benchSection)
	}
	if isBench && indexLine(lines, benchSection) < 0 {
		section = benchSection + "\n\nEach benchmark script prints one JSON object as its last line and records it here.\n\n" + section
	}
	if target < 0 {
		return doc + "\n" + section
	}
	return strings.Join(lines[:target], "") + section + strings.Join(lines[target:], "")
}

func indexLine(lines []string, want string) int {
	for i, l := range lines {
		if strings.TrimSpace(l) == want {
			return i
		}
	}
	return -1
}

// headingAbove is the line index of the "## " heading above the marker line.
func headingAbove(lines []string, mark string) int {
	i := indexLine(lines, mark)
	for ; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "## ") {
			return i
		}
	}
	return -1
}
