package plots

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/emotions-dev/emotions/classify"
	"github.com/emotions-dev/emotions/train"
)

// The history callback draws both curves in the background and Close waits for them; the
// confusion matrix is drawn too.
func TestHistoryAndConfusion(t *testing.T) {
	dir := t.TempDir()
	h := History(dir, []train.EpochRecord{{Epoch: 1, Logs: train.EpochLogs{"loss": 1.2, "val_loss": 1.3, "accuracy": 0.3, "val_accuracy": 0.25}}})
	for epoch := 1; epoch < 4; epoch++ {
		logs := train.EpochLogs{"loss": 1.0 / float64(epoch+1), "val_loss": 1.1, "accuracy": 0.5, "val_accuracy": 0.4}
		if err := h.OnEpochEnd(epoch, logs, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil { // closing twice is harmless
		t.Fatal(err)
	}
	for _, f := range []string{LossFile, AccuracyFile} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() < 1000 {
			t.Fatalf("%s: %v", f, err)
		}
	}
	r := classify.Score([][]float32{{0.9, 0.1}, {0.3, 0.7}}, []int32{0, 1}, []string{"a", "b"}, nil)
	if err := PlotConfusion(filepath.Join(dir, "confusion.png"), r); err != nil {
		t.Fatal(err)
	}
	// A directory that cannot be written is reported by Close.
	bad := History(filepath.Join(dir, "missing", "deeper"), nil)
	bad.OnEpochEnd(0, train.EpochLogs{"loss": 1}, nil)
	if err := bad.Close(); err == nil {
		t.Fatal("drawing into a missing directory did not fail")
	}
}

// The confusion PNG reads the right way round: the largest count is the darkest cell and a
// 0 the lightest, dark cells have white text, and in the row-normalised panel the diagonal
// gets darker as a class's recall rises.
func TestConfusionColoursDarkenWithCounts(t *testing.T) {
	r := &classify.Report{Classes: []string{"a", "b", "c"}, N: 77, Accuracy: 64.0 / 77,
		Confusion: [][]int{
			{54, 0, 1}, // recall 98%
			{3, 10, 7}, // recall 50%
			{0, 2, 0},  // recall 0%
		}}
	path := filepath.Join(t.TempDir(), "confusion.png")
	if err := PlotConfusion(path, r); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	_, layout, err := drawConfusion(r)
	if err != nil {
		t.Fatal(err)
	}
	// A cell's background, away from the text at its centre.
	background := func(panel, row, col int) float64 {
		c := layout.centres[panel][row][col]
		return luminance(img.At(c.X+layout.cellW*2/5, c.Y+layout.cellH*2/5))
	}
	const counts, recall = 0, 1
	if most, zero := background(counts, 0, 0), background(counts, 0, 1); most >= zero || zero < 0.9 {
		t.Errorf("counts: the 54 cell has luminance %.3f, a 0 cell %.3f: want the 0 near white and the 54 darker", most, zero)
	}
	if mid, most := background(counts, 1, 1), background(counts, 0, 0); mid <= most {
		t.Errorf("counts: the 10 cell (luminance %.3f) is not lighter than the 54 cell (%.3f)", mid, most)
	}
	high, half, none := background(recall, 0, 0), background(recall, 1, 1), background(recall, 2, 2)
	if !(high < half && half < none) {
		t.Errorf("row-normalised diagonal luminance %.3f (98%%), %.3f (50%%), %.3f (0%%): want darker with higher recall", high, half, none)
	}
	// The 54 is written in white on its dark cell.
	c, white := layout.centres[counts][0][0], false
	for y := c.Y - layout.cellH/4; y <= c.Y+layout.cellH/4 && !white; y++ {
		for x := c.X - layout.cellW/4; x <= c.X+layout.cellW/4; x++ {
			if luminance(img.At(x, y)) > 0.8 {
				white = true
				break
			}
		}
	}
	if !white {
		t.Error("no light text in the darkest cell")
	}
}

// HistoryOf draws any model's logs, one file per log, and no log name writes outside the run
// directory.
func TestHistoryOfAnyLogs(t *testing.T) {
	dir := t.TempDir()
	metrics := []string{"loss", "label_loss", "score_mae", "../escape", ""}
	h := HistoryOf(dir, nil, metrics...)
	for epoch := range 3 {
		logs := train.EpochLogs{}
		for _, m := range metrics {
			logs[m], logs["val_"+m] = 1/float64(epoch+1), 1.1/float64(epoch+1)
		}
		if err := h.OnEpochEnd(epoch, logs, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	for _, m := range metrics {
		f := PlotFile(m)
		if filepath.Base(f) != f || f == ".png" {
			t.Errorf("PlotFile(%q) = %q: not a plain file name", m, f)
		}
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() < 1000 {
			t.Errorf("%s for %q: %v", f, m, err)
		}
	}
	if PlotFile("loss") != LossFile || PlotFile("accuracy") != AccuracyFile {
		t.Errorf("PlotFile disagrees with History's files")
	}
	if entries, _ := os.ReadDir(filepath.Dir(dir)); len(entries) != 1 {
		t.Errorf("something was written beside the run directory: %v", entries)
	}
}
