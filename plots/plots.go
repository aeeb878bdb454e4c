// Package plots draws a run's training curves and an evaluation's confusion matrix as PNG
// files (gonum/plot). It is kept out of the training and model packages so that programs
// importing those do not pull in a plotting library; the CLI adds History to its runs.
package plots

import (
	"bytes"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"sync"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/emotions-dev/emotions/classify"
	"github.com/emotions-dev/emotions/internal/atomicfs"
	"github.com/emotions-dev/emotions/train"
)

// PlotHistory draws metric (and val_metric) per epoch, like the seed's "Train history"
// figures, into a PNG written atomically.
func PlotHistory(path string, history []train.EpochRecord, metric, title string) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "epoch"
	p.Y.Label.Text = metric
	p.Add(plotter.NewGrid())
	var lines []any
	for _, key := range []string{metric, "val_" + metric} {
		pts := make(plotter.XYs, 0, len(history))
		for _, h := range history {
			if v, ok := h.Logs[key]; ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
				pts = append(pts, plotter.XY{X: float64(h.Epoch), Y: v})
			}
		}
		name := "train"
		if key != metric {
			name = "validation"
		}
		lines = append(lines, name, pts)
	}
	if err := plotutil.AddLinePoints(p, lines...); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	p.Legend.Top = true
	// Headroom for the legend, which otherwise covers the curves' last epochs.
	p.Y.Max += 0.18 * (p.Y.Max - p.Y.Min)
	return savePNG(p, path, 6*vg.Inch, 4*vg.Inch)
}

// confusionGrid adapts a confusion matrix to gonum's GridXYZ (row 0 drawn at the top).
type confusionGrid struct{ m [][]int }

func (g confusionGrid) Dims() (c, r int)   { return len(g.m), len(g.m) }
func (g confusionGrid) X(c int) float64    { return float64(c) }
func (g confusionGrid) Y(r int) float64    { return float64(r) }
func (g confusionGrid) Z(c, r int) float64 { return float64(g.m[len(g.m)-1-r][c]) }

// PlotConfusion draws the report's confusion matrix (rows: true class, columns: predicted)
// with the counts written in the cells.
func PlotConfusion(path string, r *classify.Report) error {
	k := len(r.Classes)
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Confusion matrix (accuracy %.3f, n=%d)", r.Accuracy, r.N)
	p.X.Label.Text = "predicted"
	p.Y.Label.Text = "true"
	grid := confusionGrid{r.Confusion}
	p.Add(plotter.NewHeatMap(grid, palette.Heat(32, 1).(palette.Palette)))
	var labels plotter.XYLabels
	for row := 0; row < k; row++ {
		for col := 0; col < k; col++ {
			labels.XYs = append(labels.XYs, plotter.XY{X: float64(col), Y: float64(k - 1 - row)})
			labels.Labels = append(labels.Labels, fmt.Sprint(r.Confusion[row][col]))
		}
	}
	l, err := plotter.NewLabels(labels)
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	p.Add(l)
	ticks := func(reverse bool) plot.ConstantTicks {
		t := make(plot.ConstantTicks, k)
		for i, name := range r.Classes {
			v := float64(i)
			if reverse {
				v = float64(k - 1 - i)
			}
			t[i] = plot.Tick{Value: v, Label: name}
		}
		return t
	}
	p.X.Tick.Marker, p.Y.Tick.Marker = ticks(false), ticks(true)
	return savePNG(p, path, 5*vg.Inch, 5*vg.Inch)
}

func savePNG(p *plot.Plot, path string, w, h vg.Length) error {
	wt, err := p.WriterTo(w, h, "png")
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return atomicfs.WriteFile(path, buf.Bytes(), 0o644)
}

// Files of a run directory that History writes.
const (
	LossFile     = "loss.png"
	AccuracyFile = "accuracy.png"
)

// History is a training callback redrawing dir/loss.png and dir/accuracy.png after every
// epoch, from the epochs before the run (a resumed run's history, or nil) and those it sees.
// It draws on a goroutine of its own, so the training loop never waits for a plot (the latest
// epoch wins when epochs end faster than plots are drawn); OnTrainEnd and Close wait for the
// last drawing and report a failure.
func History(dir string, before []train.EpochRecord) *HistoryPlots {
	h := &HistoryPlots{dir: dir, history: slices.Clone(before), wake: make(chan struct{}, 1), done: make(chan struct{})}
	go h.draw()
	return h
}

// HistoryPlots is the callback History returns.
type HistoryPlots struct {
	dir  string
	wake chan struct{}
	done chan struct{}

	mu      sync.Mutex
	history []train.EpochRecord
	err     error
	closed  bool
}

// Name is the callback's name.
func (h *HistoryPlots) Name() string { return "HistoryPlots" }

// OnEpochEnd records the epoch and asks for a redraw.
func (h *HistoryPlots) OnEpochEnd(epoch int, logs train.EpochLogs, _ train.Model) error {
	h.mu.Lock()
	h.history = append(h.history, train.EpochRecord{Epoch: epoch + 1, Logs: maps.Clone(logs)})
	err := h.err
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default: // a redraw is already due: it will see this epoch
	}
	return err
}

// OnTrainEnd waits for the plots of the last epoch.
func (h *HistoryPlots) OnTrainEnd(train.Model) error { return h.Close() }

// Close waits for the last drawing and stops the drawing goroutine; it returns the first
// failure to draw.
func (h *HistoryPlots) Close() error {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.wake)
	}
	h.mu.Unlock()
	<-h.done
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

func (h *HistoryPlots) draw() {
	defer close(h.done)
	for range h.wake {
		h.mu.Lock()
		history := slices.Clone(h.history)
		h.mu.Unlock()
		err := PlotHistory(filepath.Join(h.dir, LossFile), history, "loss", "Train history: loss")
		if err == nil {
			err = PlotHistory(filepath.Join(h.dir, AccuracyFile), history, "accuracy", "Train history: accuracy")
		}
		if err != nil {
			h.mu.Lock()
			if h.err == nil {
				h.err = err
			}
			h.mu.Unlock()
		}
	}
}
