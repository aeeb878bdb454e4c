package tfgraph

import (
	"testing"

	tf "github.com/wamuir/graft/tensorflow"
)

// Free reaches graft's TF_Tensor pointer through a mirror of its struct: TensorFlow's own
// size of the buffer found that way must be the tensor's, and freeing twice is harmless.
func TestFreeMatchesGraftLayout(t *testing.T) {
	x, err := Float32Tensor(make([]float32, 6), 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got := tensorBytes(x); got != 24 {
		t.Fatalf("TF_TensorByteSize through the mirrored layout: %d, want 24", got)
	}
	s, _ := tf.NewTensor([]int64{1, 2, 3, 4, 5})
	if got := tensorBytes(s); got != 40 {
		t.Fatalf("TF_TensorByteSize of 5 int64: %d, want 40", got)
	}
	Free(x, s, nil)
	Free(x)
	if (*graftTensor)(unsafeTensor(x)).c != nil {
		t.Fatal("a freed tensor still points at its buffer")
	}
}
