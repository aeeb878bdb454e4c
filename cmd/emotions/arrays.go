package main

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/emotions-dev/emotions/arrays"
	"github.com/emotions-dev/emotions/internal/termui"
	"github.com/emotions-dev/emotions/plots"
	"github.com/emotions-dev/emotions/recipe"
	"github.com/emotions-dev/emotions/savedmodel"
	"github.com/emotions-dev/emotions/tfgraph"
	"github.com/emotions-dev/emotions/train"
)

// A model of any inputs and outputs (new-model --from model.keras without --classes) trains,
// evaluates and predicts on NumPy archives whose arrays are named as its inputs and outputs.

// isArrayFile reports a path naming a NumPy archive rather than class folders.
func isArrayFile(path string) bool { return strings.EqualFold(filepath.Ext(path), ".npz") }

// needArrays refuses class folders for a generic model and archives for the image classifier.
func needArrays(m *tfgraph.Model, flag, path string) error {
	switch {
	case m.Generic() && !isArrayFile(path):
		return usageError("--%s %s: the model takes named arrays (inputs %s): give a NumPy .npz archive whose arrays are named as its inputs and outputs",
			flag, path, savedmodel.Names(m.Inputs()))
	case !m.Generic() && isArrayFile(path):
		return usageError("--%s %s: the model is an image classifier: give class folders (a .npz is for a model of any inputs: new-model --from model.keras)", flag, path)
	}
	return nil
}

// runTrainArrays is `train` for a generic model: Keras' fit on arrays, with the recipe's
// callbacks, history.csv (CSVLogger), history.json, best/ and a resumable last/.
func runTrainArrays(c *cli.Context, model *tfgraph.Model, spec trainPaths, resume *train.State, loadModel time.Duration) error {
	for flag, path := range map[string]string{"train": spec.train, "valid": spec.valid} {
		if err := needArrays(model, flag, path); err != nil {
			return err
		}
	}
	for _, flag := range []string{"augment", "class-weights", "person-weights", "soft-targets", "valid-subset", "label-smoothing", "test", "steps-per-epoch", "remainder"} {
		if c.IsSet(flag) {
			return usageError("--%s is for the image classifier; a model of any inputs trains on its arrays as compiled", flag)
		}
	}
	start := time.Now()
	trainData, err := train.LoadArrayData(spec.train, model.Inputs(), model.Targets(), arrays.Limits{})
	if err != nil {
		return err
	}
	validData, err := train.LoadArrayData(spec.valid, model.Inputs(), model.Targets(), arrays.Limits{})
	if err != nil {
		return err
	}
	reading := time.Since(start)
	src, err := train.NewArraySource(trainData, spec.cfg.BatchSize, !spec.cfg.NoShuffle, spec.cfg.Seed)
	if err != nil {
		return fmt.Errorf("%s: %w", spec.train, err)
	}
	logOut := os.Stdout
	if c.Bool("json") {
		logOut = os.Stderr
	}
	opts, err := spec.cfg.FitOptions(spec.out, resume != nil, logOut)
	if err != nil {
		return usageError("%v", err)
	}
	trainRows, _ := trainData.Rows()
	validRows, _ := validData.Rows()
	settings := recipe.RecordDataPaths(spec.out, map[string]string{"train": spec.train, "valid": spec.valid})
	settings["model"], settings["train_rows"], settings["valid_rows"] = spec.model, trainRows, validRows
	var history []train.EpochRecord
	if resume != nil {
		settings["model"] = resume.Settings["model"]
		history = resume.History
		opts = append(opts, train.WithResume(resume))
		if err := recipe.CheckResumedData(resume, "train", spec.train, trainRows); err != nil {
			return err
		}
	}
	var logs []string
	for _, l := range model.Meta.Logs {
		logs = append(logs, l.Name)
	}
	curves := plots.HistoryOf(spec.out, history, logs...)
	defer curves.Close() // an interrupted or failed run still gets the plots of its epochs
	opts = append(opts, train.WithSettings(settings), train.WithCallbacks(curves))
	if bar := termui.EpochBar(os.Stderr, spec.cfg.Epochs); bar != nil {
		opts = append(opts, train.WithCallbacks(bar))
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	summary, err := train.Fit(ctx, model, src, validData, opts...)
	if errors.Is(err, train.ErrInterrupted) {
		return interrupted(spec.out)
	}
	if err != nil {
		return err
	}
	summary.Timing.LoadModelS, summary.Timing.PreprocessS = loadModel.Seconds(), reading.Seconds()
	if err := train.WriteSummary(spec.out, summary); err != nil {
		return err
	}
	if c.Bool("json") {
		return printJSON(summary)
	}
	fmt.Printf("%s; best epoch %d", summary.StopReason, summary.BestEpoch)
	if summary.BestValLoss != nil {
		fmt.Printf(" (val_loss %.4f)", *summary.BestValLoss)
	}
	files := make([]string, len(logs))
	for i, l := range logs {
		files[i] = filepath.Join(spec.out, plots.PlotFile(l))
	}
	fmt.Printf("\nbest model: %s\nhistory: %s\nplots: %s\n", summary.Best, train.Layout(spec.out).CSV(), strings.Join(files, ", "))
	return nil
}

// evaluateArrays is `evaluate --data x.npz`: Keras' model.evaluate over the archive, its logs.
func evaluateArrays(c *cli.Context, model *tfgraph.Model, path string) error {
	if err := needArrays(model, "data", path); err != nil {
		return err
	}
	data, err := train.LoadArrayData(path, model.Inputs(), model.Targets(), arrays.Limits{})
	if err != nil {
		return err
	}
	logs, err := train.EvaluateArrays(c.Context, model, data, arrayBatchSize(c))
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return printJSON(logs)
	}
	for _, k := range train.LogNames(logs) {
		fmt.Printf("%s: %.6g\n", k, logs[k])
	}
	return nil
}

// predictArrays is `predict --data x.npz --out y.npz`: every output of the serving signature for
// every row, saved under the output names.
func predictArrays(c *cli.Context, model *tfgraph.Model, path, out string) error {
	if !isArrayFile(path) {
		return usageError("--data %s: want a NumPy .npz archive named as the model's inputs", path)
	}
	if !isArrayFile(out) {
		return usageError("predict --data needs --out FILE.npz for the outputs")
	}
	data, err := train.LoadInputArrays(path, model.Inputs(), model.Outputs(), arrays.Limits{})
	if err != nil {
		return err
	}
	outputs, err := train.PredictArrays(c.Context, model, data, arrayBatchSize(c))
	if err != nil {
		return err
	}
	if err := arrays.WriteNPZ(out, outputs); err != nil {
		return err
	}
	rows, _ := data.Rows()
	fmt.Fprintf(os.Stderr, "%d rows: %s written to %s\n", rows, strings.Join(slices.Sorted(maps.Keys(outputs)), ", "), out)
	return nil
}

// arrayBatchSize is --batch-size, else Keras' evaluate and predict default, 32: a per-output
// loss is Keras' mean of batch means, so the batch size changes it, as it does in Keras.
func arrayBatchSize(c *cli.Context) int {
	if c.IsSet("batch-size") {
		return c.Int("batch-size")
	}
	return 32
}
