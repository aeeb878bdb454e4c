package tfserving

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	tf "github.com/wamuir/graft/tensorflow"
	tensorpb "github.com/wamuir/graft/tensorflow/core/framework/tensor_go_proto"
	shapepb "github.com/wamuir/graft/tensorflow/core/framework/tensor_shape_go_proto"
	typespb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
	"google.golang.org/grpc/codes"

	"github.com/emotions-dev/emotions/arrays"
	"github.com/emotions-dev/emotions/tfgraph"
)

// rawTensor is a dense numeric tensor as TensorFlow lays it out in memory (little-endian,
// row-major): batching concatenates and splits these bytes along the first dimension without
// looking at the values, whatever the dtype. A string tensor has its elements in strs
// instead (row-major too), and no data.
type rawTensor struct {
	dtype tf.DataType
	shape []int64
	data  []byte
	strs  []string
}

// elementSize of the numeric dtypes requests may carry; strings, the other one, have no
// fixed size (see stringOverhead).
var elementSize = map[tf.DataType]int{
	tf.Float: 4, tf.Double: 8, tf.Int32: 4, tf.Int64: 8, tf.Uint8: 1, tf.Int8: 1,
	tf.Int16: 2, tf.Uint16: 2, tf.Bool: 1, tf.Half: 2, tf.Bfloat16: 2,
}

// stringOverhead is what the request budget charges for each string element on top of its
// bytes: TensorFlow's tstring is 24 bytes, and an empty string must not be free, or a few
// bytes of JSON could claim millions of them.
const stringOverhead = 24

func (r rawTensor) tensor() (*tf.Tensor, error) {
	if r.dtype == tf.String {
		return tfgraph.StringTensor(r.strs, r.shape...)
	}
	return tfgraph.RawTensor(r.dtype, r.shape, r.data)
}

func fromTensor(t *tf.Tensor) (rawTensor, error) {
	if t.DataType() == tf.String {
		strs, err := tfgraph.Strings(t)
		if err != nil {
			return rawTensor{}, err
		}
		return rawTensor{dtype: tf.String, shape: t.Shape(), strs: strs}, nil
	}
	if _, ok := elementSize[t.DataType()]; !ok {
		return rawTensor{}, fmt.Errorf("output of dtype %s cannot be returned", dtypeName(t.DataType()))
	}
	var buf bytes.Buffer
	if _, err := t.WriteContentsTo(&buf); err != nil {
		return rawTensor{}, err
	}
	return rawTensor{dtype: t.DataType(), shape: t.Shape(), data: buf.Bytes()}, nil
}

// rows is the size of the first (batch) dimension.
func (r rawTensor) rows() int64 {
	if len(r.shape) == 0 {
		return 0
	}
	return r.shape[0]
}

// concatRows stacks tensors of the same dtype and trailing shape along dimension 0.
func concatRows(parts []rawTensor) rawTensor {
	if len(parts) == 1 {
		return parts[0]
	}
	var rows int64
	size, count := 0, 0
	for _, p := range parts {
		rows += p.rows()
		size += len(p.data)
		count += len(p.strs)
	}
	shape := append([]int64{rows}, parts[0].shape[1:]...)
	if parts[0].dtype == tf.String {
		strs := make([]string, 0, count)
		for _, p := range parts {
			strs = append(strs, p.strs...)
		}
		return rawTensor{dtype: tf.String, shape: shape, strs: strs}
	}
	data := make([]byte, 0, size)
	for _, p := range parts {
		data = append(data, p.data...)
	}
	return rawTensor{dtype: parts[0].dtype, shape: shape, data: data}
}

// sliceRows is rows [from, to) of r, sharing its bytes.
func (r rawTensor) sliceRows(from, to int64) (rawTensor, error) {
	shape := append([]int64{to - from}, r.shape[1:]...)
	if r.dtype == tf.String {
		if r.rows() == 0 || len(r.strs)%int(r.rows()) != 0 {
			return rawTensor{}, fmt.Errorf("output of shape %v has no batch dimension to split", r.shape)
		}
		per := int64(len(r.strs)) / r.rows()
		return rawTensor{dtype: tf.String, shape: shape, strs: r.strs[from*per : to*per]}, nil
	}
	if r.rows() == 0 || len(r.data)%int(r.rows()) != 0 {
		return rawTensor{}, fmt.Errorf("output of shape %v has no batch dimension to split", r.shape)
	}
	rowBytes := int64(len(r.data)) / r.rows()
	return rawTensor{dtype: r.dtype, shape: shape, data: r.data[from*rowBytes : to*rowBytes]}, nil
}

// values decodes r's elements as float64, which represents every dtype we accept exactly
// (int64 beyond 2^53 aside).
func (r rawTensor) values() ([]float64, error) {
	size, ok := elementSize[r.dtype]
	if !ok {
		return nil, fmt.Errorf("dtype %s is not supported", dtypeName(r.dtype))
	}
	n := len(r.data) / size
	out := make([]float64, n)
	le := binary.LittleEndian
	for i := range out {
		b := r.data[i*size:]
		switch r.dtype {
		case tf.Float:
			out[i] = float64(math.Float32frombits(le.Uint32(b)))
		case tf.Double:
			out[i] = math.Float64frombits(le.Uint64(b))
		case tf.Int32:
			out[i] = float64(int32(le.Uint32(b)))
		case tf.Int64:
			out[i] = float64(int64(le.Uint64(b)))
		case tf.Int16:
			out[i] = float64(int16(le.Uint16(b)))
		case tf.Uint16:
			out[i] = float64(le.Uint16(b))
		case tf.Int8:
			out[i] = float64(int8(b[0]))
		case tf.Uint8, tf.Bool:
			out[i] = float64(b[0])
		case tf.Half:
			out[i] = float64(arrays.Float16ToFloat32(le.Uint16(b)))
		case tf.Bfloat16:
			out[i] = float64(arrays.BFloat16ToFloat32(le.Uint16(b)))
		default:
			return nil, fmt.Errorf("dtype %s is not supported", dtypeName(r.dtype))
		}
	}
	return out, nil
}

// encodeValue writes v as one element of dtype dt into b (at least elementSize[dt] long);
// the inverse of values for every dtype a request may carry as numbers.
func encodeValue(dt tf.DataType, v float64, b []byte) {
	le := binary.LittleEndian
	switch dt {
	case tf.Float:
		le.PutUint32(b, math.Float32bits(float32(v)))
	case tf.Double:
		le.PutUint64(b, math.Float64bits(v))
	case tf.Int32:
		le.PutUint32(b, uint32(int32(v)))
	case tf.Int64:
		le.PutUint64(b, uint64(int64(v)))
	case tf.Int16, tf.Uint16:
		le.PutUint16(b, uint16(int64(v)))
	case tf.Int8, tf.Uint8:
		b[0] = byte(int64(v))
	case tf.Bool:
		b[0] = 0
		if v != 0 {
			b[0] = 1
		}
	case tf.Half: // through float32, as TF Serving's JSON reader converts
		le.PutUint16(b, arrays.Float32ToFloat16(float32(v)))
	case tf.Bfloat16:
		le.PutUint16(b, arrays.Float32ToBFloat16(float32(v)))
	}
}

// checkDType and checkDims compare a request tensor with the signature's TensorInfo; the
// messages name the input and both sides, since this is the mistake clients make most.
func checkDType(sig, input string, info tf.TensorInfo, dt tf.DataType) *Error {
	if dt != info.DType {
		return errorf(codes.InvalidArgument, "signature %s input %s: got dtype %s, want %s", sig, input, dtypeName(dt), dtypeName(info.DType))
	}
	return nil
}

// checkDims accepts any size where the signature has -1 (the batch dimension, usually).
func checkDims(sig, input string, info tf.TensorInfo, shape []int64) *Error {
	want, err := info.Shape.ToSlice()
	if err != nil { // unknown rank: the element budget still bounds the tensor
		return nil
	}
	ok := len(want) == len(shape)
	for i := 0; ok && i < len(want); i++ {
		ok = want[i] < 0 || want[i] == shape[i]
	}
	if !ok {
		return errorf(codes.InvalidArgument, "signature %s input %s: got shape %s, want %s", sig, input, shapeString(shape), shapeString(want))
	}
	return nil
}

func shapeString(dims []int64) string {
	parts := make([]string, len(dims))
	for i, d := range dims {
		if d < 0 {
			parts[i] = "-1"
		} else {
			parts[i] = fmt.Sprint(d)
		}
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func dtypeName(dt tf.DataType) string {
	return strings.ToLower(strings.TrimPrefix(typespb.DataType(dt).String(), "DT_"))
}

// maxRank bounds the dimensions a request tensor may claim (TensorFlow's own limit).
const maxRank = 254

// decodeProtoInputs converts a gRPC request's tensors for signature sigName, each checked
// against the signature and all within maxBytes of tensor data before any is allocated.
func decodeProtoInputs(sigName string, sig tf.Signature, in map[string]*tensorpb.TensorProto, maxBytes int64) (map[string]rawTensor, *Error) {
	budget := newTensorBudget(maxBytes)
	out := make(map[string]rawTensor, len(in))
	for _, name := range sortedKeys(in) { // sorted: the same request always gets the same message
		info, ok := sig.Inputs[name]
		if !ok {
			return nil, errorf(codes.InvalidArgument, "signature %s has no input %q (inputs: %v)", sigName, name, sortedKeys(sig.Inputs))
		}
		t, err := fromProto(sigName, name, info, in[name], budget)
		if err != nil {
			return nil, err
		}
		out[name] = t
	}
	return out, checkInputs(sigName, sig, out)
}

// fromProto converts a request TensorProto (tensor_content, as tf.make_tensor_proto writes
// it, or the typed *_val fields, where one value fills the whole shape) to a rawTensor.
// The claimed dtype and shape are held against the signature and the budget first: a few
// bytes can claim any shape, and only what passes is allocated.
func fromProto(sigName, name string, info tf.TensorInfo, p *tensorpb.TensorProto, budget *tensorBudget) (rawTensor, *Error) {
	dt := tf.DataType(p.GetDtype())
	size, ok := elementSize[dt]
	if dt == tf.String {
		size, ok = stringOverhead, true
	}
	if !ok {
		return rawTensor{}, errorf(codes.InvalidArgument, "input %s: dtype %s is not supported", name, dtypeName(dt))
	}
	if err := checkDType(sigName, name, info, dt); err != nil {
		return rawTensor{}, err
	}
	dims := p.GetTensorShape().GetDim()
	if p.GetTensorShape().GetUnknownRank() || len(dims) > maxRank {
		return rawTensor{}, errorf(codes.InvalidArgument, "input %s: a request tensor needs a known shape of at most %d dimensions", name, maxRank)
	}
	shape := make([]int64, len(dims))
	for i, d := range dims {
		if d.GetSize() < 0 {
			return rawTensor{}, errorf(codes.InvalidArgument, "input %s: negative dimension %d in shape", name, d.GetSize())
		}
		shape[i] = d.GetSize()
	}
	if err := checkDims(sigName, name, info, shape); err != nil {
		return rawTensor{}, err
	}
	n, ok := elementCount(shape, budget.elements(size))
	if !ok {
		return rawTensor{}, budget.exceeded(name, fmt.Sprintf("shape %s of %s", shapeString(shape), dtypeName(dt)))
	}
	budget.take(n, size)
	if dt == tf.String {
		return stringsFromProto(name, shape, n, p, budget)
	}
	if content := p.GetTensorContent(); len(content) > 0 {
		if int64(len(content)) != n*int64(size) {
			return rawTensor{}, errorf(codes.InvalidArgument, "input %s: tensor_content has %d bytes, shape %s of %s needs %d",
				name, len(content), shapeString(shape), dtypeName(dt), n*int64(size))
		}
		return rawTensor{dtype: dt, shape: shape, data: content}, nil
	}
	data, err := typedContent(dt, p, n)
	if err != nil {
		return rawTensor{}, errorf(codes.InvalidArgument, "input %s: %v for shape %s (%d elements)", name, err, shapeString(shape), n)
	}
	return rawTensor{dtype: dt, shape: shape, data: data}, nil
}

// stringsFromProto takes a string tensor's n elements from string_val (n values, or one that
// fills all n), its bytes charged to the budget before they are copied.
func stringsFromProto(name string, shape []int64, n int64, p *tensorpb.TensorProto, budget *tensorBudget) (rawTensor, *Error) {
	vals := p.GetStringVal()
	if len(p.GetTensorContent()) > 0 {
		return rawTensor{}, errorf(codes.InvalidArgument, "input %s: a string tensor carries its values in string_val, not tensor_content", name)
	}
	if int64(len(vals)) != n && len(vals) != 1 {
		return rawTensor{}, errorf(codes.InvalidArgument, "input %s: %d values for shape %s (%d elements)", name, len(vals), shapeString(shape), n)
	}
	var total int64
	for _, v := range vals {
		total += int64(len(v))
	}
	if len(vals) == 1 {
		total = 0 // the one value is shared by every element, not copied n times
		if n > 0 {
			total = int64(len(vals[0]))
		}
	}
	if budget.elements(1) < total {
		return rawTensor{}, budget.exceeded(name, fmt.Sprintf("%d bytes of strings", total))
	}
	budget.take(total, 1)
	strs := make([]string, n)
	for i := range strs {
		if len(vals) == 1 {
			if i == 0 {
				strs[0] = string(vals[0])
			} else {
				strs[i] = strs[0]
			}
			continue
		}
		strs[i] = string(vals[i])
	}
	return rawTensor{dtype: tf.String, shape: shape, strs: strs}, nil
}

// typedContent encodes the typed *_val field that carries dt: n values, or one that fills
// all n elements.
func typedContent(dt tf.DataType, p *tensorpb.TensorProto, n int64) ([]byte, error) {
	le := binary.LittleEndian
	switch dt {
	case tf.Float:
		return encodeTyped(p.GetFloatVal(), n, 4, func(b []byte, v float32) { le.PutUint32(b, math.Float32bits(v)) })
	case tf.Double:
		return encodeTyped(p.GetDoubleVal(), n, 8, func(b []byte, v float64) { le.PutUint64(b, math.Float64bits(v)) })
	case tf.Int64:
		return encodeTyped(p.GetInt64Val(), n, 8, func(b []byte, v int64) { le.PutUint64(b, uint64(v)) })
	case tf.Bool:
		return encodeTyped(p.GetBoolVal(), n, 1, func(b []byte, v bool) {
			if v {
				b[0] = 1
			}
		})
	case tf.Int32:
		return encodeTyped(p.GetIntVal(), n, 4, func(b []byte, v int32) { le.PutUint32(b, uint32(v)) })
	case tf.Int16, tf.Uint16: // int_val carries them, as TensorFlow's tensor_util writes
		return encodeTyped(p.GetIntVal(), n, 2, func(b []byte, v int32) { le.PutUint16(b, uint16(v)) })
	case tf.Int8, tf.Uint8:
		return encodeTyped(p.GetIntVal(), n, 1, func(b []byte, v int32) { b[0] = byte(v) })
	case tf.Half, tf.Bfloat16: // half_val holds their bit patterns
		return encodeTyped(p.GetHalfVal(), n, 2, func(b []byte, v int32) { le.PutUint16(b, uint16(v)) })
	}
	return nil, fmt.Errorf("dtype %s is not supported", dtypeName(dt))
}

// encodeTyped checks the number of values before allocating n elements of size bytes.
func encodeTyped[T any](vals []T, n int64, size int, put func([]byte, T)) ([]byte, error) {
	if int64(len(vals)) != n && len(vals) != 1 {
		return nil, fmt.Errorf("%d values", len(vals))
	}
	out := make([]byte, n*int64(size))
	for i := int64(0); i < n; i++ {
		v := vals[0]
		if len(vals) > 1 {
			v = vals[i]
		}
		put(out[i*int64(size):], v)
	}
	return out, nil
}

func (r rawTensor) proto() *tensorpb.TensorProto {
	dims := make([]*shapepb.TensorShapeProto_Dim, len(r.shape))
	for i, d := range r.shape {
		dims[i] = &shapepb.TensorShapeProto_Dim{Size: d}
	}
	p := &tensorpb.TensorProto{
		Dtype:         typespb.DataType(r.dtype),
		TensorShape:   &shapepb.TensorShapeProto{Dim: dims},
		TensorContent: r.data,
	}
	if r.dtype == tf.String {
		p.StringVal = make([][]byte, len(r.strs))
		for i, v := range r.strs {
			p.StringVal[i] = []byte(v)
		}
	}
	return p
}
