package tfgraph

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"

	"github.com/emotions-dev/emotions/arrays"
	"github.com/emotions-dev/emotions/savedmodel"
	tf "github.com/wamuir/graft/tensorflow"
)

// String tensors of any rank keep their elements, bytes and order.
func TestStringTensorRoundTrip(t *testing.T) {
	for _, c := range []struct {
		vals  []string
		shape []int64
	}{
		{[]string{"a"}, nil},
		{[]string{"a", "", "\xff\x00b"}, []int64{3}},
		{[]string{"a", "b", "c", "d", "e", "f"}, []int64{2, 1, 3}},
	} {
		tt, err := StringTensor(c.vals, c.shape...)
		if err != nil {
			t.Fatalf("StringTensor(%q, %v): %v", c.vals, c.shape, err)
		}
		got, err := Strings(tt)
		if err != nil || fmt.Sprint(tt.Shape()) != fmt.Sprint(c.shape) || fmt.Sprintf("%q", got) != fmt.Sprintf("%q", c.vals) {
			t.Errorf("StringTensor(%q, %v) = %v %q (%v)", c.vals, c.shape, tt.Shape(), got, err)
		}
	}
	if _, err := StringTensor([]string{"a"}, 2); err == nil {
		t.Error("StringTensor took 1 string for shape [2]")
	}
}

// Every array dtype goes into a tensor and comes back out as it was, through arrays.Bytes
// both ways: the same bytes, the same shape, a scalar and an empty array included.
func TestArrayTensorRoundTrip(t *testing.T) {
	for _, a := range []arrays.Array{
		{DType: arrays.Float16, Shape: []int64{2}, Values: []uint16{0x3c00, 0xc001}},
		{DType: arrays.BFloat16, Shape: []int64{1, 2}, Values: []uint16{0x3f80, 0x8001}},
		{DType: arrays.Float32, Shape: []int64{2, 2}, Values: []float32{1.5, -2, 0, 3.25e-7}},
		{DType: arrays.Float64, Shape: []int64{}, Values: []float64{-1e300}},
		{DType: arrays.Int8, Shape: []int64{3}, Values: []int8{-128, 0, 127}},
		{DType: arrays.Int16, Shape: []int64{2}, Values: []int16{-32768, 0x1234}},
		{DType: arrays.Int32, Shape: []int64{2, 0}, Values: []int32{}},
		{DType: arrays.Int64, Shape: []int64{2}, Values: []int64{-1 << 63, 0x0102030405060708}},
		{DType: arrays.Uint8, Shape: []int64{2}, Values: []uint8{0, 255}},
		{DType: arrays.Uint16, Shape: []int64{2}, Values: []uint16{0xffff, 0x0102}},
		{DType: arrays.Bool, Shape: []int64{3}, Values: []bool{true, false, true}},
		{DType: arrays.String, Shape: []int64{2}, Values: []string{"a", "\xff\x00b"}},
	} {
		t.Run(string(a.DType), func(t *testing.T) {
			tt, err := ArrayTensor(savedmodel.Tensor{DType: string(a.DType), Shape: a.Shape}, a)
			if err != nil {
				t.Fatal(err)
			}
			defer Free(tt)
			got, err := ToArray(tt)
			if err != nil {
				t.Fatal(err)
			}
			if got.DType != a.DType || fmt.Sprint(got.Shape) != fmt.Sprint(a.Shape) || !reflect.DeepEqual(got.Values, a.Values) {
				t.Errorf("got %+v, want %+v", got, a)
			}
		})
	}
}

// RawTensor builds the half types graft's ReadTensor panics on, with TensorFlow's dtype, and
// refuses contents that do not fill the shape exactly.
func TestRawTensor(t *testing.T) {
	for _, dt := range []tf.DataType{tf.Half, tf.Bfloat16} {
		tt, err := RawTensor(dt, []int64{2, 1}, []byte{0x00, 0x3c, 0x01, 0xc0})
		if err != nil {
			t.Fatal(err)
		}
		if tt.DataType() != dt || fmt.Sprint(tt.Shape()) != "[2 1]" {
			t.Errorf("%s: got a %s tensor of shape %v", DTypeName(dt), DTypeName(tt.DataType()), tt.Shape())
		}
		var b bytes.Buffer
		if _, err := tt.WriteContentsTo(&b); err != nil || !bytes.Equal(b.Bytes(), []byte{0x00, 0x3c, 0x01, 0xc0}) {
			t.Errorf("%s: contents %x (%v)", DTypeName(dt), b.Bytes(), err)
		}
		Free(tt)
		if _, err := RawTensor(dt, []int64{2}, []byte{1, 2, 3}); err == nil {
			t.Errorf("%s: 3 bytes made a tensor of 2 elements", DTypeName(dt))
		}
	}
	if _, err := RawTensor(tf.Float, []int64{2}, make([]byte, 12)); err == nil {
		t.Error("12 bytes made a float32 tensor of 2 elements")
	}
	if _, err := RawTensor(tf.Float, []int64{-1}, nil); err == nil {
		t.Error("a negative dimension made a tensor")
	}
	if _, err := RawTensor(tf.String, []int64{1}, make([]byte, 8)); err == nil {
		t.Error("RawTensor made a string tensor from raw bytes")
	}
}
