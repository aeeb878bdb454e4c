// Command twoinputs trains a Keras model of two inputs (a 32x32x3 image and 4 float features)
// and two outputs (a 3-class softmax with categorical cross-entropy and accuracy, a linear score
// with MSE and MAE, loss_weights 1.0 and 0.5) from Go as Keras' fit does, with
// ReduceLROnPlateau on val_label_accuracy:
//
//	go run ./examples/twoinputs [-dir DIR]
//
// main_test.go checks every History value (each output's loss and metric included) against
// Keras' own fit.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/emotions-dev/emotions/arrays"
	"github.com/emotions-dev/emotions/internal/example"
	"github.com/emotions-dev/emotions/tfgraph"
	"github.com/emotions-dev/emotions/train"
)

func main() {
	dir := flag.String("dir", "", "working directory (default: a new one in the temp directory)")
	flag.Parse()
	if err := example.Main("twoinputs", *dir, run); err != nil {
		fmt.Fprintln(os.Stderr, "twoinputs:", err)
		os.Exit(1)
	}
}

// run trains the example in dir: dir/go/history.csv is the History, as Keras' CSVLogger writes it.
func run(dir string, log io.Writer) (*train.Summary, error) {
	// Setup does what examples/tabular spells out: make, export, load, read the archives.
	m, trainData, validData, err := example.Setup(dir, example.SourceDir(), "", log)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	// A batch from Go slices, as a program without .npz files would build one: every input and
	// target by name, checked against the model before anything reaches TensorFlow.
	if err := predictOne(m); err != nil {
		return nil, err
	}
	src, err := train.NewArraySource(trainData, 32, false, 0)
	if err != nil {
		return nil, err
	}
	reduce := train.DefaultReduceLROnPlateauConfig()
	reduce.Monitor, reduce.Mode, reduce.Factor, reduce.Patience = "val_label_accuracy", train.ModeMax, 0.5, 1
	csvLog, err := example.CSVLogger(dir)
	if err != nil {
		return nil, err
	}
	return train.Fit(context.Background(), m, src, validData, train.WithEpochs(3), train.WithValidationBatchSize(32),
		train.WithReduceLROnPlateau(reduce), train.WithCallbacks(csvLog), train.WithLog(log))
}

// predictOne runs the untrained model on one blank row built from Go slices.
func predictOne(m *tfgraph.Model) error {
	image, err := arrays.Of(make([]float32, 32*32*3), 1, 32, 32, 3)
	if err != nil {
		return err
	}
	meta, err := arrays.Of([]float32{0.1, -0.2, 0.3, 0}, 1, 4)
	if err != nil {
		return err
	}
	out, err := m.PredictArrays(map[string]arrays.Array{"image": image, "meta": meta})
	if err != nil {
		return err
	}
	if len(out["label"].Values.([]float32)) != 3 || len(out["score"].Values.([]float32)) != 1 {
		return fmt.Errorf("outputs %v", out)
	}
	return nil
}
