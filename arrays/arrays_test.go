package arrays

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    Array
		err  string // "" when valid
	}{
		{"float32", Array{Float32, []int64{2, 3}, make([]float32, 6)}, ""},
		{"float16 bits", Array{Float16, []int64{1}, []uint16{0x3c00}}, ""},
		{"bfloat16 bits", Array{BFloat16, []int64{}, []uint16{0}}, ""},
		{"scalar", Array{Int64, nil, []int64{1}}, ""},
		{"empty", Array{String, []int64{0, 5}, []string{}}, ""},
		{"wrong slice", Array{Float32, []int64{1}, []float64{1}}, "dtype float32 holds []float32, not []float64"},
		{"nil values", Array{Int8, []int64{0}, nil}, "dtype int8 holds []int8, not <nil>"},
		{"unknown dtype", Array{"float8", []int64{1}, []uint8{1}}, `dtype "float8" is not one of`},
		{"count", Array{Int32, []int64{2, 2}, make([]int32, 3)}, "shape [2 2] needs 4 values, the array has 3"},
		{"negative", Array{Int32, []int64{-1}, []int32{}}, "shape [-1]: a negative dimension"},
		{"overflow", Array{Uint8, []int64{1 << 32, 1 << 32}, []uint8{}}, "too many elements"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.a.Check()
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("Check() = %v, want %q", err, tc.err)
			}
		})
	}
}

func TestOf(t *testing.T) {
	a, err := Of([]int32{1, 2, 3, 4, 5, 6}, 3, 2)
	if err != nil || a.DType != Int32 || !slices.Equal(a.Shape, []int64{3, 2}) || a.Rows() != 3 {
		t.Errorf("Of: %+v, %v", a, err)
	}
	if a, err := Of([]string{"a", "b"}); err != nil || a.DType != String || !slices.Equal(a.Shape, []int64{2}) {
		t.Errorf("Of strings: %+v, %v", a, err)
	}
	if _, err := Of([]float64{1, 2, 3}, 2, 2); err == nil {
		t.Error("Of accepted 3 values for [2 2]")
	}
	if a, _ := Of([]uint16{1}); a.DType != Uint16 {
		t.Errorf("[]uint16 is %s, want uint16 (float16 bits need an explicit DType)", a.DType)
	}
}

func TestSlice(t *testing.T) {
	a, _ := Of([]int64{0, 1, 2, 3, 4, 5, 6, 7}, 4, 2)
	for _, tc := range []struct {
		from, to int64
		want     []int64
	}{
		{0, 4, []int64{0, 1, 2, 3, 4, 5, 6, 7}},
		{1, 3, []int64{2, 3, 4, 5}},
		{2, 2, []int64{}},
		{3, 4, []int64{6, 7}},
	} {
		s := a.Slice(tc.from, tc.to)
		if err := s.Check(); err != nil || !slices.Equal(s.Values.([]int64), tc.want) || s.Shape[0] != tc.to-tc.from || s.Shape[1] != 2 {
			t.Errorf("Slice(%d, %d) = %+v (%v), want %v", tc.from, tc.to, s, err, tc.want)
		}
	}
	s := a.Slice(1, 2)
	s.Values.([]int64)[0] = 99
	if a.Values.([]int64)[2] != 99 {
		t.Error("Slice copied")
	}
	s.Shape[1] = 5
	if a.Shape[1] != 2 {
		t.Error("Slice shares the shape")
	}
	// Past the rows but within the slice's capacity must still panic.
	b := Array{Float32, []int64{2}, make([]float32, 2, 10)}
	for _, r := range [][2]int64{{0, 3}, {-1, 1}, {2, 1}} {
		mustPanic(t, fmt.Sprintf("Slice(%d, %d)", r[0], r[1]), "out of range", func() { b.Slice(r[0], r[1]) })
	}
	mustPanic(t, "Slice of a scalar", "0-d", func() { Array{Float32, nil, []float32{1}}.Slice(0, 1) })
}

func TestGather(t *testing.T) {
	a, _ := Of([]string{"a0", "a1", "b0", "b1", "c0", "c1"}, 3, 2)
	g := a.Gather([]int{2, 0, 2})
	if err := g.Check(); err != nil || !slices.Equal(g.Values.([]string), []string{"c0", "c1", "a0", "a1", "c0", "c1"}) || !slices.Equal(g.Shape, []int64{3, 2}) {
		t.Errorf("Gather = %+v (%v)", g, err)
	}
	g.Values.([]string)[0] = "x"
	if a.Values.([]string)[4] != "c0" {
		t.Error("Gather shares memory")
	}
	if e := a.Gather(nil); e.Check() != nil || e.Shape[0] != 0 {
		t.Errorf("Gather(nil) = %+v", e)
	}
	mustPanic(t, "Gather(3)", "out of range", func() { a.Gather([]int{3}) })
	mustPanic(t, "Gather(-1)", "out of range", func() { a.Gather([]int{-1}) })
	mustPanic(t, "Gather of a scalar", "0-d", func() { Array{Float32, nil, []float32{1}}.Gather([]int{0}) })
}

func TestConcat(t *testing.T) {
	a, _ := Of([]float32{1, 2}, 1, 2)
	b, _ := Of([]float32{3, 4, 5, 6}, 2, 2)
	c, err := Concat([]Array{a, b})
	if err != nil || !slices.Equal(c.Shape, []int64{3, 2}) || !slices.Equal(c.Values.([]float32), []float32{1, 2, 3, 4, 5, 6}) {
		t.Errorf("Concat = %+v, %v", c, err)
	}
	for _, bad := range [][]Array{
		nil,
		{a, {Float64, []int64{1, 2}, []float64{1, 2}}},
		{a, {Float32, []int64{1, 3}, []float32{1, 2, 3}}},
		{a, {Float32, []int64{}, []float32{1}}},
		{{Float32, []int64{}, []float32{1}}},
		{a, {Float32, []int64{3, 2}, []float32{1}}},
	} {
		if c, err := Concat(bad); err == nil {
			t.Errorf("Concat(%v) = %v", bad, c)
		}
	}
}

func TestShapeStringAndElements(t *testing.T) {
	if s := ShapeString([]int64{-1, 20}); s != "[? 20]" {
		t.Errorf("ShapeString = %q", s)
	}
	if s := ShapeString(nil); s != "[]" {
		t.Errorf("ShapeString(nil) = %q", s)
	}
	for _, tc := range []struct {
		shape []int64
		want  int64
	}{{nil, 1}, {[]int64{3, 0}, 0}, {[]int64{2, 3}, 6}, {[]int64{-1}, -1}, {[]int64{1 << 62, 4}, -1}} {
		if n := Elements(tc.shape); n != tc.want {
			t.Errorf("Elements(%v) = %d, want %d", tc.shape, n, tc.want)
		}
	}
}

func mustPanic(t *testing.T, what, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		if p := recover(); p == nil || !strings.Contains(fmt.Sprint(p), want) {
			t.Errorf("%s: panic %v, want one saying %q", what, p, want)
		}
	}()
	f()
}

// numericSamples is an array of every numeric dtype, its values chosen to use every byte.
func numericSamples() []Array {
	return []Array{
		{Float16, []int64{2}, []uint16{0x3c00, 0xc001}},
		{BFloat16, []int64{2}, []uint16{0x3f80, 0x8001}},
		{Float32, []int64{2, 1}, []float32{1.5, -3.25e-7}},
		{Float64, []int64{2}, []float64{math.Pi, -1e300}},
		{Int8, []int64{3}, []int8{-128, 0, 127}},
		{Int16, []int64{2}, []int16{-32768, 0x1234}},
		{Int32, []int64{2}, []int32{-1, 0x12345678}},
		{Int64, []int64{2}, []int64{math.MinInt64, 0x0102030405060708}},
		{Uint8, []int64{2}, []uint8{0, 255}},
		{Uint16, []int64{1, 2}, []uint16{0xffff, 0x0102}},
		{Bool, []int64{3}, []bool{true, false, true}},
	}
}

func TestBytesRoundTrip(t *testing.T) {
	for _, a := range numericSamples() {
		t.Run(string(a.DType), func(t *testing.T) {
			want, err := binary.Append(nil, binary.NativeEndian, a.Values)
			if err != nil {
				t.Fatal(err)
			}
			got := Bytes(a)
			if !bytes.Equal(got, want) {
				t.Fatalf("Bytes = %x, want %x", got, want)
			}
			z, err := Zeros(a.DType, a.Shape)
			if err != nil {
				t.Fatal(err)
			}
			if n := copy(Bytes(z), got); n != len(got) {
				t.Fatalf("Zeros' bytes hold %d of %d", n, len(got))
			}
			if !reflect.DeepEqual(z.Values, a.Values) {
				t.Errorf("through bytes: %v, want %v", z.Values, a.Values)
			}
		})
	}
}

func TestBytesShares(t *testing.T) {
	a, _ := Of([]int32{1, 2})
	b := Bytes(a)
	binary.NativeEndian.PutUint32(b[4:], 7)
	if v := a.Values.([]int32); v[1] != 7 {
		t.Errorf("writing Bytes gave %v, want [1 7]: not the array's memory", v)
	}
}

func TestBytesNil(t *testing.T) {
	for name, a := range map[string]Array{
		"string":      {String, []int64{1}, []string{"abc"}},
		"empty":       {Float32, []int64{0, 3}, []float32{}},
		"wrong slice": {Float64, []int64{1}, []float32{1}}, // a float64 view would reach past it
		"count":       {Int64, []int64{3}, []int64{1}},
		"unknown":     {"uint32", []int64{1}, []uint8{1}},
	} {
		if b := Bytes(a); b != nil {
			t.Errorf("%s: Bytes = %x, want nil", name, b)
		}
	}
}

func TestZeros(t *testing.T) {
	for _, dt := range []DType{Float16, BFloat16, Float32, Float64, Int8, Int16, Int32, Int64, Uint8, Uint16, Bool, String} {
		shape := []int64{2, 3}
		a, err := Zeros(dt, shape)
		if err != nil {
			t.Fatalf("%s: %v", dt, err)
		}
		shape[0] = 5 // the caller's slice is not the array's
		if err := a.Check(); err != nil || a.DType != dt || !slices.Equal(a.Shape, []int64{2, 3}) {
			t.Errorf("%s: %+v, Check %v", dt, a, err)
		}
		if dt == String {
			if !slices.Equal(a.Values.([]string), make([]string, 6)) {
				t.Errorf("string: %q", a.Values)
			}
		} else if b := Bytes(a); len(b) != 6*dt.Size() || slices.ContainsFunc(b, func(x byte) bool { return x != 0 }) {
			t.Errorf("%s: bytes %x, want %d zeros", dt, b, 6*dt.Size())
		}
	}
	if a, err := Zeros(Float64, nil); err != nil || a.Len() != 1 || len(a.Shape) != 0 {
		t.Errorf("scalar: %+v, %v", a, err)
	}
	if a, err := Zeros(Int16, []int64{4, 0}); err != nil || a.Len() != 0 || a.Rows() != 4 || Bytes(a) != nil {
		t.Errorf("zero-length: %+v, %v", a, err)
	}
	for _, tc := range []struct {
		dt    DType
		shape []int64
		err   string
	}{
		{"uint32", []int64{1}, `dtype "uint32" is not one of`},
		{"", nil, `dtype "" is not one of`},
		{Float32, []int64{2, -1}, "a negative dimension"},
		{Uint8, []int64{1 << 32, 1 << 32}, "too many elements"},
	} {
		if a, err := Zeros(tc.dt, tc.shape); err == nil || !strings.Contains(err.Error(), tc.err) || a.Values != nil {
			t.Errorf("Zeros(%q, %v) = %+v, %v; want an error with %q", tc.dt, tc.shape, a, err, tc.err)
		}
	}
}
