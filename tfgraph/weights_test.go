package tfgraph

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/emotions-dev/emotions/internal/testutil"
)

// `new-model --weights DIR` copies a model's variables into a new one; the output layer goes
// by class name. A model with the same classes in another order predicts the same
// probabilities, permuted; one with some new classes keeps the shared classes' logits (so
// their probability ratios), and a new class starts fresh.
func TestWeightsFromModelMatchOutputsByClass(t *testing.T) {
	src := testutil.ExportModel(t, "--backbone", "tiny", "--seed", "3", "--classes", "happy,normal,surprise")
	reordered := testutil.ExportModel(t, "--backbone", "tiny", "--seed", "4", "--classes", "surprise,happy,normal", "--weights", src)
	narrowed := testutil.ExportModel(t, "--backbone", "tiny", "--seed", "4", "--classes", "angry,happy,normal,sad", "--weights", src)

	const n = 3
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, n*80*80*3)
	for i := range x {
		x[i] = rng.Float32()
	}
	want, err := load(t, src).Predict(x, n)
	if err != nil {
		t.Fatal(err)
	}
	got, err := load(t, reordered).Predict(x, n)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		s, r := want[i*3:i*3+3], got[i*3:i*3+3] // src: happy,normal,surprise; reordered: surprise,happy,normal
		if d := maxDiff([]float32{r[1], r[2], r[0]}, s); d > 1e-5 {
			t.Fatalf("image %d: reordered classes predict %v, the source %v (diff %g)", i, r, s, d)
		}
	}
	narrow, err := load(t, narrowed).Predict(x, n)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		s, r := want[i*3:i*3+3], narrow[i*4:i*4+4] // angry,happy,normal,sad
		srcLogit := math.Log(float64(s[0]) / float64(s[1]))
		newLogit := math.Log(float64(r[1]) / float64(r[2]))
		if math.Abs(srcLogit-newLogit) > 1e-4 {
			t.Fatalf("image %d: log p(happy)/p(normal) is %.6f in the narrowed model, %.6f in the source", i, newLogit, srcLogit)
		}
	}
}
