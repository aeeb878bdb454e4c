// Command tabular trains a Keras regression model (8 float features, Dense layers, MSE, metric
// MAE) from Go exactly as Keras' fit does, with ReduceLROnPlateau and Keras' CSVLogger file:
//
//	go run ./examples/tabular [-dir DIR]
//
// model.py builds and compiles the model and writes its data as NumPy archives; the Go program
// exports it as compiled (emotions new-model --from model.keras), then trains it on the arrays.
// main_test.go checks every History value against Keras' own fit.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/emotions-dev/emotions/arrays"
	"github.com/emotions-dev/emotions/internal/example"
	"github.com/emotions-dev/emotions/tfgraph"
	"github.com/emotions-dev/emotions/train"
)

func main() {
	dir := flag.String("dir", "", "working directory (default: a new one in the temp directory)")
	flag.Parse()
	if err := example.Main("tabular", *dir, run); err != nil {
		fmt.Fprintln(os.Stderr, "tabular:", err)
		os.Exit(1)
	}
}

// run trains the example in dir: dir/go/history.csv is the History, as Keras' CSVLogger writes it.
func run(dir string, log io.Writer) (*train.Summary, error) {
	if err := example.Prepare(dir, filepath.Join(example.SourceDir(), "model.py")); err != nil {
		return nil, err
	}
	modelDir, err := example.Export(dir, "", "", log)
	if err != nil {
		return nil, err
	}
	m, err := tfgraph.Load(modelDir, tfgraph.Options{})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	// The archives' arrays are named as the model's input and output: features, price.
	trainData, err := train.LoadArrayData(filepath.Join(dir, "train.npz"), m.Inputs(), m.Targets(), arrays.Limits{})
	if err != nil {
		return nil, err
	}
	validData, err := train.LoadArrayData(filepath.Join(dir, "valid.npz"), m.Inputs(), m.Targets(), arrays.Limits{})
	if err != nil {
		return nil, err
	}
	src, err := train.NewArraySource(trainData, 32, false, 0) // shuffle=False, as the Keras run compared with
	if err != nil {
		return nil, err
	}
	reduce := train.DefaultReduceLROnPlateauConfig()
	reduce.Factor, reduce.Patience, reduce.MinLR = 0.5, 1, 1e-4
	csvLog, err := example.CSVLogger(dir)
	if err != nil {
		return nil, err
	}
	return train.Fit(context.Background(), m, src, validData, train.WithEpochs(3), train.WithValidationBatchSize(32),
		train.WithReduceLROnPlateau(reduce), train.WithCallbacks(csvLog), train.WithLog(log))
}
