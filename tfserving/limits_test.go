package tfserving

import (
	"math"
	"runtime"
	"strings"
	"testing"

	tf "github.com/wamuir/graft/tensorflow"
	tensorpb "github.com/wamuir/graft/tensorflow/core/framework/tensor_go_proto"
	shapepb "github.com/wamuir/graft/tensorflow/core/framework/tensor_shape_go_proto"
	typespb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
	"google.golang.org/grpc/codes"
)

func TestElementCount(t *testing.T) {
	const big = int64(1) << 62
	for _, c := range []struct {
		shape []int64
		limit int64
		want  int64 // -1: refused
	}{
		{nil, 10, 1},
		{[]int64{2, 3}, 6, 6},
		{[]int64{2, 3}, 5, -1},
		{[]int64{-1, 3}, 100, -1},
		{[]int64{3, 0, -1}, 100, -1},                      // a zero does not excuse a negative dimension
		{[]int64{big, big, 0}, 100, 0},                    // empty, however large the rest claims
		{[]int64{0, big, big}, 100, 0},                    // in any order
		{[]int64{1 << 32, 1 << 32}, math.MaxInt64, -1},    // 2^64 wraps to 0 in int64
		{[]int64{1 << 31, 1 << 31, 2}, math.MaxInt64, -1}, // 2^63 wraps negative
		{[]int64{1 << 20, 1 << 20, 1 << 10}, 1 << 24, -1}, // the 2^50 probe
		{[]int64{math.MaxInt64, 1}, math.MaxInt64, math.MaxInt64},
		{[]int64{5}, 0, -1},
	} {
		n, ok := elementCount(c.shape, c.limit)
		if got := map[bool]int64{true: n, false: -1}[ok]; got != c.want {
			t.Errorf("elementCount(%v, %d) = %d, %v; want %d", c.shape, c.limit, n, ok, c.want)
		}
	}
}

func imageSignature() tf.Signature {
	return tf.Signature{Inputs: map[string]tf.TensorInfo{"images": {DType: tf.Float, Shape: tf.MakeShape(-1, 80, 80, 3)}}}
}

func tensorProto(dt tf.DataType, dims []int64, fill func(*tensorpb.TensorProto)) *tensorpb.TensorProto {
	p := &tensorpb.TensorProto{Dtype: typespb.DataType(dt), TensorShape: &shapepb.TensorShapeProto{}}
	for _, d := range dims {
		p.TensorShape.Dim = append(p.TensorShape.Dim, &shapepb.TensorShapeProto_Dim{Size: d})
	}
	if fill != nil {
		fill(p)
	}
	return p
}

func oneFloat(p *tensorpb.TensorProto) { p.FloatVal = []float32{0.5} }

// A few bytes of protobuf can claim any shape: every claim is refused from the shape alone,
// before anything sized by it is allocated.
func TestProtoClaimsCheckedBeforeAllocation(t *testing.T) {
	sig := imageSignature()
	const maxBytes = 1 << 20 // 13 images of 80x80x3 float32
	for _, c := range []struct {
		what   string
		proto  *tensorpb.TensorProto
		wantIn string
	}{
		{"2^50 elements, one value", tensorProto(tf.Float, []int64{1 << 20, 1 << 20, 1 << 10}, oneFloat), "got shape [1048576,1048576,1024], want [-1,80,80,3]"},
		{"2^40 images of the right shape, one value", tensorProto(tf.Float, []int64{1 << 40, 80, 80, 3}, oneFloat), "--max-request-bytes"},
		{"a batch that overflows int64", tensorProto(tf.Float, []int64{1 << 60, 80, 80, 3}, oneFloat), "--max-request-bytes"},
		{"one image over the budget", tensorProto(tf.Float, []int64{14, 80, 80, 3}, oneFloat), "--max-request-bytes"},
		{"negative dimension", tensorProto(tf.Float, []int64{-5, 80, 80, 3}, oneFloat), "negative dimension"},
		{"unknown rank", tensorProto(tf.Float, nil, func(p *tensorpb.TensorProto) { p.TensorShape.UnknownRank = true; oneFloat(p) }), "known shape"},
		{"300 dimensions", tensorProto(tf.Float, make([]int64, 300), oneFloat), "at most 254"},
		{"wrong dtype", tensorProto(tf.Double, []int64{1, 80, 80, 3}, func(p *tensorpb.TensorProto) { p.DoubleVal = []float64{1} }), "got dtype double, want float"},
		{"string dtype", tensorProto(tf.String, []int64{1}, func(p *tensorpb.TensorProto) { p.StringVal = [][]byte{[]byte("x")} }), "got dtype string, want float"},
		{"wrong rank", tensorProto(tf.Float, []int64{1, 80, 80}, oneFloat), "got shape [1,80,80]"},
		{"content of the wrong length", tensorProto(tf.Float, []int64{1, 80, 80, 3}, func(p *tensorpb.TensorProto) { p.TensorContent = make([]byte, 12) }), "tensor_content has 12 bytes"},
		{"two values for 19200 elements", tensorProto(tf.Float, []int64{1, 80, 80, 3}, func(p *tensorpb.TensorProto) { p.FloatVal = []float32{1, 2} }), "2 values for shape [1,80,80,3]"},
		{"no values", tensorProto(tf.Float, []int64{1, 80, 80, 3}, nil), "0 values"},
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := decodeProtoInputs("serving_default", sig, map[string]*tensorpb.TensorProto{"images": c.proto}, maxBytes)
		runtime.ReadMemStats(&after)
		if err == nil || err.Code != codes.InvalidArgument || !strings.Contains(err.Msg, c.wantIn) {
			t.Errorf("%s: %v, want INVALID_ARGUMENT mentioning %q", c.what, err, c.wantIn)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<10 {
			t.Errorf("%s: %d bytes allocated to refuse it", c.what, grew)
		}
	}

	_, err := decodeProtoInputs("serving_default", sig, map[string]*tensorpb.TensorProto{"pixels": tensorProto(tf.Float, []int64{1, 80, 80, 3}, oneFloat)}, maxBytes)
	if err == nil || !strings.Contains(err.Msg, `no input "pixels"`) {
		t.Errorf("unknown input: %v", err)
	}

	// What passes is what was sent: one value fills the shape, and 13 images fit 1 MiB.
	got, err := decodeProtoInputs("serving_default", sig, map[string]*tensorpb.TensorProto{"images": tensorProto(tf.Float, []int64{13, 80, 80, 3}, oneFloat)}, maxBytes)
	if err != nil {
		t.Fatal(err)
	}
	vals, verr := got["images"].values()
	if verr != nil || len(vals) != 13*80*80*3 || vals[0] != 0.5 || vals[len(vals)-1] != 0.5 {
		t.Errorf("filled tensor: %d values, %v", len(vals), verr)
	}
}

// The budget is per request, over all its inputs, and JSON numbers are charged as the
// signature's dtype: two float32 inputs of 2 and 3 values need 20 bytes.
func TestTensorBudgetSpansInputs(t *testing.T) {
	sig := tf.Signature{Inputs: map[string]tf.TensorInfo{
		"a": {DType: tf.Float, Shape: tf.MakeShape(-1, 2)},
		"b": {DType: tf.Float, Shape: tf.MakeShape(-1, 3)},
	}}
	body := []byte(`{"instances": [{"a": [1, 2], "b": [3, 4, 5]}]}`)
	req, format, perr := parsePredictBody(body)
	if perr != nil {
		t.Fatal(perr)
	}
	if _, err := decodeInputs(req, format, "s", sig, 20); err != nil {
		t.Errorf("20 bytes: %v", err)
	}
	if _, err := decodeInputs(req, format, "s", sig, 19); err == nil || err.Code != codes.InvalidArgument || !strings.Contains(err.Msg, "--max-request-bytes") {
		t.Errorf("19 bytes: %v, want INVALID_ARGUMENT naming --max-request-bytes", err)
	}
	protos := map[string]*tensorpb.TensorProto{
		"a": tensorProto(tf.Float, []int64{1, 2}, oneFloat),
		"b": tensorProto(tf.Float, []int64{1, 3}, oneFloat),
	}
	if _, err := decodeProtoInputs("s", sig, protos, 20); err != nil {
		t.Errorf("gRPC, 20 bytes: %v", err)
	}
	if _, err := decodeProtoInputs("s", sig, protos, 19); err == nil || !strings.Contains(err.Msg, "--max-request-bytes") {
		t.Errorf("gRPC, 19 bytes: %v", err)
	}
}

// A body of a million tiny instances costs what its numbers do: instances are visited in
// place, not gathered into a list of raw values first.
func TestManyInstancesDoNotAmplifyMemory(t *testing.T) {
	sig := tf.Signature{Inputs: map[string]tf.TensorInfo{"x": {DType: tf.Float, Shape: tf.MakeShape(-1)}}}
	const n = 1 << 20
	body := []byte(`{"instances": [` + strings.Repeat("0,", n-1) + "0]}")
	req, format, perr := parsePredictBody(body)
	if perr != nil {
		t.Fatal(perr)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, err := decodeInputs(req, format, "s", sig, 64<<20)
	runtime.ReadMemStats(&after)
	if err != nil || got["x"].rows() != n {
		t.Fatalf("%d scalar instances: %v", n, err)
	}
	// The float32 values grow by appending (a few dozen allocations); anything per instance
	// would be a million.
	if mallocs := after.Mallocs - before.Mallocs; mallocs > 1000 {
		t.Errorf("decoding %d instances took %d allocations", n, mallocs)
	}
}
