// Package classify is the one pipeline from photos to labels that `emotions predict`,
// `emotions evaluate` and `emotions serve` share: preprocess (decode, find the face, crop),
// normalise as the model expects, run the model in batches, and name the class. It also
// scores predictions against labels (Evaluate, the report `emotions evaluate` prints).
package classify

import (
	"context"
	"errors"
	"fmt"

	"github.com/emotions-dev/emotions/preprocess"
	"github.com/emotions-dev/emotions/tfgraph"
)

// Predictor runs the model on n images (n * Input.Values() normalised floats) and returns
// n rows of class probabilities.
type Predictor func(ctx context.Context, x []float32, n int) ([]float32, error)

// Classifier turns images into Predictions. Its fields may be set directly (the server
// gives a Predictor that goes through its request batcher); New makes one for a model.
type Classifier struct {
	Prep      *preprocess.Preprocessor
	Input     preprocess.Input
	Classes   []string
	Predict   Predictor
	BatchSize int // images per Predict call; 0 = 64
}

// New makes the classifier of a loaded model: its preprocessor and input from emotions.json,
// predictions from its serve signature.
func New(m *tfgraph.Model, opts preprocess.Options) (*Classifier, error) {
	prep, err := preprocess.New(opts)
	if err != nil {
		return nil, err
	}
	predict := func(_ context.Context, x []float32, n int) ([]float32, error) { return m.Predict(x, n) }
	return &Classifier{Prep: prep, Input: preprocess.InputOf(m.Meta), Classes: m.Meta.Classes, Predict: predict}, nil
}

// Image is a photo held in memory, with the name its Prediction carries.
type Image struct {
	Name string
	Data []byte
}

// Files classifies image files (read and preprocessed on o.Workers goroutines); a file that
// cannot be used gets a Prediction with its error. The preprocessing results are returned
// too, parallel to the predictions (for drawing the face boxes, say).
func (c *Classifier) Files(ctx context.Context, paths []string, o preprocess.LoadOptions) ([]Prediction, []preprocess.Result, error) {
	results := preprocess.LoadFiles(paths, c.Prep, o)
	preds, err := c.Results(ctx, results)
	return preds, results, err
}

// Images classifies photos held in memory.
func (c *Classifier) Images(ctx context.Context, images []Image) ([]Prediction, error) {
	results := make([]preprocess.Result, len(images))
	for i, img := range images {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		results[i] = c.Prep.Bytes(img.Name, img.Data)
	}
	return c.Results(ctx, results)
}

// Results classifies preprocessed images; rejected ones keep their error.
func (c *Classifier) Results(ctx context.Context, results []preprocess.Result) ([]Prediction, error) {
	var crops [][]uint8
	for _, r := range results {
		if r.Err == nil {
			crops = append(crops, r.Crop)
		}
	}
	probs, err := c.predictCrops(ctx, crops)
	if err != nil {
		return nil, err
	}
	out := make([]Prediction, len(results))
	row := 0
	for i, r := range results {
		var p []float32
		if r.Err == nil {
			p, row = probs[row], row+1
		}
		out[i] = NewPrediction(r.File, r, p, c.Classes)
	}
	return out, nil
}

// predictCrops normalises crops and runs them through Predict in batches: one row of
// probabilities per crop.
func (c *Classifier) predictCrops(ctx context.Context, crops [][]uint8) ([][]float32, error) {
	if c.Predict == nil {
		return nil, errors.New("classify: no predictor")
	}
	batch := c.BatchSize
	if batch <= 0 {
		batch = 64
	}
	k, values := len(c.Classes), c.Input.Values()
	out := make([][]float32, 0, len(crops))
	x := make([]float32, min(batch, len(crops))*values)
	for at := 0; at < len(crops); at += batch {
		n := min(batch, len(crops)-at)
		for i, crop := range crops[at : at+n] {
			if len(crop) != c.Input.CropBytes() {
				return nil, fmt.Errorf("classify: crop of %d bytes for a %dx%d model", len(crop), c.Input.Width, c.Input.Height)
			}
			c.Input.Normalize(crop, x[i*values:(i+1)*values])
		}
		p, err := c.Predict(ctx, x[:n*values], n)
		if err != nil {
			return nil, err
		}
		if len(p) != n*k {
			return nil, fmt.Errorf("classify: the model returned %d values for %d images of %d classes", len(p), n, k)
		}
		for i := 0; i < n; i++ {
			out = append(out, p[i*k:(i+1)*k:(i+1)*k])
		}
	}
	return out, nil
}
