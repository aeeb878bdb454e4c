package classify_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/emotions-dev/emotions/classify"
	"github.com/emotions-dev/emotions/internal/testutil"
	"github.com/emotions-dev/emotions/preprocess"
	"github.com/emotions-dev/emotions/tfgraph"
)

// exampleModel is a model made by `emotions new-model --backbone tiny`.
var exampleModel string

func TestMain(m *testing.M) { os.Exit(testutil.RunWithTinyModel(m, &exampleModel)) }

// Photos to labels, as `emotions predict` does: each file decoded, its face found, cropped
// and normalised as the model's emotions.json says, then classified in batches. A file that
// cannot be used gets its own error; the others are still classified.
func ExampleClassifier_Files() {
	m, err := tfgraph.Load(exampleModel, tfgraph.Options{Device: "cpu"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	c, err := classify.New(m, preprocess.OptionsFor(m.Meta))
	if err != nil {
		fmt.Println(err)
		return
	}
	photos := []string{"../data/faces4/test/sad/Alain_Cervantes_0001.jpg", "no-such-photo.jpg"}
	preds, _, err := c.Files(context.Background(), photos, preprocess.LoadOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range preds {
		if p.Error != nil {
			fmt.Printf("%s: error\n", filepath.Base(p.File))
			continue
		}
		sum := float32(0)
		for _, v := range p.Probabilities {
			sum += v
		}
		fmt.Printf("%s: a label, %d probabilities summing to %.2f, face found: %v\n",
			filepath.Base(p.File), len(p.Probabilities), sum, p.Face != nil)
	}
	// Output:
	// Alain_Cervantes_0001.jpg: a label, 4 probabilities summing to 1.00, face found: true
	// no-such-photo.jpg: error
}

// Evaluate scores a model on class folders: the report `emotions evaluate` prints.
func ExampleClassifier_Evaluate() {
	m, err := tfgraph.Load(exampleModel, tfgraph.Options{Device: "cpu"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	c, err := classify.New(m, preprocess.OptionsFor(m.Meta))
	if err != nil {
		fmt.Println(err)
		return
	}
	test, err := preprocess.LoadClassDirs("../data/faces4/test", m.Meta.Classes, c.Prep, preprocess.LoadOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	r, err := c.Evaluate(context.Background(), test)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.N, "images;", len(r.Confusion), "x", len(r.Confusion[0]), "confusion matrix")
	fmt.Println("accuracy within its 95% interval:", r.AccuracyCI95[0] <= r.Accuracy && r.Accuracy <= r.AccuracyCI95[1])
	// Output:
	// 240 images; 4 x 4 confusion matrix
	// accuracy within its 95% interval: true
}
