package tfgraph_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/emotions-dev/emotions/internal/testutil"
	"github.com/emotions-dev/emotions/tfgraph"
)

// exampleModel is a model made by `emotions new-model --backbone tiny`.
var exampleModel string

func TestMain(m *testing.M) { os.Exit(testutil.RunWithTinyModel(m, &exampleModel)) }

// Predict runs the serve signature on a tensor the caller made: n images of the model's input
// shape, normalised as its emotions.json says (preprocess.Input.Normalize does it for crops).
func ExampleModel_Predict() {
	m, err := tfgraph.Load(exampleModel, tfgraph.Options{Device: "cpu"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	h, w, c := m.InputShape()
	n := 2
	x := make([]float32, n*h*w*c) // two black images
	probs, err := m.Predict(x, n)
	if err != nil {
		fmt.Println(err)
		return
	}
	k := len(m.Meta.Classes)
	for i := range n {
		sum := float32(0)
		for _, p := range probs[i*k : (i+1)*k] {
			sum += p
		}
		fmt.Printf("image %d: %d probabilities, sum %.2f\n", i, k, sum)
	}
	// Output:
	// image 0: 4 probabilities, sum 1.00
	// image 1: 4 probabilities, sum 1.00
}
