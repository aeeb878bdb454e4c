package tfgraph

// #include <stdlib.h>
// #include <tensorflow/c/c_api.h>
import "C"

import (
	"runtime"
	"unsafe"

	tf "github.com/wamuir/graft/tensorflow"
)

// graftTensor is the layout of github.com/wamuir/graft v0.10.0's Tensor (its fields are
// unexported; TestFreeMatchesGraftLayout checks this against TensorFlow's own view).
type graftTensor struct {
	c     *C.TF_Tensor
	shape []int64
}

// Free releases tensors' TensorFlow buffers now. graft frees a tensor's buffer only when Go's
// garbage collector finds the *tf.Tensor unreachable, and the collector does not see
// TensorFlow's memory: a training loop making a 5 MB batch tensor a step, or holding a 640 MB
// snapshot of InceptionResNetV2's variables for one checkpoint, can pile up gigabytes of
// buffers that nothing asks Go to collect. A freed tensor must not be used again; nil tensors
// and tensors already freed are skipped.
func Free(tensors ...*tf.Tensor) {
	for _, t := range tensors {
		if t == nil {
			continue
		}
		g := (*graftTensor)(unsafe.Pointer(t))
		if g.c == nil {
			continue
		}
		runtime.SetFinalizer(t, nil)
		C.TF_DeleteTensor(g.c)
		g.c = nil
	}
}

// FreeAll frees every tensor of a map (a signature's outputs, say).
func FreeAll(m map[string]*tf.Tensor) {
	for _, t := range m {
		Free(t)
	}
}

// tensorBytes is TensorFlow's size of t's buffer, read through the graft layout Free relies
// on (for its test).
func tensorBytes(t *tf.Tensor) int {
	return int(C.TF_TensorByteSize((*graftTensor)(unsafe.Pointer(t)).c))
}

func unsafeTensor(t *tf.Tensor) unsafe.Pointer { return unsafe.Pointer(t) }
