// Command predict classifies from Go: a photo (decoded, face found, cropped and normalised as
// the model's emotions.json says, by the same pipeline as `emotions predict`) and a tensor the
// program made itself (fed to the model's serve signature as it is).
//
//	source .tflib/env.sh
//	go run ./examples/predict --model runs/demo data/faces4/test/sad/Alain_Cervantes_0001.jpg
//
// --model takes a model directory or a run directory (its best/ model).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/emotions-dev/emotions/classify"
	"github.com/emotions-dev/emotions/preprocess"
	"github.com/emotions-dev/emotions/tfgraph"
	"github.com/emotions-dev/emotions/train"
)

func main() {
	model := flag.String("model", "", "model directory (from `emotions new-model`) or run directory")
	flag.Parse()
	if *model == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: predict --model DIR PHOTO...")
		os.Exit(2)
	}
	if err := run(context.Background(), *model, flag.Args(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "predict:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, modelDir string, photos []string, out io.Writer) error {
	m, err := tfgraph.Load(train.ResolveModel(modelDir), tfgraph.Options{Device: "auto"})
	if err != nil {
		return err
	}
	defer m.Close()

	// Photos: the whole pipeline. A file that cannot be used gets its own error.
	c, err := classify.New(m, preprocess.OptionsFor(m.Meta))
	if err != nil {
		return err
	}
	preds, _, err := c.Files(ctx, photos, preprocess.LoadOptions{})
	if err != nil {
		return err
	}
	for _, p := range preds {
		if p.Error != nil {
			fmt.Fprintf(out, "%s: %s\n", p.File, *p.Error)
			continue
		}
		fmt.Fprintf(out, "%s: %s (%.2f)\n", p.File, *p.Label, p.Probabilities[*p.Label])
	}

	// A tensor: n images of the model's input shape, already normalised (here one mid-gray
	// image), straight into the serve signature.
	h, w, channels := m.InputShape()
	x := make([]float32, h*w*channels)
	in := preprocess.InputOf(m.Meta)
	gray := make([]uint8, in.CropBytes())
	for i := range gray {
		gray[i] = 128
	}
	in.Normalize(gray, x)
	probs, err := m.Predict(x, 1)
	if err != nil {
		return err
	}
	parts := make([]string, len(probs))
	for i, p := range probs {
		parts[i] = fmt.Sprintf("%s %.2f", m.Meta.Classes[i], p)
	}
	fmt.Fprintf(out, "a gray %dx%dx%d tensor: %s\n", h, w, channels, strings.Join(parts, ", "))
	return nil
}
