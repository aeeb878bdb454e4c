// Package arrays holds named, typed n-dimensional arrays as ordinary Go slices: what a batch
// of any Keras model's inputs and targets is made of before it becomes a TensorFlow tensor
// (tfgraph), and what NumPy .npz archives hold (ReadNPZ). It knows nothing of TensorFlow.
package arrays

import (
	"fmt"
	"math"
	"slices"
	"unsafe"
)

// DType names an element type the NumPy way ("float32", "int64", ...).
type DType string

// The element types an Array holds, each with the Go slice type of Array.Values.
const (
	Float16  DType = "float16"  // []uint16, IEEE half bits (Convert or Float32ToFloat16 make them)
	BFloat16 DType = "bfloat16" // []uint16, bfloat16 bits (Convert or Float32ToBFloat16 make them)
	Float32  DType = "float32"  // []float32
	Float64  DType = "float64"  // []float64
	Int8     DType = "int8"     // []int8
	Int16    DType = "int16"    // []int16
	Int32    DType = "int32"    // []int32
	Int64    DType = "int64"    // []int64
	Uint8    DType = "uint8"    // []uint8
	Uint16   DType = "uint16"   // []uint16
	Bool     DType = "bool"     // []bool
	String   DType = "string"   // []string (any bytes)
)

// Size is the bytes one element takes in memory (a string's: 16, its header; its bytes are
// extra).
func (d DType) Size() int {
	switch d {
	case Int8, Uint8, Bool:
		return 1
	case Float16, BFloat16, Int16, Uint16:
		return 2
	case Float32, Int32:
		return 4
	case Float64, Int64:
		return 8
	case String:
		return 16
	}
	return 0
}

// Array is an n-dimensional array, row-major, the first dimension the batch (rows).
type Array struct {
	DType DType
	Shape []int64
	// Values is the slice type DType names, with as many elements as Shape's product.
	Values any
}

// Of makes an Array of VALUES with SHAPE (none: one dimension, the values); the dtype comes
// from the slice type ([]float32 is float32, []uint16 is uint16, ...). It checks the count.
func Of[T float32 | float64 | int8 | int16 | int32 | int64 | uint8 | uint16 | bool | string](values []T, shape ...int64) (Array, error) {
	var dt DType
	switch any(values).(type) {
	case []float32:
		dt = Float32
	case []float64:
		dt = Float64
	case []int8:
		dt = Int8
	case []int16:
		dt = Int16
	case []int32:
		dt = Int32
	case []int64:
		dt = Int64
	case []uint8:
		dt = Uint8
	case []uint16:
		dt = Uint16
	case []bool:
		dt = Bool
	case []string:
		dt = String
	}
	if len(shape) == 0 {
		shape = []int64{int64(len(values))}
	}
	a := Array{DType: dt, Shape: append([]int64(nil), shape...), Values: values}
	return a, a.Check()
}

// Elements is the product of Shape (1 for a scalar); -1 when a dimension is negative or the
// product overflows.
func Elements(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		if d < 0 || (d > 0 && n > math.MaxInt64/d) {
			return -1
		}
		n *= d
	}
	return n
}

// Len is the number of elements Values holds.
func (a Array) Len() int {
	switch v := a.Values.(type) {
	case []float32:
		return len(v)
	case []float64:
		return len(v)
	case []int8:
		return len(v)
	case []int16:
		return len(v)
	case []int32:
		return len(v)
	case []int64:
		return len(v)
	case []uint8:
		return len(v)
	case []uint16:
		return len(v)
	case []bool:
		return len(v)
	case []string:
		return len(v)
	}
	return -1
}

// Check reports an Array whose Values are not of DType's slice type or do not fill Shape.
func (a Array) Check() error {
	if want := goType(a.DType); want == "" {
		return unknownDType(a.DType)
	} else if got := fmt.Sprintf("%T", a.Values); got != want {
		return fmt.Errorf("dtype %s holds %s, not %s", a.DType, want, got)
	}
	n := Elements(a.Shape)
	if n < 0 {
		return fmt.Errorf("shape %v: a negative dimension or too many elements", a.Shape)
	}
	if int64(a.Len()) != n {
		return fmt.Errorf("shape %v needs %d values, the array has %d", a.Shape, n, a.Len())
	}
	return nil
}

func unknownDType(d DType) error {
	return fmt.Errorf("dtype %q is not one of float16, bfloat16, float32, float64, int8, int16, int32, int64, uint8, uint16, bool, string", d)
}

// makeValues is n zero elements of d's slice type, nil for an unknown dtype: the one place
// that maps a DType onto its Go type, so that Zeros, Check and the .npz reader cannot
// disagree on it.
func makeValues(d DType, n int) any {
	switch d {
	case Float16, BFloat16, Uint16:
		return make([]uint16, n)
	case Float32:
		return make([]float32, n)
	case Float64:
		return make([]float64, n)
	case Int8:
		return make([]int8, n)
	case Int16:
		return make([]int16, n)
	case Int32:
		return make([]int32, n)
	case Int64:
		return make([]int64, n)
	case Uint8:
		return make([]uint8, n)
	case Bool:
		return make([]bool, n)
	case String:
		return make([]string, n)
	}
	return nil
}

// goType is the name of d's slice type ("[]float32"), "" for an unknown dtype.
func goType(d DType) string {
	if v := makeValues(d, 0); v != nil {
		return fmt.Sprintf("%T", v)
	}
	return ""
}

// Zeros is a new Array of dtype dt and shape (none: a scalar) holding zeros (false, ""): an
// array for a reader to fill, such as a TensorFlow tensor's copy through Bytes. It is an error
// for a dtype other than the constants above, and for a negative dimension or a shape of more
// elements than an int counts.
func Zeros(dt DType, shape []int64) (Array, error) {
	n := Elements(shape)
	if n < 0 || n > math.MaxInt {
		return Array{}, fmt.Errorf("shape %v: a negative dimension or too many elements", shape)
	}
	v := makeValues(dt, int(n))
	if v == nil {
		return Array{}, unknownDType(dt)
	}
	return Array{DType: dt, Shape: slices.Clone(shape), Values: v}, nil
}

// Bytes is the memory of a numeric array's values, shared rather than copied, in the host's
// byte order (little-endian, as on every platform TensorFlow's C library is built for): how
// values reach a TensorFlow tensor, or come back from one, without a copy element by
// element. Writing to it writes the array; a bool array's bytes must stay 0 or 1, the only
// bools Go has. It is nil for a string array (a string's bytes are elsewhere), an empty
// array, and an array that fails Check.
func Bytes(a Array) []byte {
	if a.Check() != nil {
		return nil
	}
	switch v := a.Values.(type) {
	case []float32:
		return byteView(v)
	case []float64:
		return byteView(v)
	case []int8:
		return byteView(v)
	case []int16:
		return byteView(v)
	case []int32:
		return byteView(v)
	case []int64:
		return byteView(v)
	case []uint8:
		return byteView(v)
	case []uint16:
		return byteView(v)
	case []bool:
		return byteView(v)
	}
	return nil
}

// byteView sizes the view from v itself, not from a DType, so that it never reaches past v.
func byteView[T float32 | float64 | int8 | int16 | int32 | int64 | uint8 | uint16 | bool](v []T) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), len(v)*int(unsafe.Sizeof(v[0])))
}

// Rows is the first dimension (0 for a scalar).
func (a Array) Rows() int64 {
	if len(a.Shape) == 0 {
		return 0
	}
	return a.Shape[0]
}

// rowSize is the elements per row.
func (a Array) rowSize() int64 {
	if len(a.Shape) == 0 {
		return 1
	}
	return Elements(a.Shape[1:])
}

// ShapeString is "[-1 20]"-style, with ? for unknown (negative) dimensions.
func ShapeString(shape []int64) string {
	s := "["
	for i, d := range shape {
		if i > 0 {
			s += " "
		}
		if d < 0 {
			s += "?"
		} else {
			s += fmt.Sprint(d)
		}
	}
	return s + "]"
}

// CheckShape reports a shape that is not want's: another rank, or another size where want's
// dimension is fixed (a negative one takes any size, as a model's batch dimension).
func CheckShape(shape, want []int64) error {
	ok := len(shape) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = want[i] < 0 || want[i] == shape[i]
	}
	if !ok {
		return fmt.Errorf("shape %s, the model takes %s", ShapeString(shape), ShapeString(want))
	}
	return nil
}

// Slice is rows [from, to) sharing a's memory, so that batching a large array copies nothing.
// Like slicing a Go slice, it panics when the rows are out of range or a is a scalar (0-d).
func (a Array) Slice(from, to int64) Array {
	if len(a.Shape) == 0 {
		panic("arrays: Slice of a 0-d array, which has no rows")
	}
	if from < 0 || to < from || to > a.Shape[0] {
		panic(fmt.Sprintf("arrays: Slice rows [%d, %d) out of range for %d rows", from, to, a.Shape[0]))
	}
	k := a.rowSize()
	shape := append([]int64{to - from}, a.Shape[1:]...)
	return Array{DType: a.DType, Shape: shape, Values: sliceValues(a.Values, from*k, to*k)}
}

func sliceValues(v any, from, to int64) any {
	switch v := v.(type) {
	case []float32:
		return v[from:to]
	case []float64:
		return v[from:to]
	case []int8:
		return v[from:to]
	case []int16:
		return v[from:to]
	case []int32:
		return v[from:to]
	case []int64:
		return v[from:to]
	case []uint8:
		return v[from:to]
	case []uint16:
		return v[from:to]
	case []bool:
		return v[from:to]
	case []string:
		return v[from:to]
	}
	return nil
}

// Gather copies the given rows, in that order, into a new Array: a shuffled batch that owns its
// memory. Like indexing a Go slice, it panics when a row is out of range or a is a scalar (0-d).
func (a Array) Gather(rows []int) Array {
	if len(a.Shape) == 0 {
		panic("arrays: Gather of a 0-d array, which has no rows")
	}
	for _, r := range rows {
		if r < 0 || int64(r) >= a.Shape[0] {
			panic(fmt.Sprintf("arrays: Gather row %d out of range for %d rows", r, a.Shape[0]))
		}
	}
	k := int(a.rowSize())
	shape := append([]int64{int64(len(rows))}, a.Shape[1:]...)
	return Array{DType: a.DType, Shape: shape, Values: gatherValues(a.Values, rows, k)}
}

func gatherValues(v any, rows []int, k int) any {
	switch v := v.(type) {
	case []float32:
		return gather(v, rows, k)
	case []float64:
		return gather(v, rows, k)
	case []int8:
		return gather(v, rows, k)
	case []int16:
		return gather(v, rows, k)
	case []int32:
		return gather(v, rows, k)
	case []int64:
		return gather(v, rows, k)
	case []uint8:
		return gather(v, rows, k)
	case []uint16:
		return gather(v, rows, k)
	case []bool:
		return gather(v, rows, k)
	case []string:
		return gather(v, rows, k)
	}
	return nil
}

func gather[T any](v []T, rows []int, k int) []T {
	out := make([]T, 0, len(rows)*k)
	for _, r := range rows {
		out = append(out, v[r*k:(r+1)*k]...)
	}
	return out
}
