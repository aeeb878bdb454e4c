package arrays

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestConvertMatchesNumPy checks the float16 and bfloat16 casts bit for bit against NumPy's
// astype(np.float16) and ml_dtypes' astype(bfloat16), on edge values (ties, subnormals,
// overflow, NaN payloads) and on random values over every exponent.
func TestConvertMatchesNumPy(t *testing.T) {
	casts, err := ReadNPZ(filepath.Join(fixtures(t), "casts.npz"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ in, want string }{
		{"f32_in", "f32_to_f16"},
		{"f64_in", "f64_to_f16"},
		{"f32_in", "f32_to_bf16"},
		{"f64_in", "f64_to_bf16"},
		{"f16_all", "f16_to_bf16"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			in, want := casts[tc.in], casts[tc.want]
			if want.Values == nil {
				t.Fatal("no ml_dtypes in the venv (TensorFlow installs it)")
			}
			if tc.in == "f16_all" {
				in.DType = Float16
			}
			to := Float16
			if strings.HasSuffix(tc.want, "bf16") {
				to = BFloat16
			}
			got, err := Convert(in, to)
			if err != nil {
				t.Fatal(err)
			}
			g, w := got.Values.([]uint16), want.Values.([]uint16)
			bad := 0
			for i := range w {
				if g[i] != w[i] {
					if bad++; bad <= 10 {
						t.Errorf("%s: %v -> %#04x, NumPy %#04x", tc.in, describeFloat(in, i), g[i], w[i])
					}
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d differ", bad, len(w))
			}
		})
	}
	t.Run("f16_to_f32", func(t *testing.T) {
		in, want := casts["f16_all"], casts["f16_to_f32"].Values.([]float32)
		in.DType = Float16
		got, err := Convert(in, Float32)
		if err != nil {
			t.Fatal(err)
		}
		for i, g := range got.Values.([]float32) {
			if math.Float32bits(g) != math.Float32bits(want[i]) {
				t.Errorf("half %#04x -> %#08x, NumPy %#08x", i, math.Float32bits(g), math.Float32bits(want[i]))
			}
			if math.Float32bits(Float16ToFloat32(uint16(i))) != math.Float32bits(want[i]) {
				t.Errorf("Float16ToFloat32(%#04x) differs from NumPy", i)
			}
		}
	})
}

func describeFloat(a Array, i int) string {
	switch v := a.Values.(type) {
	case []float32:
		return fmt.Sprintf("%g (%#08x)", v[i], math.Float32bits(v[i]))
	case []float64:
		return fmt.Sprintf("%g (%#016x)", v[i], math.Float64bits(v[i]))
	case []uint16:
		return fmt.Sprintf("half %#04x", v[i])
	}
	return "?"
}

func TestConvert(t *testing.T) {
	arr := func(d DType, shape []int64, v any) Array { return Array{d, shape, v} }
	vec := func(d DType, v any) Array {
		a := Array{DType: d, Values: v}
		a.Shape = []int64{int64(a.Len())}
		return a
	}
	inf, nan, negZero := math.Inf(1), math.NaN(), math.Copysign(0, -1)
	for _, tc := range []struct {
		name string
		in   Array
		to   DType
		want any    // the Values, or nil for an error
		err  string // part of the error
	}{
		{"f64 to f32 rounds", vec(Float64, []float64{0.1, 1e300, -1e300, 1e-50, negZero, inf}), Float32,
			[]float32{0.1, float32(inf), float32(-inf), 0, float32(negZero), float32(inf)}, ""},
		{"f32 to f64", vec(Float32, []float32{0.1, -2}), Float64, []float64{float64(float32(0.1)), -2}, ""},
		{"f64 to f16", vec(Float64, []float64{1, 65504, 65519.99, 65520, 1e6, -1e6, 0x1p-24, 0x1p-25, 0x3p-25, negZero, 1 + 0x1p-11, 1 + 0x3p-11}), Float16,
			[]uint16{0x3c00, 0x7bff, 0x7bff, 0x7c00, 0x7c00, 0xfc00, 0x0001, 0x0000, 0x0002, 0x8000, 0x3c00, 0x3c02}, ""},
		{"f32 to bf16", vec(Float32, []float32{1, 1 + 0x1p-8, 1 + 0x3p-8, float32(inf), -3, 0x1p-133, 0x1p-134}), BFloat16,
			[]uint16{0x3f80, 0x3f80, 0x3f82, 0x7f80, 0xc040, 0x0001, 0x0000}, ""},
		{"f64 NaN to f16 and bf16 stays NaN", vec(Float64, []float64{nan}), Float16, []uint16{0x7e00}, ""},
		{"bf16 NaN", vec(Float64, []float64{-nan}), BFloat16, []uint16{0xffc0}, ""},
		{"f16 to f32", vec(Float16, []uint16{0x3c00, 0x0001, 0xfc00}), Float32, []float32{1, 0x1p-24, float32(math.Inf(-1))}, ""},
		{"bf16 to f16", vec(BFloat16, []uint16{0x3f80, 0x4780}), Float16, []uint16{0x3c00, 0x7c00}, ""},
		{"f16 to bf16", vec(Float16, []uint16{0x3c01}), BFloat16, []uint16{0x3f80}, ""},
		{"int64 to f32", vec(Int64, []int64{1 << 40, 1<<24 + 1, -7}), Float32, []float32{1 << 40, 1 << 24, -7}, ""},
		{"int64 to f32 rounds once", vec(Int64, []int64{1<<62 + 1<<38 + 1}), Float32, []float32{1<<62 + 1<<39}, ""},
		{"int to f16", vec(Int32, []int32{65519, 65520, -2049}), Float16, []uint16{0x7bff, 0x7c00, 0xe800}, ""},
		{"uint8 to f64", vec(Uint8, []uint8{255}), Float64, []float64{255}, ""},
		{"bool to f32", vec(Bool, []bool{true, false}), Float32, []float32{1, 0}, ""},
		{"bool to bf16", vec(Bool, []bool{true}), BFloat16, []uint16{0x3f80}, ""},
		{"int64 to int32", vec(Int64, []int64{-5, math.MaxInt32}), Int32, []int32{-5, math.MaxInt32}, ""},
		{"int64 to int32 overflows", arr(Int64, []int64{2, 2}, []int64{1, 2, 3e9, 4}), Int32, nil,
			"cannot convert int64 to int32: element [1 0] is 3000000000, outside int32's [-2147483648, 2147483647]"},
		{"negative to uint8", vec(Int16, []int16{1, -1}), Uint8, nil, "element [1] is -1, outside uint8's [0, 255]"},
		{"uint16 to int16", vec(Uint16, []uint16{40000}), Int16, nil, "element [0] is 40000"},
		{"uint8 to int8", vec(Uint8, []uint8{127}), Int8, []int8{127}, ""},
		{"int to uint16", vec(Int32, []int32{65535}), Uint16, []uint16{65535}, ""},
		{"0-d overflow", arr(Int64, []int64{}, []int64{1 << 40}), Int16, nil, "element [] is 1099511627776"},
		{"bool to int", vec(Bool, []bool{true, false}), Int64, []int64{1, 0}, ""},
		{"int to bool", vec(Int8, []int8{0, 1}), Bool, []bool{false, true}, ""},
		{"int 2 to bool", vec(Int8, []int8{0, 2}), Bool, nil, "cannot convert int8 to bool: element [1] is 2, outside bool's [0, 1]"},
		{"float to int", vec(Float32, []float32{1}), Int32, nil, "cannot convert float32 to int32"},
		{"float to bool", vec(Float64, []float64{1}), Bool, nil, "cannot convert float64 to bool"},
		{"float to string", vec(Float32, []float32{1}), String, nil, "cannot convert float32 to string"},
		{"string to float", vec(String, []string{"1"}), Float32, nil, "cannot convert string to float32"},
		{"string to string", vec(String, []string{"a"}), String, []string{"a"}, ""},
		{"unknown dtype", vec(Float32, []float32{1}), "complex64", nil, `cannot convert float32 to "complex64": not a dtype`},
		{"invalid array", arr(Float32, []int64{3}, []float32{1}), Float64, nil, "shape [3] needs 3 values, the array has 1"},
		{"empty", arr(Int64, []int64{0, 4}, []int64{}), Int8, []int8{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Convert(tc.in, tc.to)
			if tc.want == nil {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, %v; want an error with %q", got, err, tc.err)
				}
				if got.Values != nil {
					t.Errorf("an error with values %v", got.Values)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := got.Check(); err != nil || got.DType != tc.to || !slices.Equal(got.Shape, tc.in.Shape) {
				t.Fatalf("got %+v (%v)", got, err)
			}
			if fmt.Sprintf("%#v", got.Values) != fmt.Sprintf("%#v", tc.want) {
				t.Errorf("got %#v, want %#v", got.Values, tc.want)
			}
		})
	}
}

func TestConvertSameDTypeShares(t *testing.T) {
	a, _ := Of([]float32{1, 2})
	b, err := Convert(a, Float32)
	if err != nil {
		t.Fatal(err)
	}
	b.Values.([]float32)[0] = 9
	if a.Values.([]float32)[0] != 9 {
		t.Error("Convert to the same dtype copied")
	}
	c, _ := Convert(a, Float64)
	c.Shape[0] = 7
	if a.Shape[0] != 2 {
		t.Error("the result shares a's shape")
	}
}

func TestFloat64s(t *testing.T) {
	for _, tc := range []struct {
		in   Array
		want []float64
	}{
		{Array{Float16, []int64{2}, []uint16{0x3c00, 0xc000}}, []float64{1, -2}},
		{Array{BFloat16, []int64{1}, []uint16{0x3fc0}}, []float64{1.5}},
		{Array{Uint16, []int64{1}, []uint16{0x3c00}}, []float64{0x3c00}},
		{Array{Bool, []int64{2}, []bool{true, false}}, []float64{1, 0}},
		{Array{Int64, []int64{}, []int64{-3}}, []float64{-3}},
		{Array{Float32, []int64{1}, []float32{0.5}}, []float64{0.5}},
		{Array{Int8, []int64{1}, []int8{-8}}, []float64{-8}},
	} {
		got, err := Float64s(tc.in)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("Float64s(%v) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	if _, err := Float64s(Array{String, []int64{1}, []string{"1"}}); err == nil || err.Error() != "cannot convert string to float64" {
		t.Errorf("strings: %v", err)
	}
	if _, err := Float64s(Array{Float32, []int64{2}, []float32{1}}); err == nil {
		t.Error("an invalid array converted")
	}
}

func TestScalarHalves(t *testing.T) {
	for _, tc := range []struct {
		f      float32
		f16    uint16
		bf16   uint16
		f16f32 float32 // Float16ToFloat32(f16)
	}{
		{1, 0x3c00, 0x3f80, 1},
		{-0.5, 0xb800, 0xbf00, -0.5},
		{65504, 0x7bff, 0x4780, 65504},
		{1e-8, 0x0000, 0x322c, 0},
		{6e-8, 0x0001, 0x3381, 0x1p-24},
	} {
		if g := Float32ToFloat16(tc.f); g != tc.f16 {
			t.Errorf("Float32ToFloat16(%g) = %#04x, want %#04x", tc.f, g, tc.f16)
		}
		if g := Float32ToBFloat16(tc.f); g != tc.bf16 {
			t.Errorf("Float32ToBFloat16(%g) = %#04x, want %#04x", tc.f, g, tc.bf16)
		}
		if g := Float16ToFloat32(tc.f16); g != tc.f16f32 {
			t.Errorf("Float16ToFloat32(%#04x) = %g, want %g", tc.f16, g, tc.f16f32)
		}
		if g := BFloat16ToFloat32(Float32ToBFloat16(tc.f)); math.Abs(float64(g-tc.f)) > math.Abs(float64(tc.f))/128 {
			t.Errorf("bfloat16 round trip of %g: %g", tc.f, g)
		}
	}
}
