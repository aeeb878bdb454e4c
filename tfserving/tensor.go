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
)

// rawTensor is a dense numeric tensor as TensorFlow lays it out in memory (little-endian,
// row-major): batching concatenates and splits these bytes along the first dimension without
// looking at the values, whatever the dtype.
type rawTensor struct {
	dtype tf.DataType
	shape []int64
	data  []byte
}

// elementSize of the dtypes requests may carry (strings are not batched: none of our
// signatures takes one).
var elementSize = map[tf.DataType]int{
	tf.Float: 4, tf.Double: 8, tf.Int32: 4, tf.Int64: 8, tf.Uint8: 1, tf.Int8: 1,
	tf.Int16: 2, tf.Uint16: 2, tf.Bool: 1, tf.Half: 2, tf.Bfloat16: 2,
}

func numElements(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

func (r rawTensor) tensor() (*tf.Tensor, error) {
	return tf.ReadTensor(r.dtype, r.shape, bytes.NewReader(r.data))
}

func fromTensor(t *tf.Tensor) (rawTensor, error) {
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
	size := 0
	for _, p := range parts {
		rows += p.rows()
		size += len(p.data)
	}
	data := make([]byte, 0, size)
	for _, p := range parts {
		data = append(data, p.data...)
	}
	shape := append([]int64{rows}, parts[0].shape[1:]...)
	return rawTensor{dtype: parts[0].dtype, shape: shape, data: data}
}

// sliceRows is rows [from, to) of r, sharing its bytes.
func (r rawTensor) sliceRows(from, to int64) (rawTensor, error) {
	if r.rows() == 0 || len(r.data)%int(r.rows()) != 0 {
		return rawTensor{}, fmt.Errorf("output of shape %v has no batch dimension to split", r.shape)
	}
	rowBytes := int64(len(r.data)) / r.rows()
	shape := append([]int64{to - from}, r.shape[1:]...)
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
		default:
			return nil, fmt.Errorf("dtype %s is not supported", dtypeName(r.dtype))
		}
	}
	return out, nil
}

// encodeValues is the inverse of values for dtype dt.
func encodeValues(dt tf.DataType, vals []float64) ([]byte, error) {
	size, ok := elementSize[dt]
	if !ok || dt == tf.Half || dt == tf.Bfloat16 {
		return nil, fmt.Errorf("inputs of dtype %s are not supported", dtypeName(dt))
	}
	out := make([]byte, len(vals)*size)
	le := binary.LittleEndian
	for i, v := range vals {
		b := out[i*size:]
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
			if v != 0 {
				b[0] = 1
			}
		}
	}
	return out, nil
}

// checkShape compares a request tensor with the signature's TensorInfo; the message names
// the input and both shapes, since this is the mistake clients make most.
func checkShape(sig, input string, info tf.TensorInfo, t rawTensor) *Error {
	if t.dtype != info.DType {
		return errorf(codes.InvalidArgument, "signature %s input %s: got dtype %s, want %s", sig, input, dtypeName(t.dtype), dtypeName(info.DType))
	}
	want, err := info.Shape.ToSlice()
	if err != nil { // unknown rank
		return nil
	}
	ok := len(want) == len(t.shape)
	for i := 0; ok && i < len(want); i++ {
		ok = want[i] < 0 || want[i] == t.shape[i]
	}
	if !ok {
		return errorf(codes.InvalidArgument, "signature %s input %s: got shape %s, want %s", sig, input, shapeString(t.shape), shapeString(want))
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

// fromProto converts a request TensorProto (tensor_content, as tf.make_tensor_proto writes
// it, or the typed *_val fields, where one value fills the whole shape) to a rawTensor.
func fromProto(name string, p *tensorpb.TensorProto) (rawTensor, *Error) {
	dt := tf.DataType(p.GetDtype())
	size, ok := elementSize[dt]
	if !ok {
		return rawTensor{}, errorf(codes.InvalidArgument, "input %s: dtype %s is not supported", name, dtypeName(dt))
	}
	var shape []int64
	for _, d := range p.GetTensorShape().GetDim() {
		if d.GetSize() < 0 {
			return rawTensor{}, errorf(codes.InvalidArgument, "input %s: negative dimension in shape", name)
		}
		shape = append(shape, d.GetSize())
	}
	n := numElements(shape)
	if content := p.GetTensorContent(); len(content) > 0 {
		if int64(len(content)) != n*int64(size) {
			return rawTensor{}, errorf(codes.InvalidArgument, "input %s: tensor_content has %d bytes, shape %s of %s needs %d",
				name, len(content), shapeString(shape), dtypeName(dt), n*int64(size))
		}
		return rawTensor{dtype: dt, shape: shape, data: content}, nil
	}
	vals := typedValues(dt, p)
	switch {
	case int64(len(vals)) == n:
	case len(vals) == 1:
		fill := make([]float64, n)
		for i := range fill {
			fill[i] = vals[0]
		}
		vals = fill
	default:
		return rawTensor{}, errorf(codes.InvalidArgument, "input %s: %d values for shape %s (%d elements)", name, len(vals), shapeString(shape), n)
	}
	data, err := encodeValues(dt, vals)
	if err != nil {
		return rawTensor{}, errorf(codes.InvalidArgument, "input %s: %v", name, err)
	}
	return rawTensor{dtype: dt, shape: shape, data: data}, nil
}

func typedValues(dt tf.DataType, p *tensorpb.TensorProto) []float64 {
	var out []float64
	switch dt {
	case tf.Float:
		for _, v := range p.GetFloatVal() {
			out = append(out, float64(v))
		}
	case tf.Double:
		out = p.GetDoubleVal()
	case tf.Int64:
		for _, v := range p.GetInt64Val() {
			out = append(out, float64(v))
		}
	case tf.Bool:
		for _, v := range p.GetBoolVal() {
			out = append(out, map[bool]float64{false: 0, true: 1}[v])
		}
	default: // int32, int16, int8, uint8, uint16 travel in int_val
		for _, v := range p.GetIntVal() {
			out = append(out, float64(v))
		}
	}
	return out
}

func (r rawTensor) proto() *tensorpb.TensorProto {
	dims := make([]*shapepb.TensorShapeProto_Dim, len(r.shape))
	for i, d := range r.shape {
		dims[i] = &shapepb.TensorShapeProto_Dim{Size: d}
	}
	return &tensorpb.TensorProto{
		Dtype:         typespb.DataType(r.dtype),
		TensorShape:   &shapepb.TensorShapeProto{Dim: dims},
		TensorContent: r.data,
	}
}
