package arrays

import (
	"fmt"
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
