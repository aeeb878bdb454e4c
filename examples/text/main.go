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

	"github.com/emotions-dev/emotions/internal/example"
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
	// SparseAUC is the team's own metric: the exporter imports textmetrics (beside model.py) to
	// load the model. Setup does what examples/tabular spells out: make, export, load, read.
	m, trainData, validData, err := example.Setup(dir, example.SourceDir(), "textmetrics", log)
	if err != nil {
		return nil, err
	}
	defer m.Close()
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
