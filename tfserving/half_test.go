package tfserving

import (
	"math"
	"testing"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/emotions-dev/emotions/arrays"
)

// float16 and bfloat16 inputs come in JSON as numbers, rounded through float32 as TF Serving's
// reader does, and go back out as the numbers their bits hold.
func TestHalfDTypesInJSON(t *testing.T) {
	for _, dt := range []tf.DataType{tf.Half, tf.Bfloat16} {
		sig := tf.Signature{Inputs: map[string]tf.TensorInfo{"x": {DType: dt, Shape: tf.MakeShape(-1, 3)}}}
		req, format, perr := parsePredictBody([]byte(`{"instances": [[0.1, -2.5, 65504], [1e-8, 70000, 3]]}`))
		if perr != nil {
			t.Fatal(perr)
		}
		got, derr := decodeInputs(req, format, "s", sig, 1<<20)
		if derr != nil {
			t.Fatalf("%s: %v", dtypeName(dt), derr)
		}
		vals, err := got["x"].values()
		if err != nil {
			t.Fatal(err)
		}
		in := []float32{0.1, -2.5, 65504, 1e-8, 70000, 3}
		for i, v := range in {
			want := float64(arrays.Float16ToFloat32(arrays.Float32ToFloat16(v)))
			if dt == tf.Bfloat16 {
				want = float64(arrays.BFloat16ToFloat32(arrays.Float32ToBFloat16(v)))
			}
			if vals[i] != want && !(math.IsInf(vals[i], 1) && math.IsInf(want, 1)) {
				t.Errorf("%s: element %d: %v, want %v", dtypeName(dt), i, vals[i], want)
			}
		}
		if dt == tf.Half && !math.IsInf(vals[4], 1) {
			t.Errorf("float16 70000 read as %v, want +Inf (float16's largest is 65504)", vals[4])
		}
		// The request becomes a TensorFlow tensor of the signature's dtype (graft's own
		// ReadTensor panics on half types) and comes back out as it went in.
		tensor, err := got["x"].tensor()
		if err != nil {
			t.Fatalf("%s: %v", dtypeName(dt), err)
		}
		if tensor.DataType() != dt {
			t.Fatalf("%s input became a %s tensor", dtypeName(dt), dtypeName(tensor.DataType()))
		}
		back, err := fromTensor(tensor)
		if err != nil {
			t.Fatal(err)
		}
		if again, err := back.values(); err != nil || len(again) != len(vals) || again[0] != vals[0] || again[5] != vals[5] {
			t.Errorf("%s: through a tensor %v, want %v (%v)", dtypeName(dt), again, vals, err)
		}
	}
}
