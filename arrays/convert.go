package arrays

import (
	"fmt"
	"math"
)

// Convert casts a to dtype to, as Keras casts NumPy data that fit or predict gets: np.savez
// writes float64 and int64 by default, while most models take float32 and int32, so data saved
// by NumPy would otherwise not feed them.
//
//   - float to float rounds to nearest, ties to even; magnitudes beyond the target's range
//     become ±Inf, NaN stays NaN. To float16 the rounding is NumPy's (float64 is rounded once,
//     not through float32); to bfloat16 it is ml_dtypes' (NumPy's bfloat16), which also rounds
//     float64 once. TensorFlow's tf.cast from float64 rounds through float32, which differs
//     only for a float64 within float32's rounding (2^-24, relative) of a tie.
//   - int, uint and bool to any float: the nearest value (bool is 0 or 1).
//   - int and uint to int or uint: exact, or an error naming the first element that does not
//     fit; to bool only 0 and 1 are accepted; bool to int is 0 or 1.
//   - string only to string.
//
// Float to int and anything to or from string is an error ("cannot convert float32 to
// string"). The same dtype returns a itself, sharing its memory; any other result owns new
// memory. A zero Array comes back with the error.
func Convert(a Array, to DType) (Array, error) {
	if err := a.Check(); err != nil {
		return Array{}, err
	}
	if goType(to) == "" {
		return Array{}, fmt.Errorf("cannot convert %s to %q: not a dtype", a.DType, to)
	}
	if a.DType == to {
		return a, nil
	}
	from := a.DType
	shape := append([]int64(nil), a.Shape...)
	switch {
	case isFloat(to) && (isFloat(from) || isInt(from) || from == Bool):
		return Array{DType: to, Shape: shape, Values: toFloat(a, to)}, nil
	case (isInt(to) || to == Bool) && (isInt(from) || from == Bool):
		v, err := toInt(a, to)
		if err != nil {
			return Array{}, err
		}
		return Array{DType: to, Shape: shape, Values: v}, nil
	}
	return Array{}, fmt.Errorf("cannot convert %s to %s", from, to)
}

// Float64s is every element of a numeric array as float64 (float16 and bfloat16 decoded, bool
// 0 or 1), whatever its dtype: what code that only reads values (metrics, printing, comparing
// predictions) needs without a switch over dtypes. Strings are an error.
func Float64s(a Array) ([]float64, error) {
	if err := a.Check(); err != nil {
		return nil, err
	}
	if a.DType == String {
		return nil, fmt.Errorf("cannot convert string to float64")
	}
	out := make([]float64, a.Len())
	for i := range out {
		out[i] = floatAt(a, i)
	}
	return out, nil
}

func isFloat(d DType) bool {
	return d == Float16 || d == BFloat16 || d == Float32 || d == Float64
}

func isInt(d DType) bool {
	switch d {
	case Int8, Int16, Int32, Int64, Uint8, Uint16:
		return true
	}
	return false
}

// floatAt is element i of a numeric array, exactly, except an int64 beyond 2^53, which rounds.
func floatAt(a Array, i int) float64 {
	switch v := a.Values.(type) {
	case []float32:
		return float64(v[i])
	case []float64:
		return v[i]
	case []int8:
		return float64(v[i])
	case []int16:
		return float64(v[i])
	case []int32:
		return float64(v[i])
	case []int64:
		return float64(v[i])
	case []uint8:
		return float64(v[i])
	case []bool:
		if v[i] {
			return 1
		}
		return 0
	case []uint16:
		switch a.DType {
		case Float16:
			return float64(Float16ToFloat32(v[i]))
		case BFloat16:
			return float64(BFloat16ToFloat32(v[i]))
		}
		return float64(v[i])
	}
	panic("arrays: not a numeric array")
}

// float32At is element i of a float16 or bfloat16 array, its bits kept (a float64 on the way
// would quiet a signaling NaN, which NumPy keeps).
func float32At(a Array, i int) float32 {
	h := a.Values.([]uint16)[i]
	if a.DType == BFloat16 {
		return BFloat16ToFloat32(h)
	}
	return Float16ToFloat32(h)
}

// intAt is element i of an int, uint or bool array.
func intAt(a Array, i int) int64 {
	switch v := a.Values.(type) {
	case []int8:
		return int64(v[i])
	case []int16:
		return int64(v[i])
	case []int32:
		return int64(v[i])
	case []int64:
		return v[i]
	case []uint8:
		return int64(v[i])
	case []uint16:
		return int64(v[i])
	case []bool:
		if v[i] {
			return 1
		}
		return 0
	}
	panic("arrays: not an integer array")
}

func toFloat(a Array, to DType) any {
	n := a.Len()
	switch to {
	case Float64:
		out := make([]float64, n)
		for i := range out {
			out[i] = floatAt(a, i)
		}
		return out
	case Float32:
		out := make([]float32, n)
		switch v := a.Values.(type) {
		case []int64:
			// float32(int64) rounds once; through float64 it would round twice.
			for i := range out {
				out[i] = float32(v[i])
			}
		case []uint16:
			if a.DType != Uint16 {
				for i := range out {
					out[i] = float32At(a, i)
				}
				return out
			}
			for i := range out {
				out[i] = float32(v[i])
			}
		default:
			for i := range out {
				out[i] = float32(floatAt(a, i))
			}
		}
		return out
	}
	out := make([]uint16, n)
	switch {
	case a.DType == Float32:
		// From the float32 bits, so that a NaN keeps its payload as NumPy's does.
		v := a.Values.([]float32)
		for i := range out {
			if to == Float16 {
				out[i] = Float32ToFloat16(v[i])
			} else {
				out[i] = Float32ToBFloat16(v[i])
			}
		}
	case isFloat(a.DType) && a.DType != Float64:
		// float16 <-> bfloat16: decode exactly to float32, then round.
		for i := range out {
			f := float32At(a, i)
			if to == Float16 {
				out[i] = Float32ToFloat16(f)
			} else {
				out[i] = Float32ToBFloat16(f)
			}
		}
	default:
		for i := range out {
			if to == Float16 {
				out[i] = float64ToFloat16(floatAt(a, i))
			} else {
				out[i] = float64ToBFloat16(floatAt(a, i))
			}
		}
	}
	return out
}

// intRange is the values dtype d holds.
func intRange(d DType) (lo, hi int64) {
	switch d {
	case Int8:
		return math.MinInt8, math.MaxInt8
	case Int16:
		return math.MinInt16, math.MaxInt16
	case Int32:
		return math.MinInt32, math.MaxInt32
	case Int64:
		return math.MinInt64, math.MaxInt64
	case Uint8:
		return 0, math.MaxUint8
	case Uint16:
		return 0, math.MaxUint16
	case Bool:
		return 0, 1
	}
	return 0, -1
}

func toInt(a Array, to DType) (any, error) {
	lo, hi := intRange(to)
	n := a.Len()
	for i := range n {
		if v := intAt(a, i); v < lo || v > hi {
			return nil, fmt.Errorf("cannot convert %s to %s: element %s is %d, outside %s's [%d, %d]",
				a.DType, to, indexString(a.Shape, i), v, to, lo, hi)
		}
	}
	switch to {
	case Int8:
		return intsOf[int8](a), nil
	case Int16:
		return intsOf[int16](a), nil
	case Int32:
		return intsOf[int32](a), nil
	case Int64:
		return intsOf[int64](a), nil
	case Uint8:
		return intsOf[uint8](a), nil
	case Uint16:
		return intsOf[uint16](a), nil
	}
	out := make([]bool, n)
	for i := range out {
		out[i] = intAt(a, i) != 0
	}
	return out, nil
}

func intsOf[T int8 | int16 | int32 | int64 | uint8 | uint16](a Array) []T {
	out := make([]T, a.Len())
	for i := range out {
		out[i] = T(intAt(a, i))
	}
	return out
}

// indexString is flat (row-major) index i of shape as "[2 0 1]".
func indexString(shape []int64, i int) string {
	idx := make([]int64, len(shape))
	r := int64(i)
	for d := len(shape) - 1; d >= 0; d-- {
		if shape[d] > 0 {
			idx[d] = r % shape[d]
			r /= shape[d]
		}
	}
	return ShapeString(idx)
}

// Float32ToFloat16 is f's nearest IEEE half-precision value, ties to even, as bits: how a
// program fills a float16 Array (Values []uint16) one value at a time. Beyond ±65504 it is
// ±Inf; a NaN keeps the top bits of its payload, as NumPy's astype(np.float16) does.
func Float32ToFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	if b&0x7f800000 == 0x7f800000 && b&0x7fffff != 0 {
		nan := 0x7c00 | uint16(b&0x7fffff>>13)
		if nan == 0x7c00 {
			nan++
		}
		return sign | nan
	}
	return sign | uint16(narrow(math.Abs(float64(f)), 10, -14, 15))
}

func float64ToFloat16(f float64) uint16 {
	b := math.Float64bits(f)
	sign := uint16(b>>48) & 0x8000
	if math.IsNaN(f) {
		nan := 0x7c00 | uint16(b&(1<<52-1)>>42)
		if nan == 0x7c00 {
			nan++
		}
		return sign | nan
	}
	return sign | uint16(narrow(math.Abs(f), 10, -14, 15))
}

// Float16ToFloat32 is the value of IEEE half-precision bits h, exactly (float32 holds every
// half): how a program reads one element of a float16 Array, such as a prediction.
func Float16ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch exp {
	case 0x1f: // Inf or NaN, payload kept
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case 0: // zero or subnormal: mant x 2^-24
		f := float32(mant) * (1.0 / (1 << 24))
		return math.Float32frombits(sign | math.Float32bits(f))
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// Float32ToBFloat16 is f's nearest bfloat16 value, ties to even, as bits, as ml_dtypes and
// TensorFlow round: how a program fills a bfloat16 Array one value at a time. A NaN becomes
// the quiet NaN 0x7fc0 (with f's sign), as theirs do.
func Float32ToBFloat16(f float32) uint16 {
	return float64ToBFloat16(float64(f))
}

func float64ToBFloat16(f float64) uint16 {
	sign := uint16(0)
	if math.Signbit(f) {
		sign = 0x8000
	}
	if math.IsNaN(f) {
		return sign | 0x7fc0
	}
	return sign | uint16(narrow(math.Abs(f), 7, -126, 127))
}

// BFloat16ToFloat32 is the value of bfloat16 bits b, exactly (they are float32's top half):
// how a program reads one element of a bfloat16 Array.
func BFloat16ToFloat32(b uint16) float32 {
	return math.Float32frombits(uint32(b) << 16)
}

// narrow rounds a (not negative, not NaN) to the nearest value, ties to even, of a binary
// floating-point format with mbits stored mantissa bits and normal exponents emin..emax, and
// returns its bits without the sign: subnormals below 2^emin, the infinity above the largest
// finite value. Scaling by a power of two and math.RoundToEven are exact in float64, so a is
// rounded once.
func narrow(a float64, mbits uint, emin, emax int) uint32 {
	inf := uint32(emax-emin+2) << mbits
	if math.IsInf(a, 1) {
		return inf
	}
	if a == 0 {
		return 0
	}
	_, exp := math.Frexp(a) // a in [2^(exp-1), 2^exp)
	e := exp - 1
	if e > emax {
		return inf
	}
	if e < emin {
		// Subnormal: a multiple of 2^(emin-mbits); a carry to 2^mbits is the smallest normal,
		// whose bits are the same number.
		return uint32(math.RoundToEven(math.Ldexp(a, int(mbits)-emin)))
	}
	m := uint32(math.RoundToEven(math.Ldexp(a, int(mbits)-e))) // in [2^mbits, 2^(mbits+1)]
	// A carry to 2^(mbits+1) moves to the next exponent; past emax that is the infinity.
	return uint32(e-emin+1)<<mbits + m - 1<<mbits
}
