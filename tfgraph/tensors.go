package tfgraph

import (
	"bytes"
	"fmt"
	"unsafe"

	tf "github.com/wamuir/graft/tensorflow"
)

// Float32Tensor copies DATA into a new float32 tensor of SHAPE with one memcpy (graft's
// NewTensor walks nested slices by reflection, far too slow for image batches).
func Float32Tensor(data []float32, shape ...int64) (*tf.Tensor, error) {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	if int64(len(data)) != n {
		return nil, fmt.Errorf("tensor data has %d values, shape %v needs %d", len(data), shape, n)
	}
	var raw []byte
	if len(data) > 0 {
		raw = unsafe.Slice((*byte)(unsafe.Pointer(&data[0])), 4*len(data))
	}
	return tf.ReadTensor(tf.Float, shape, bytes.NewReader(raw))
}

// Float32s returns a float32 tensor's values, flattened.
func Float32s(t *tf.Tensor) ([]float32, error) {
	if t.DataType() != tf.Float {
		return nil, fmt.Errorf("tensor is %s, want float32", dtypeName(t.DataType()))
	}
	n := int64(1)
	for _, d := range t.Shape() {
		n *= d
	}
	out := make([]float32, n)
	if n == 0 {
		return out, nil
	}
	buf := bytes.NewBuffer(unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), 4*n)[:0])
	if _, err := t.WriteContentsTo(buf); err != nil {
		return nil, err
	}
	return out, nil
}

// Scalar reads a numeric scalar tensor as float64.
func Scalar(t *tf.Tensor) (float64, error) {
	switch v := t.Value().(type) {
	case float32:
		return float64(v), nil
	case float64:
		return v, nil
	case int64:
		return float64(v), nil
	case int32:
		return float64(v), nil
	}
	return 0, fmt.Errorf("tensor of shape %v is not a numeric scalar", t.Shape())
}
