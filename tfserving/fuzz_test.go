package tfserving

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"mime"
	"net/http/httptest"
	"strconv"
	"testing"

	tf "github.com/wamuir/graft/tensorflow"
	tensorpb "github.com/wamuir/graft/tensorflow/core/framework/tensor_go_proto"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// Fuzz targets for every decoder of bytes a client sends the server. `make test` runs each
// for a few seconds (scripts/fuzz.sh), `make fuzz` for a minute; the seeds, and every input
// that once failed, are in testdata/fuzz/<target>/ and run as plain tests too.

// fuzzBudget keeps fuzzed inputs small: any claim beyond it must be refused.
const fuzzBudget = 1 << 16

// fuzzSignatures are the inputs a fuzzed request is decoded for, picked by a fuzzed byte.
var fuzzSignatures = []tf.TensorInfo{
	{DType: tf.Float, Shape: tf.MakeShape(-1, 2, 3)},
	{DType: tf.Float}, // unknown rank: only the budget bounds it
	{DType: tf.Int32, Shape: tf.MakeShape(-1)},
	{DType: tf.Bool, Shape: tf.MakeShape(2, -1)},
	{DType: tf.Double, Shape: tf.ScalarShape()},
	{DType: tf.Uint8, Shape: tf.MakeShape(-1, 4)},
	{DType: tf.Half, Shape: tf.MakeShape(-1)},
	{DType: tf.Int64, Shape: tf.MakeShape(-1, 2)},
	{DType: tf.Int16, Shape: tf.MakeShape(-1)},
}

func wantInvalidArgument(t *testing.T, input []byte, err *Error) {
	t.Helper()
	if err.Code != codes.InvalidArgument || err.HTTP != 0 || err.Msg == "" {
		t.Fatalf("%q: refused with %v (HTTP %d) %q, want INVALID_ARGUMENT with a message", input, err.Code, err.HTTP, err.Msg)
	}
}

// FuzzTensorProto: a gRPC request's TensorProto, as bytes off the wire. Whatever it claims,
// decoding it allocates within the budget; what is accepted fits the signature, holds
// exactly what was sent, and survives a round trip through protobuf.
func FuzzTensorProto(f *testing.F) {
	f.Fuzz(func(t *testing.T, wire []byte, signature uint8) {
		var p tensorpb.TensorProto
		if proto.Unmarshal(wire, &p) != nil {
			return // grpc-go refuses it before our code runs
		}
		info := fuzzSignatures[int(signature)%len(fuzzSignatures)]
		sig := tf.Signature{Inputs: map[string]tf.TensorInfo{"x": info}}
		got, err := decodeProtoInputs("s", sig, map[string]*tensorpb.TensorProto{"x": &p}, fuzzBudget)
		if err != nil {
			wantInvalidArgument(t, wire, err)
			return
		}
		x := got["x"]
		size := elementSize[x.dtype]
		n, ok := elementCount(x.shape, fuzzBudget/int64(size))
		if x.dtype != info.DType || !ok || int64(len(x.data)) != n*int64(size) || checkDims("s", "x", info, x.shape) != nil {
			t.Fatalf("accepted %s%v with %d bytes for signature %s%v", dtypeName(x.dtype), x.shape, len(x.data), dtypeName(info.DType), info.Shape)
		}
		if want := sentBytes(&p, n, size); !bytes.Equal(x.data, want) {
			t.Fatalf("decoded %x, the request holds %x", x.data, want)
		}
		again, merr := proto.Marshal(x.proto())
		var q tensorpb.TensorProto
		if merr != nil || proto.Unmarshal(again, &q) != nil {
			t.Fatalf("round trip: %v", merr)
		}
		back, err := decodeProtoInputs("s", sig, map[string]*tensorpb.TensorProto{"x": &q}, fuzzBudget)
		if err != nil || back["x"].dtype != x.dtype || !equalShape(back["x"].shape, x.shape) || !bytes.Equal(back["x"].data, x.data) {
			t.Fatalf("round trip through protobuf changed the tensor: %v", err)
		}
	})
}

// sentBytes is the little-endian content p carries for n elements, read independently of
// fromProto: tensor_content as is, or the typed values (one of them repeated n times).
func sentBytes(p *tensorpb.TensorProto, n int64, size int) []byte {
	if len(p.GetTensorContent()) > 0 {
		return p.GetTensorContent()
	}
	var out []byte
	for i := int64(0); i < n; i++ {
		var b [8]byte
		le := binary.LittleEndian
		switch tf.DataType(p.GetDtype()) {
		case tf.Float:
			le.PutUint32(b[:], math.Float32bits(pick(p.GetFloatVal(), i)))
		case tf.Double:
			le.PutUint64(b[:], math.Float64bits(pick(p.GetDoubleVal(), i)))
		case tf.Int64:
			le.PutUint64(b[:], uint64(pick(p.GetInt64Val(), i)))
		case tf.Bool:
			if pick(p.GetBoolVal(), i) {
				b[0] = 1
			}
		case tf.Half, tf.Bfloat16:
			le.PutUint32(b[:], uint32(pick(p.GetHalfVal(), i)))
		default:
			le.PutUint32(b[:], uint32(pick(p.GetIntVal(), i)))
		}
		out = append(out, b[:size]...)
	}
	return out
}

func pick[T any](vals []T, i int64) T {
	if len(vals) == 1 {
		return vals[0]
	}
	return vals[i]
}

// FuzzJSONSplit: the splitter around the tensor parser. On JSON it must split exactly as
// encoding/json does (keys decoded alike, values byte for byte); on anything else it may
// accept what a later decoder refuses (it leaves scalars to them), but never panics.
func FuzzJSONSplit(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		var fields, elems []string // "key=value" / "value"
		ferr := objectFields(body, func(k string, v []byte) error {
			if end, err := skipValue(v, 0); err != nil || end != len(v) {
				t.Fatalf("%q: field %q value %q is not one value (%d, %v)", body, k, v, end, err)
			}
			fields = append(fields, strconv.Quote(k)+"="+string(v))
			return nil
		})
		lerr := listElements(body, func(v []byte) error {
			elems = append(elems, string(v))
			return nil
		})
		if !json.Valid(body) {
			return
		}
		first := bytes.TrimSpace(body)[0]
		if (first == '{') != (ferr == nil) || (first == '[') != (lerr == nil) {
			t.Fatalf("%q is JSON: objectFields says %v, listElements %v", body, ferr, lerr)
		}
		if first != '{' && first != '[' {
			return
		}
		var want []string
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.Token() // the opening bracket
		for dec.More() {
			key := ""
			if first == '{' {
				tok, err := dec.Token()
				if err != nil {
					t.Fatalf("%q: encoding/json: %v", body, err)
				}
				key = strconv.Quote(tok.(string)) + "="
			}
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				t.Fatalf("%q: encoding/json: %v", body, err)
			}
			want = append(want, key+string(raw))
		}
		got := elems
		if first == '{' {
			got = fields
		}
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
			t.Fatalf("%q: split into %q, encoding/json reads %q", body, got, want)
		}
	})
}

// FuzzJSONTensor: the hand-written tensor parser against encoding/json, both ways. What it
// accepts, encoding/json reads as the same numbers in the same shape (NaN and Infinity
// aside: TF Serving takes them, encoding/json does not); every rectangular nest of numbers
// encoding/json reads, within the nesting bound, it accepts.
func FuzzJSONTensor(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		shape, vals, err := parseNested(b)
		if err == nil {
			if n, ok := elementCount(shape, math.MaxInt64); !ok || int64(len(vals)) != n {
				t.Fatalf("%q: shape %v, %d values", b, shape, len(vals))
			}
		}
		if !json.Valid(b) {
			return // not JSON (or NaN/Infinity, which only we take): nothing to compare with
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%q: valid JSON, but %v", b, err)
		}
		wantShape, wantVals, isTensor := referenceTensor(v)
		switch {
		case isTensor && err != nil:
			t.Fatalf("%q: encoding/json reads a %v tensor, the parser says %v", b, wantShape, err)
		case !isTensor && err == nil:
			t.Fatalf("%q: accepted as %v, but it is no tensor of numbers", b, shape)
		case !isTensor:
			return
		}
		if !equalShape(shape, wantShape) || len(vals) != len(wantVals) {
			t.Fatalf("%q: shape %v, encoding/json reads %v", b, shape, wantShape)
		}
		for i := range vals {
			if math.Float64bits(vals[i]) != math.Float64bits(wantVals[i]) {
				t.Fatalf("%q: value %d is %v, encoding/json reads %v", b, i, vals[i], wantVals[i])
			}
		}
	})
}

// referenceTensor reads a value encoding/json decoded (with UseNumber) as TF Serving's JSON
// tensors are defined: a number or boolean, or a list of tensors of one shape, with numbers
// no deeper than maxNesting lists (empty lists one deeper).
func referenceTensor(v any) (shape []int64, vals []float64, ok bool) {
	var walk func(v any, depth int) ([]int64, bool)
	walk = func(v any, depth int) ([]int64, bool) {
		switch v := v.(type) {
		case json.Number:
			f, err := strconv.ParseFloat(string(v), 64)
			if err != nil && !errors.Is(err, strconv.ErrRange) {
				return nil, false
			}
			vals = append(vals, f)
			return []int64{}, depth <= maxNesting
		case bool:
			vals = append(vals, map[bool]float64{false: 0, true: 1}[v])
			return []int64{}, depth <= maxNesting
		case []any:
			if depth > maxNesting {
				return nil, false
			}
			var inner []int64
			for i, e := range v {
				s, ok := walk(e, depth+1)
				if !ok || (i > 0 && !equalShape(s, inner)) {
					return nil, false
				}
				inner = s
			}
			return append([]int64{int64(len(v))}, inner...), true
		}
		return nil, false
	}
	shape, ok = walk(v, 0)
	return shape, vals, ok
}

// predictSignatures are what fuzzed :predict bodies are decoded for.
var predictSignatures = []tf.Signature{
	{Inputs: map[string]tf.TensorInfo{"images": {DType: tf.Float, Shape: tf.MakeShape(-1, 2, 2)}}},
	{Inputs: map[string]tf.TensorInfo{"a": {DType: tf.Float, Shape: tf.MakeShape(-1, 2)}, "b": {DType: tf.Int32, Shape: tf.MakeShape(-1)}}},
	{Inputs: map[string]tf.TensorInfo{"x": {DType: tf.Double}}},
	{Inputs: map[string]tf.TensorInfo{"flag": {DType: tf.Bool, Shape: tf.MakeShape(-1)}, "s": {DType: tf.Half, Shape: tf.MakeShape(-1)}}},
}

// FuzzPredictBody: a whole :predict body, split and parsed for a signature. Refusals are
// INVALID_ARGUMENT; what is accepted fits the signature and the budget, and holds the
// numbers encoding/json reads in the body, instance by instance.
func FuzzPredictBody(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte, signature uint8) {
		req, format, err := parsePredictBody(body)
		if err != nil {
			wantInvalidArgument(t, body, err)
			return
		}
		sig := predictSignatures[int(signature)%len(predictSignatures)]
		got, err := decodeInputs(req, format, "s", sig, fuzzBudget)
		if err != nil {
			wantInvalidArgument(t, body, err)
			return
		}
		total := 0
		for name, x := range got {
			info := sig.Inputs[name]
			n, ok := elementCount(x.shape, math.MaxInt64)
			if x.dtype != info.DType || checkDims("s", name, info, x.shape) != nil || !ok || int64(len(x.data)) != n*int64(elementSize[x.dtype]) {
				t.Fatalf("%q: input %s accepted as %s%v with %d bytes", body, name, dtypeName(x.dtype), x.shape, len(x.data))
			}
			total += len(x.data)
		}
		if len(got) != len(sig.Inputs) || total > fuzzBudget {
			t.Fatalf("%q: %d inputs of %d bytes accepted", body, len(got), total)
		}

		want, ok := referenceInputs(body, format, sig)
		if !ok {
			return // beyond encoding/json (NaN, Infinity, or invalid JSON in a field we ignore)
		}
		for name, x := range got {
			var encoded []byte
			size := elementSize[x.dtype]
			for _, v := range want[name] {
				b := make([]byte, size)
				encodeValue(x.dtype, v, b)
				encoded = append(encoded, b...)
			}
			if !bytes.Equal(encoded, x.data) {
				t.Fatalf("%q: input %s decoded as %x, encoding/json reads %v", body, name, x.data, want[name])
			}
		}
	})
}

// referenceInputs is each input's numbers in order, read from body by encoding/json as TF
// Serving's row and columnar formats define them; ok=false if encoding/json refuses the body.
func referenceInputs(body []byte, format requestFormat, sig tf.Signature) (map[string][]float64, bool) {
	if !json.Valid(body) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var req map[string]any
	if dec.Decode(&req) != nil {
		return nil, false
	}
	out := map[string][]float64{}
	add := func(name string, v any) {
		_, vals, _ := referenceTensor(v)
		out[name] = append(out[name], vals...)
	}
	names := sortedKeys(sig.Inputs)
	if format == columnarFormat {
		if named, ok := req["inputs"].(map[string]any); ok {
			for k, v := range named {
				add(k, v)
			}
		} else {
			add(names[0], req["inputs"])
		}
		return out, true
	}
	for _, row := range req["instances"].([]any) {
		if named, ok := row.(map[string]any); ok {
			for k, v := range named {
				add(k, v)
			}
		} else {
			add(names[0], row)
		}
	}
	return out, true
}

// FuzzClassifyImageBody: what :classify_image makes of a body: the body itself as one image,
// or JSON {"instances": [{"b64": ..., "file": ...}]}. Refusals are INVALID_ARGUMENT; the
// images accepted from JSON are the base64 encoding/json reads, and survive a round trip.
func FuzzClassifyImageBody(f *testing.F) {
	contentTypes := []string{"application/json", "image/jpeg", "", "application/json; charset=utf-8", "APPLICATION/JSON", "application/octet-stream", "text/plain; charset"}
	f.Fuzz(func(t *testing.T, body []byte, contentType uint8) {
		ct := contentTypes[int(contentType)%len(contentTypes)]
		r := httptest.NewRequest("POST", "/v1/models/m:classify_image?file=f.jpg", nil)
		r.Header.Set("Content-Type", ct)
		images, err := imagesFromRequest(r, body)
		if err != nil {
			wantInvalidArgument(t, body, err)
			return
		}
		if mt, _, _ := mime.ParseMediaType(ct); mt != "application/json" {
			if len(images) != 1 || images[0].Name != "f.jpg" || !bytes.Equal(images[0].Data, body) || len(body) == 0 {
				t.Fatalf("%q as %s: %d images", body, ct, len(images))
			}
			return
		}
		var req struct {
			Instances []struct {
				B64 string `json:"b64"`
			} `json:"instances"`
		}
		if err := json.Unmarshal(body, &req); err != nil || len(req.Instances) != len(images) || len(images) == 0 {
			t.Fatalf("%q: %d images, encoding/json reads %d instances (%v)", body, len(images), len(req.Instances), err)
		}
		again := struct {
			Instances []map[string]string `json:"instances"`
		}{}
		for i, img := range images {
			b64 := req.Instances[i].B64
			want, err := base64.StdEncoding.DecodeString(b64)
			if err != nil || !bytes.Equal(img.Data, want) || img.Name == "" {
				t.Fatalf("%q: image %d (%q) is %q, instance holds %q", body, i, img.Name, img.Data, b64)
			}
			again.Instances = append(again.Instances, map[string]string{"b64": base64.StdEncoding.EncodeToString(img.Data), "file": img.Name})
		}
		raw, _ := json.Marshal(again)
		back, err := imagesFromRequest(r, raw)
		if err != nil || len(back) != len(images) {
			t.Fatalf("round trip of %q: %v", body, err)
		}
		for i := range back {
			if back[i].Name != images[i].Name || !bytes.Equal(back[i].Data, images[i].Data) {
				t.Fatalf("round trip of %q changed image %d", body, i)
			}
		}
	})
}

// FuzzStringInputs: a request for a string input, as a JSON body (strings and
// {"b64": ...}, row or columnar) and as a gRPC TensorProto. Whatever it claims, what is
// accepted holds one string per element within the budget, and exactly what was sent.
func FuzzStringInputs(f *testing.F) {
	sig := tf.Signature{Inputs: map[string]tf.TensorInfo{"text": {DType: tf.String, Shape: tf.MakeShape(-1)}}}
	f.Fuzz(func(t *testing.T, body []byte, wire []byte) {
		if req, format, err := parsePredictBody(body); err == nil {
			got, err := decodeInputs(req, format, "s", sig, fuzzBudget)
			if err != nil {
				wantInvalidArgument(t, body, err)
			} else {
				x := got["text"]
				if x.dtype != tf.String || len(x.shape) != 1 || int64(len(x.strs)) != x.shape[0] || int64(len(x.strs))*stringOverhead > fuzzBudget {
					t.Fatalf("%q: accepted as %s%v with %d strings", body, dtypeName(x.dtype), x.shape, len(x.strs))
				}
				var plain struct{ Instances []string }
				if format == rowFormat && json.Unmarshal(body, &plain) == nil && len(plain.Instances) > 0 {
					if fmt.Sprint(plain.Instances) != fmt.Sprint(x.strs) {
						t.Fatalf("%q: decoded %q, encoding/json reads %q", body, x.strs, plain.Instances)
					}
				}
			}
		}
		var p tensorpb.TensorProto
		if proto.Unmarshal(wire, &p) != nil {
			return
		}
		got, err := decodeProtoInputs("s", sig, map[string]*tensorpb.TensorProto{"text": &p}, fuzzBudget)
		if err != nil {
			wantInvalidArgument(t, wire, err)
			return
		}
		x := got["text"]
		if len(x.shape) != 1 || int64(len(x.strs)) != x.shape[0] {
			t.Fatalf("accepted %v with %d strings", x.shape, len(x.strs))
		}
		for i, s := range x.strs {
			sent := p.GetStringVal()[0]
			if len(p.GetStringVal()) > 1 {
				sent = p.GetStringVal()[i]
			}
			if s != string(sent) {
				t.Fatalf("string %d is %q, the request holds %q", i, s, sent)
			}
		}
	})
}
