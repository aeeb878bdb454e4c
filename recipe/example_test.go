package recipe_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/emotions-dev/emotions/internal/testutil"
	"github.com/emotions-dev/emotions/preprocess"
	"github.com/emotions-dev/emotions/recipe"
	"github.com/emotions-dev/emotions/tfgraph"
	"github.com/emotions-dev/emotions/train"
)

// exampleModel is a model made by `emotions new-model --backbone tiny` (80x80 RGB, 4 classes).
var exampleModel string

func TestMain(m *testing.M) { os.Exit(testutil.RunWithTinyModel(m, &exampleModel)) }

// The seed's recipe on class folders, as `emotions train` runs it: the folders preprocessed
// (faces found, cropped, resized), fed as shuffled batches, and Fit given the recipe's options
// (its callbacks, the run directory, the recipe recorded for a resume).
func ExampleConfig_FitOptions() {
	m, err := tfgraph.Load(exampleModel, tfgraph.Options{Device: "cpu"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	p, err := preprocess.New(preprocess.Options{Height: 80, Width: 80, Face: preprocess.DefaultFaceOptions()})
	if err != nil {
		fmt.Println(err)
		return
	}
	// The small validation split stands in for both sets, to keep the example quick.
	folders, err := preprocess.LoadClassDirs(filepath.Join("..", "data", "faces4", "valid"), m.Meta.Classes, p, preprocess.LoadOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg := recipe.DefaultConfig()
	cfg.Epochs, cfg.BatchSize, cfg.StepsPerEpoch = 2, 16, 3
	in := preprocess.InputOf(m.Meta)
	src, err := recipe.NewDatasetSource(folders, in, len(m.Meta.Classes), cfg.Data())
	if err != nil {
		fmt.Println(err)
		return
	}
	valid, err := recipe.DatasetValidation(folders, in, len(m.Meta.Classes))
	if err != nil {
		fmt.Println(err)
		return
	}
	run, _ := os.MkdirTemp("", "example-recipe-")
	defer os.RemoveAll(run)
	opts, err := cfg.FitOptions(run, false, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	summary, err := train.Fit(context.Background(), m, src, valid, opts...)
	if err != nil {
		fmt.Println(err)
		return
	}
	st, _ := train.LoadState(run)
	recorded, _ := recipe.FromState(st)
	_, errBest := os.Stat(filepath.Join(train.Layout(run).Best(), "saved_model.pb"))
	fmt.Println(summary.EpochsRun, "epochs of", summary.Timing.Steps/summary.EpochsRun, "steps; best/ written:", errBest == nil)
	fmt.Println("resume state records", recorded.Epochs, "epochs, batch", recorded.BatchSize)
	// Output:
	// 2 epochs of 3 steps; best/ written: true
	// resume state records 2 epochs, batch 16
}
