// Package plots draws a run's training curves and an evaluation's confusion matrix as PNG
// files (gonum/plot). It is kept out of the training and model packages so that programs
// importing those do not pull in a plotting library; the CLI adds History to its runs.
package plots

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"unicode"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

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

// confusionGrid adapts a matrix (row-major, row 0 drawn at the top) to gonum's GridXYZ.
type confusionGrid struct{ m [][]float64 }

func (g confusionGrid) Dims() (c, r int)   { return len(g.m), len(g.m) }
func (g confusionGrid) X(c int) float64    { return float64(c) }
func (g confusionGrid) Y(r int) float64    { return float64(r) }
func (g confusionGrid) Z(c, r int) float64 { return g.m[len(g.m)-1-r][c] }

// The colour scale runs from white (nothing) to dark blue (the most), so that the cells a
// reader looks for, the large counts, stand out; a warm-to-pale palette read backwards.
var (
	scaleLow  = color.RGBA{R: 0xf7, G: 0xfb, B: 0xff, A: 0xff}
	scaleHigh = color.RGBA{R: 0x08, G: 0x30, B: 0x6b, A: 0xff}
)

// scaleSteps is how many colours the heat map's palette has.
const scaleSteps = 256

// sequential is the palette of the colour scale.
type sequential []color.Color

func (s sequential) Colors() []color.Color { return s }

func newSequential() sequential {
	s := make(sequential, scaleSteps)
	for i := range s {
		s[i] = shade(float64(i) / (scaleSteps - 1))
	}
	return s
}

// shade is the colour for f in [0, 1] of the scale's maximum.
func shade(f float64) color.RGBA {
	f = math.Max(0, math.Min(1, f))
	mix := func(a, b uint8) uint8 { return uint8(math.Round(float64(a) + f*(float64(b)-float64(a)))) }
	return color.RGBA{R: mix(scaleLow.R, scaleHigh.R), G: mix(scaleLow.G, scaleHigh.G), B: mix(scaleLow.B, scaleHigh.B), A: 0xff}
}

// luminance is c's relative luminance (0 black, 1 white), from its sRGB components.
func luminance(c color.Color) float64 {
	r, g, b, _ := c.RGBA()
	lin := func(v uint32) float64 {
		x := float64(v) / 0xffff
		if x <= 0.04045 {
			return x / 12.92
		}
		return math.Pow((x+0.055)/1.055, 2.4)
	}
	return 0.2126*lin(r) + 0.7152*lin(g) + 0.0722*lin(b)
}

// ConfusionPanels names what PlotConfusion draws: the counts, and each row divided by its
// total (the recall of each true class, in percent) beside them.
const ConfusionPanels = "counts | row-normalised (recall per true class, %)"

// confusionDPI is the resolution PlotConfusion draws at.
const confusionDPI = 96

// confusionLayout is where each panel's cells landed in the image, for tests: the pixel
// centre of cell [row][col] and the cells' size in pixels.
type confusionLayout struct {
	centres      [2][][]image.Point
	cellW, cellH int
}

// PlotConfusion draws the report's confusion matrix (rows: true class, columns: predicted)
// into one PNG of two panels (ConfusionPanels): the counts, and the rows normalised to
// percentages, since a class with many examples otherwise dominates the colours. Darker is
// more in both; the text in a cell is white where the cell is dark.
func PlotConfusion(path string, r *classify.Report) error {
	img, _, err := drawConfusion(r)
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return atomicfs.WriteFile(path, buf.Bytes(), 0o644)
}

func drawConfusion(r *classify.Report) (*vgimg.Canvas, confusionLayout, error) {
	k := len(r.Classes)
	var layout confusionLayout
	if k == 0 || len(r.Confusion) != k {
		return nil, layout, fmt.Errorf("a confusion matrix of %d rows for %d classes", len(r.Confusion), k)
	}
	counts, fractions := make([][]float64, k), make([][]float64, k)
	totals := make([]int, k)
	largest := 1 // not 0: an empty matrix is drawn all white
	for row := range k {
		if len(r.Confusion[row]) != k {
			return nil, layout, fmt.Errorf("confusion row %d has %d columns for %d classes", row, len(r.Confusion[row]), k)
		}
		counts[row], fractions[row] = make([]float64, k), make([]float64, k)
		for col, v := range r.Confusion[row] {
			counts[row][col] = float64(v)
			totals[row] += v
			largest = max(largest, v)
		}
		for col, v := range r.Confusion[row] {
			if totals[row] > 0 {
				fractions[row][col] = float64(v) / float64(totals[row])
			}
		}
	}
	countLabel := func(row, col int) string { return fmt.Sprint(r.Confusion[row][col]) }
	percentLabel := func(row, col int) string {
		if totals[row] == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f%%", 100*fractions[row][col])
	}
	rowNames := make([]string, k)
	for i, name := range r.Classes {
		rowNames[i] = fmt.Sprintf("%s (%d)", name, totals[i])
	}
	panels := []*plot.Plot{
		confusionPanel(fmt.Sprintf("Counts (accuracy %.3f, n=%d)", r.Accuracy, r.N), r.Classes, r.Classes, counts, float64(largest), countLabel),
		confusionPanel("Recall per true class (row %)", r.Classes, rowNames, fractions, 1, percentLabel),
	}
	for _, p := range panels {
		if p == nil {
			return nil, layout, fmt.Errorf("label the cells of a %dx%d matrix", k, k)
		}
	}
	w, h := 10*vg.Inch, 5*vg.Inch
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(confusionDPI))
	canvases := plot.Align([][]*plot.Plot{panels}, draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Inch / 4,
		PadTop: vg.Inch / 8, PadBottom: vg.Inch / 8, PadLeft: vg.Inch / 8, PadRight: vg.Inch / 8}, draw.New(img))
	pixel := func(l vg.Length) int { return int(math.Round(l.Points() * confusionDPI / 72)) }
	for i, p := range panels {
		p.Draw(canvases[0][i])
		data := p.DataCanvas(canvases[0][i])
		x, y := p.Transforms(&data)
		layout.cellW, layout.cellH = pixel(x(1)-x(0)), pixel(y(1)-y(0))
		layout.centres[i] = make([][]image.Point, k)
		for row := range k {
			layout.centres[i][row] = make([]image.Point, k)
			for col := range k {
				// The canvas counts y from the bottom, the image from the top.
				layout.centres[i][row][col] = image.Pt(pixel(x(float64(col))), pixel(h-y(float64(k-1-row))))
			}
		}
	}
	return img, layout, nil
}

// confusionPanel draws m (values up to top) with label(row, col) written in each cell;
// rows are labelled rowNames, columns colNames. It is nil if the labels cannot be made.
func confusionPanel(title string, colNames, rowNames []string, m [][]float64, top float64, label func(row, col int) string) *plot.Plot {
	k := len(m)
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "predicted"
	p.Y.Label.Text = "true"
	heat := plotter.NewHeatMap(confusionGrid{m}, newSequential())
	heat.Min, heat.Max = 0, top
	p.Add(heat)
	var cells plotter.XYLabels
	for row := range k {
		for col := range k {
			cells.XYs = append(cells.XYs, plotter.XY{X: float64(col), Y: float64(k - 1 - row)})
			cells.Labels = append(cells.Labels, label(row, col))
		}
	}
	l, err := plotter.NewLabels(cells)
	if err != nil {
		return nil
	}
	for i := range l.TextStyle {
		row, col := i/k, i%k
		l.TextStyle[i].XAlign, l.TextStyle[i].YAlign = draw.XCenter, draw.YCenter
		l.TextStyle[i].Color = color.Black
		if luminance(shade(m[row][col]/top)) < 0.3 {
			l.TextStyle[i].Color = color.White
		}
	}
	p.Add(l)
	ticks := func(names []string, reverse bool) plot.ConstantTicks {
		t := make(plot.ConstantTicks, k)
		for i, name := range names {
			v := float64(i)
			if reverse {
				v = float64(k - 1 - i)
			}
			t[i] = plot.Tick{Value: v, Label: name}
		}
		return t
	}
	p.X.Tick.Marker, p.Y.Tick.Marker = ticks(colNames, false), ticks(rowNames, true)
	return p
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
	LossFile     = "loss.png"     // PlotFile("loss")
	AccuracyFile = "accuracy.png" // PlotFile("accuracy")
)

// History is a training callback redrawing dir/loss.png and dir/accuracy.png after every
// epoch, from the epochs before the run (a resumed run's history, or nil) and those it sees.
// It draws on a goroutine of its own, so the training loop never waits for a plot (the latest
// epoch wins when epochs end faster than plots are drawn); OnTrainEnd and Close wait for the
// last drawing and report a failure.
func History(dir string, before []train.EpochRecord) *HistoryPlots {
	return HistoryOf(dir, before, "loss", "accuracy")
}

// HistoryOf is History for any logs: dir/PlotFile(metric) for each metric, with its val_ twin
// (a model of any outputs draws its loss, each output's loss and each compiled metric).
func HistoryOf(dir string, before []train.EpochRecord, metrics ...string) *HistoryPlots {
	h := &HistoryPlots{dir: dir, metrics: slices.Clone(metrics), history: slices.Clone(before),
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	go h.draw()
	return h
}

// PlotFile is the file HistoryOf draws metric into: its name with anything but letters,
// digits, '_', '-' and '.' replaced, so that no log name leaves the run directory.
func PlotFile(metric string) string {
	safe := []rune(metric)
	for i, r := range safe {
		if !(r == '_' || r == '-' || r == '.' || unicode.IsLetter(r) || unicode.IsDigit(r)) {
			safe[i] = '_'
		}
	}
	name := string(safe)
	if name == "" || strings.Trim(name, ".") == "" {
		name = "_" + name
	}
	return name + ".png"
}

// HistoryPlots is the callback History returns.
type HistoryPlots struct {
	dir     string
	metrics []string
	wake    chan struct{}
	done    chan struct{}

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
		var err error
		for _, m := range h.metrics {
			if err = PlotHistory(filepath.Join(h.dir, PlotFile(m)), history, m, "Train history: "+m); err != nil {
				break
			}
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
