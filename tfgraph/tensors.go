package tfgraph

import (
	"bytes"
	"fmt"
	"reflect"
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
	return RawTensor(tf.Float, shape, raw)
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

// StringTensor makes a string tensor of SHAPE from its elements, row-major (any bytes: a
// TensorFlow string is a byte string).
func StringTensor(vals []string, shape ...int64) (*tf.Tensor, error) {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	if int64(len(vals)) != n {
		return nil, fmt.Errorf("tensor data has %d strings, shape %v needs %d", len(vals), shape, n)
	}
	if len(shape) == 0 {
		return tf.NewTensor(vals[0])
	}
	// graft takes strings only as nested slices (TensorFlow cannot reshape a string tensor
	// in place): one slice per dimension, sharing vals' strings.
	nested, _ := nestStrings(vals, shape)
	return tf.NewTensor(nested.Interface())
}

func nestStrings(vals []string, shape []int64) (reflect.Value, []string) {
	if len(shape) == 1 {
		return reflect.ValueOf(vals[:shape[0]]), vals[shape[0]:]
	}
	typ := reflect.TypeOf("")
	for range shape {
		typ = reflect.SliceOf(typ)
	}
	out := reflect.MakeSlice(typ, int(shape[0]), int(shape[0]))
	for i := range int(shape[0]) {
		var v reflect.Value
		v, vals = nestStrings(vals, shape[1:])
		out.Index(i).Set(v)
	}
	return out, vals
}

// Strings returns a string tensor's elements, flattened row-major.
func Strings(t *tf.Tensor) ([]string, error) {
	if t.DataType() != tf.String {
		return nil, fmt.Errorf("tensor is %s, want string", dtypeName(t.DataType()))
	}
	var out []string
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		if v.Kind() == reflect.String {
			out = append(out, v.String())
			return
		}
		for i := range v.Len() {
			walk(v.Index(i))
		}
	}
	walk(reflect.ValueOf(t.Value()))
	return out, nil
}
