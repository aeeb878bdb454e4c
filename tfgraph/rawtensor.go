package tfgraph

// #include <string.h>
// #include <tensorflow/c/c_api.h>
import "C"

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"unsafe"

	tf "github.com/wamuir/graft/tensorflow"
)

// RawTensor makes a tensor of dtype dt and shape from its contents as TensorFlow lays them out
// (little-endian, row-major), for every fixed-size dtype: graft v0.10.0's ReadTensor sizes a
// tensor from its table of Go types, which has no float16 or bfloat16, and panics for them.
// raw must hold exactly the shape's elements.
func RawTensor(dt tf.DataType, shape []int64, raw []byte) (*tf.Tensor, error) {
	size := int64(C.TF_DataTypeSize(C.TF_DataType(dt)))
	if size <= 0 {
		return nil, fmt.Errorf("dtype %s has no fixed size: not a raw tensor", dtypeName(dt))
	}
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return nil, fmt.Errorf("shape %v: negative dimension", shape)
		}
		n *= d
	}
	if n*size != int64(len(raw)) {
		return nil, fmt.Errorf("%s tensor of shape %v needs %d bytes, got %d", dtypeName(dt), shape, n*size, len(raw))
	}
	if dt != tf.Half && dt != tf.Bfloat16 {
		return tf.ReadTensor(dt, shape, bytes.NewReader(raw))
	}
	// graft makes a Go tensor only through its typed constructors: an empty uint16 tensor is
	// the Go shell, whose TF_Tensor is swapped for one of dt holding raw (the graftTensor
	// layout, as Free relies on).
	shell, err := tf.ReadTensor(tf.Uint16, []int64{0}, bytes.NewReader(nil))
	if err != nil {
		return nil, err
	}
	var dims *C.int64_t
	if len(shape) > 0 {
		dims = (*C.int64_t)(unsafe.Pointer(&shape[0]))
	}
	half := C.TF_AllocateTensor(C.TF_DataType(dt), dims, C.int(len(shape)), C.size_t(len(raw)))
	if half == nil {
		Free(shell)
		return nil, errors.New("allocate a " + dtypeName(dt) + " tensor: TensorFlow returned none")
	}
	if len(raw) > 0 {
		C.memcpy(C.TF_TensorData(half), unsafe.Pointer(&raw[0]), C.size_t(len(raw)))
	}
	g := (*graftTensor)(unsafe.Pointer(shell))
	C.TF_DeleteTensor(g.c)
	g.c, g.shape = half, slices.Clone(shape)
	return shell, nil
}
