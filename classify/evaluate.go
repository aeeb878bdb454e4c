package classify

import (
	"context"
	"fmt"
	"math"

	"github.com/emotions-dev/emotions/preprocess"
)

// Report is `emotions evaluate --json` (a contract other tools rely on: keep the keys).
type Report struct {
	Accuracy     float64                 `json:"accuracy"`
	Loss         float64                 `json:"loss"`
	N            int                     `json:"n"`
	AccuracyCI95 [2]float64              `json:"accuracy_ci95"`
	Classes      []string                `json:"classes"`
	PerClass     map[string]ClassMetrics `json:"per_class"`
	Confusion    [][]int                 `json:"confusion"` // rows: true class, columns: predicted
	FacesFound   int                     `json:"faces_found"`
	Fallbacks    int                     `json:"fallbacks"`
	Rejected     []RejectedFile          `json:"rejected"`
}

// ClassMetrics are one class's precision, recall and F1 over n true examples.
type ClassMetrics struct {
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	N         int     `json:"n"`
}

// RejectedFile is an image that could not be used, with the reason.
type RejectedFile struct {
	File  string `json:"file"`
	Error string `json:"error"`
}

// Evaluate predicts every image of d (as the model expects it, no augmentation) and scores
// the predictions against d's labels: the report `emotions evaluate` prints.
func (c *Classifier) Evaluate(ctx context.Context, d *preprocess.Dataset) (*Report, error) {
	if d.Height != c.Input.Height || d.Width != c.Input.Width {
		return nil, fmt.Errorf("evaluate: the data holds %dx%d crops, the model takes %dx%d images", d.Width, d.Height, c.Input.Width, c.Input.Height)
	}
	if len(d.Classes) != len(c.Classes) {
		return nil, fmt.Errorf("evaluate: the data has %d classes, the model %d", len(d.Classes), len(c.Classes))
	}
	probs, err := c.predictCrops(ctx, d.Crops)
	if err != nil {
		return nil, err
	}
	return Score(probs, d.Labels, c.Classes, d), nil
}

// Score builds the report of predicted probabilities (one row per example) against the true
// labels; d, if not nil, supplies the preprocessing counts and rejected files.
func Score(probs [][]float32, labels []int32, classes []string, d *preprocess.Dataset) *Report {
	k, n := len(classes), len(labels)
	r := &Report{N: n, Classes: classes, PerClass: map[string]ClassMetrics{}, Rejected: []RejectedFile{}}
	if d != nil {
		r.FacesFound, r.Fallbacks = d.FacesFound, d.Fallbacks
		for _, rej := range d.Rejected {
			r.Rejected = append(r.Rejected, RejectedFile{File: rej.File, Error: rej.Err.Error()})
		}
	}
	r.Confusion = make([][]int, k)
	for i := range r.Confusion {
		r.Confusion[i] = make([]int, k)
	}
	lossSum := 0.0
	for i, y := range labels {
		r.Confusion[y][argmax(probs[i])]++
		lossSum += crossEntropy(probs[i], int(y))
	}
	correct := 0
	for c := 0; c < k; c++ {
		correct += r.Confusion[c][c]
	}
	if n > 0 {
		r.Accuracy = float64(correct) / float64(n)
		r.Loss = lossSum / float64(n)
	}
	r.AccuracyCI95 = Wilson(correct, n)
	for c, name := range classes {
		tp, predicted, actual := r.Confusion[c][c], 0, 0
		for j := 0; j < k; j++ {
			predicted += r.Confusion[j][c]
			actual += r.Confusion[c][j]
		}
		cm := ClassMetrics{N: actual, Precision: ratio(tp, predicted), Recall: ratio(tp, actual)}
		if cm.Precision+cm.Recall > 0 {
			cm.F1 = 2 * cm.Precision * cm.Recall / (cm.Precision + cm.Recall)
		}
		r.PerClass[name] = cm
	}
	return r
}

// crossEntropy is Keras' categorical_crossentropy of one probability row against a one-hot
// label: probabilities renormalised to sum 1 and clipped to [1e-7, 1-1e-7] (backend epsilon).
func crossEntropy(row []float32, label int) float64 {
	sum := 0.0
	for _, p := range row {
		sum += float64(p)
	}
	p := float64(row[label]) / sum
	const eps = 1e-7
	p = math.Min(math.Max(p, eps), 1-eps)
	return -math.Log(p)
}

func argmax(row []float32) int {
	best := 0
	for i, v := range row {
		if v > row[best] {
			best = i
		}
	}
	return best
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Wilson is the 95% Wilson score interval for k successes in n trials: unlike the normal
// approximation it stays inside [0, 1] and behaves at small n (a 240-image test set).
func Wilson(k, n int) [2]float64 {
	if n == 0 {
		return [2]float64{0, 1}
	}
	const z = 1.959963984540054
	p, nf := float64(k)/float64(n), float64(n)
	den := 1 + z*z/nf
	centre := (p + z*z/(2*nf)) / den
	half := z * math.Sqrt(p*(1-p)/nf+z*z/(4*nf*nf)) / den
	return [2]float64{math.Max(0, centre-half), math.Min(1, centre+half)}
}
