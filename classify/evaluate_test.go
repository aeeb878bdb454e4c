package classify

import (
	"math"
	"testing"
)

func TestWilson(t *testing.T) {
	// By hand: p = 0.8125, n = 240, z = 1.96: centre (p + z²/2n)/(1 + z²/n) = 0.80757,
	// half-width z·sqrt(p(1-p)/n + z²/4n²)/(1 + z²/n) = 0.04924.
	ci := Wilson(195, 240)
	if math.Abs(ci[0]-0.75833) > 1e-4 || math.Abs(ci[1]-0.85681) > 1e-4 {
		t.Fatalf("Wilson(195, 240) = %v", ci)
	}
	if ci := Wilson(0, 10); ci[0] != 0 || ci[1] <= 0 {
		t.Fatalf("Wilson(0, 10) = %v", ci)
	}
}

// Score counts the confusion matrix (rows: true, columns: predicted), per-class precision,
// recall and F1, and Keras' categorical cross-entropy.
func TestScore(t *testing.T) {
	probs := [][]float32{{0.9, 0.1}, {0.2, 0.8}, {0.6, 0.4}, {0.5, 0.5}}
	r := Score(probs, []int32{0, 1, 1, 1}, []string{"a", "b"}, nil)
	if r.N != 4 || r.Accuracy != 0.5 || r.Confusion[0][0] != 1 || r.Confusion[1][0] != 2 || r.Confusion[1][1] != 1 {
		t.Fatalf("report %+v", r)
	}
	if pc := r.PerClass["a"]; math.Abs(pc.Precision-1.0/3) > 1e-12 || pc.Recall != 1 || pc.N != 1 {
		t.Errorf("class a: %+v", pc)
	}
	want := -(math.Log(0.9) + math.Log(0.8) + math.Log(0.4) + math.Log(0.5)) / 4
	if math.Abs(r.Loss-want) > 1e-6 {
		t.Errorf("loss %v, want %v", r.Loss, want)
	}
}
