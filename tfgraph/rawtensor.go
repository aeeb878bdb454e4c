package tfgraph

// #include <string.h>
// #include <tensorflow/c/c_api.h>
import "C"

import (
	"bytes"
	"errors"
	"fmt"
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
	// A uint16 tensor of the shape is a Go tensor owning a TF_Tensor with these bytes; its
	// TF_Tensor is swapped for one of dt holding a copy of them (the graftTensor layout, as Free).
	t, err := tf.ReadTensor(tf.Uint16, shape, bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	g := (*graftTensor)(unsafe.Pointer(t))
	var dims *C.int64_t
	if len(shape) > 0 {
		dims = (*C.int64_t)(unsafe.Pointer(&shape[0]))
	}
	half := C.TF_AllocateTensor(C.TF_DataType(dt), dims, C.int(len(shape)), C.size_t(len(raw)))
	if half == nil {
		Free(t)
		return nil, errors.New("allocate a " + dtypeName(dt) + " tensor: TensorFlow returned none")
	}
	if len(raw) > 0 {
		C.memcpy(C.TF_TensorData(half), C.TF_TensorData(g.c), C.size_t(len(raw)))
	}
	C.TF_DeleteTensor(g.c)
	g.c = half
	return t, nil
}
