package tfgraph

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/emotions-dev/emotions/arrays"
	"github.com/emotions-dev/emotions/savedmodel"
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
			if a.DType == arrays.Float16 || a.DType == arrays.BFloat16 {
				// graft's ReadTensor sizes a tensor from its table of Go types, which has no
				// half types, and panics for them.
				t.Skip("tf.ReadTensor panics for DT_HALF and DT_BFLOAT16 (graft v0.10.0)")
			}
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
