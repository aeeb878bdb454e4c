// Command text trains a Keras text classifier (int32 token ids, Embedding + pooling, sparse
// categorical cross-entropy, accuracy and a registered AUC metric) from Go as Keras' fit does,
// with EarlyStopping on val_auc (Keras' auto mode: AUC goes up), which ends the 4 epochs asked after 3:
//
//	go run ./examples/text [-dir DIR]
//
// main_test.go checks every History value and EarlyStopping's decision against Keras' own fit.
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
	if err := example.Main("text", *dir, run); err != nil {
		fmt.Fprintln(os.Stderr, "text:", err)
		os.Exit(1)
	}
}

// run trains the example in dir: dir/go/history.csv is the History, as Keras' CSVLogger writes it.
func run(dir string, log io.Writer) (*train.Summary, error) {
	here := example.SourceDir()
	if err := example.Prepare(dir, filepath.Join(here, "model.py")); err != nil {
		return nil, err
	}
	// SparseAUC is the team's own metric: the exporter imports textmetrics to load the model.
	modelDir, err := example.Export(dir, here, "textmetrics", log)
	if err != nil {
		return nil, err
	}
	m, err := tfgraph.Load(modelDir, tfgraph.Options{})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	trainData, err := train.LoadArrayData(filepath.Join(dir, "train.npz"), m.Inputs(), m.Targets(), arrays.Limits{})
	if err != nil {
		return nil, err
	}
	validData, err := train.LoadArrayData(filepath.Join(dir, "valid.npz"), m.Inputs(), m.Targets(), arrays.Limits{})
	if err != nil {
		return nil, err
	}
	src, err := train.NewArraySource(trainData, 32, false, 0)
	if err != nil {
		return nil, err
	}
	stop := train.DefaultEarlyStoppingConfig()
	stop.Monitor, stop.Patience, stop.MinDelta = "val_auc", 0, 0.01
	csvLog, err := example.CSVLogger(dir)
	if err != nil {
		return nil, err
	}
	return train.Fit(context.Background(), m, src, validData, train.WithEpochs(4), train.WithValidationBatchSize(32),
		train.WithEarlyStopping(stop), train.WithCallbacks(csvLog), train.WithLog(log))
}
