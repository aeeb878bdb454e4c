package tfserving

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"unsafe"

	tf "github.com/wamuir/graft/tensorflow"
	"google.golang.org/grpc/codes"
)

// The JSON side of TF Serving's REST predict API: the row ("instances") and columnar
// ("inputs") request formats and their "predictions" / "outputs" answers.

type predictBody struct {
	SignatureName string          `json:"signature_name"`
	Instances     json.RawMessage `json:"instances"`
	Inputs        json.RawMessage `json:"inputs"`
}

// requestFormat says how the answer must be shaped.
type requestFormat int

const (
	rowFormat requestFormat = iota
	columnarFormat
)

func parsePredictBody(body []byte) (predictBody, requestFormat, *Error) {
	var req predictBody
	fields, err := objectFields(body)
	if err != nil {
		return req, 0, errorf(codes.InvalidArgument, "malformed JSON request body: %v", err)
	}
	if name, ok := fields["signature_name"]; ok {
		if err := json.Unmarshal(name, &req.SignatureName); err != nil {
			return req, 0, errorf(codes.InvalidArgument, `"signature_name" must be a string: %v`, err)
		}
	}
	req.Instances, req.Inputs = fields["instances"], fields["inputs"]
	hasRows, hasCols := len(req.Instances) > 0 && !isNull(req.Instances), len(req.Inputs) > 0 && !isNull(req.Inputs)
	switch {
	case hasRows && hasCols:
		return req, 0, errorf(codes.InvalidArgument, `request has both "instances" (row format) and "inputs" (columnar format); send one`)
	case hasRows:
		return req, rowFormat, nil
	case hasCols:
		return req, columnarFormat, nil
	}
	return req, 0, errorf(codes.InvalidArgument, `request needs "instances" (row format) or "inputs" (columnar format)`)
}

// objectFields splits a JSON object into its raw field values. Request bodies are mostly
// numbers in nested lists that parseNested reads (and checks) anyway: scanning them here with
// encoding/json first would triple the cost of a request.
func objectFields(b []byte) (map[string]json.RawMessage, error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, fmt.Errorf("want a JSON object")
	}
	fields := map[string]json.RawMessage{}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return fields, trailing(b, i+1)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return nil, fmt.Errorf("want a quoted field name at offset %d", i)
		}
		end, err := skipValue(b, i)
		if err != nil {
			return nil, err
		}
		var key string
		if err := json.Unmarshal(b[i:end], &key); err != nil {
			return nil, fmt.Errorf("field name at offset %d: %v", i, err)
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return nil, fmt.Errorf("want ':' after field %q", key)
		}
		start := skipSpace(b, i+1)
		if end, err = skipValue(b, start); err != nil {
			return nil, fmt.Errorf("field %q: %v", key, err)
		}
		fields[key] = b[start:end]
		i = skipSpace(b, end)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
			continue
		}
		if i < len(b) && b[i] == '}' {
			return fields, trailing(b, i+1)
		}
		return nil, fmt.Errorf("want ',' or '}' at offset %d", i)
	}
}

// listElements splits a JSON list into its raw elements.
func listElements(b []byte) ([]json.RawMessage, error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return nil, fmt.Errorf("want a list")
	}
	var out []json.RawMessage
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return out, trailing(b, i+1)
	}
	for {
		end, err := skipValue(b, i)
		if err != nil {
			return nil, err
		}
		out = append(out, b[i:end])
		i = skipSpace(b, end)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
			continue
		}
		if i < len(b) && b[i] == ']' {
			return out, trailing(b, i+1)
		}
		return nil, fmt.Errorf("want ',' or ']' at offset %d", i)
	}
}

func trailing(b []byte, i int) error {
	if i = skipSpace(b, i); i != len(b) {
		return fmt.Errorf("unexpected data after the value at offset %d", i)
	}
	return nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the end of the JSON value starting at i, matching brackets and strings;
// scalars are checked by whoever decodes them.
func skipValue(b []byte, i int) (int, error) {
	start, depth := i, 0
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
			if i >= len(b) {
				return 0, fmt.Errorf("unterminated string")
			}
			i++
		case c == '[' || c == '{':
			depth++
			i++
		case c == ']' || c == '}':
			if depth == 0 { // the end of the container around a scalar
				return nonEmpty(start, i)
			}
			depth--
			i++
		case depth == 0 && (c == ',' || c == ':' || c == ' ' || c == '\n' || c == '\t' || c == '\r'):
			return nonEmpty(start, i)
		default:
			i++
		}
		if depth == 0 && (c == '"' || c == ']' || c == '}') {
			return i, nil
		}
	}
	if depth != 0 {
		return 0, fmt.Errorf("unexpected end of JSON: unclosed list or object")
	}
	return nonEmpty(start, i)
}

func nonEmpty(start, end int) (int, error) {
	if end == start {
		return 0, fmt.Errorf("missing value at offset %d", start)
	}
	return end, nil
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

func isObject(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && t[0] == '{'
}

// decodeInputs turns the request's instances or inputs into one tensor per signature input.
func decodeInputs(req predictBody, format requestFormat, sigName string, sig tf.Signature) (map[string]rawTensor, *Error) {
	values := map[string][]json.RawMessage{} // input -> one value (columnar) or one per instance
	names := sortedKeys(sig.Inputs)
	if format == columnarFormat {
		if isObject(req.Inputs) {
			named, err := objectFields(req.Inputs)
			if err != nil {
				return nil, errorf(codes.InvalidArgument, `"inputs": %v`, err)
			}
			for k, v := range named {
				values[k] = []json.RawMessage{v}
			}
		} else if len(names) == 1 {
			values[names[0]] = []json.RawMessage{req.Inputs}
		} else {
			return nil, errorf(codes.InvalidArgument, `signature %s has %d inputs (%v): "inputs" must be an object naming them`, sigName, len(names), names)
		}
	} else {
		rows, err := listElements(req.Instances)
		if err != nil {
			return nil, errorf(codes.InvalidArgument, `"instances" must be a list: %v`, err)
		}
		if len(rows) == 0 {
			return nil, errorf(codes.InvalidArgument, `"instances" is empty`)
		}
		for i, row := range rows {
			if !isObject(row) {
				if len(names) != 1 {
					return nil, errorf(codes.InvalidArgument, "instance %d: signature %s has %d inputs (%v): each instance must be an object naming them", i, sigName, len(names), names)
				}
				values[names[0]] = append(values[names[0]], row)
				continue
			}
			named, err := objectFields(row)
			if err != nil {
				return nil, errorf(codes.InvalidArgument, "instance %d: %v", i, err)
			}
			if len(named) != len(names) {
				return nil, errorf(codes.InvalidArgument, "instance %d names %d inputs, signature %s has %d (%v)", i, len(named), sigName, len(names), names)
			}
			for k, v := range named {
				values[k] = append(values[k], v)
			}
		}
	}

	out := make(map[string]rawTensor, len(names))
	for name, vs := range values {
		info, ok := sig.Inputs[name]
		if !ok {
			return nil, errorf(codes.InvalidArgument, "signature %s has no input %q (inputs: %v)", sigName, name, names)
		}
		t, err := decodeTensor(name, info.DType, vs, format == rowFormat)
		if err != nil {
			return nil, err
		}
		out[name] = t
	}
	return out, checkInputs(sigName, sig, out)
}

// checkInputs holds a request's tensors against the signature before they join a batch, so
// one wrong request fails alone instead of failing the batch it would have joined.
func checkInputs(sigName string, sig tf.Signature, inputs map[string]rawTensor) *Error {
	for name, t := range inputs {
		info, ok := sig.Inputs[name]
		if !ok {
			return errorf(codes.InvalidArgument, "signature %s has no input %q (inputs: %v)", sigName, name, sortedKeys(sig.Inputs))
		}
		if err := checkShape(sigName, name, info, t); err != nil {
			return err
		}
	}
	for name := range sig.Inputs {
		if _, ok := inputs[name]; !ok {
			return errorf(codes.InvalidArgument, "signature %s: missing input %q", sigName, name)
		}
	}
	return nil
}

// decodeTensor parses nested JSON lists: one per instance (stacked into a batch) or one
// holding the whole tensor.
func decodeTensor(name string, dt tf.DataType, parts []json.RawMessage, stack bool) (rawTensor, *Error) {
	var vals []float64
	var shape []int64
	for i, raw := range parts {
		if isObject(raw) {
			return rawTensor{}, errorf(codes.InvalidArgument, `input %s: {"b64": ...} and objects are only for string inputs; this input is %s`, name, dtypeName(dt))
		}
		s, v, err := parseNested(raw)
		if err != nil {
			return rawTensor{}, errorf(codes.InvalidArgument, "input %s: %v", name, err)
		}
		if i > 0 && !equalShape(s, shape) {
			return rawTensor{}, errorf(codes.InvalidArgument, "input %s: instance %d has shape %s, instance 0 %s: all instances must have the same shape", name, i, shapeString(s), shapeString(shape))
		}
		shape = s
		vals = append(vals, v...)
	}
	if stack {
		shape = append([]int64{int64(len(parts))}, shape...)
	}
	data, err := encodeValues(dt, vals)
	if err != nil {
		return rawTensor{}, errorf(codes.InvalidArgument, "input %s: %v", name, err)
	}
	return rawTensor{dtype: dt, shape: shape, data: data}, nil
}

func equalShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// parseNested reads a JSON number or nested list of numbers into its shape and values in
// one pass: encoding/json into []any allocates per number, far too slow for image batches.
func parseNested(b []byte) ([]int64, []float64, error) {
	p := nestedParser{b: b, rank: -1}
	if err := p.value(0); err != nil {
		return nil, nil, err
	}
	p.space()
	if p.i != len(p.b) {
		return nil, nil, fmt.Errorf("unexpected %q after the value", p.b[p.i])
	}
	if p.rank >= 0 && p.rank != len(p.shape) {
		return nil, nil, fmt.Errorf("ragged nesting: numbers at depth %d and lists %d deep", p.rank, len(p.shape))
	}
	return p.shape, p.vals, nil
}

type nestedParser struct {
	b     []byte
	i     int
	shape []int64
	rank  int // depth at which numbers sit, -1 until the first number
	vals  []float64
}

func (p *nestedParser) space() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\n' || p.b[p.i] == '\t' || p.b[p.i] == '\r') {
		p.i++
	}
}

// maxNesting bounds the rank of a JSON tensor. The parser recurses once per level: without
// a bound, a body of 32 million '[' (within the 64 MB limit) would overflow the goroutine
// stack, which no recover catches, and take the server down.
const maxNesting = 64

func (p *nestedParser) value(depth int) error {
	if depth > maxNesting {
		return fmt.Errorf("lists nested more than %d deep", maxNesting)
	}
	p.space()
	if p.i >= len(p.b) {
		return fmt.Errorf("unexpected end of value")
	}
	if p.b[p.i] != '[' {
		return p.number(depth)
	}
	p.i++
	count := int64(0)
	p.space()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return p.dim(depth, 0)
	}
	for {
		if err := p.value(depth + 1); err != nil {
			return err
		}
		count++
		p.space()
		if p.i >= len(p.b) {
			return fmt.Errorf("unterminated list")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return p.dim(depth, count)
		default:
			return fmt.Errorf("unexpected %q in a list", p.b[p.i])
		}
	}
}

func (p *nestedParser) dim(depth int, n int64) error {
	for len(p.shape) <= depth {
		p.shape = append(p.shape, -1)
	}
	if p.shape[depth] >= 0 && p.shape[depth] != n {
		return fmt.Errorf("ragged list: dimension %d has lengths %d and %d", depth, p.shape[depth], n)
	}
	p.shape[depth] = n
	return nil
}

// numberByte marks the bytes of numbers and of true, false, NaN, Infinity.
var numberByte = func() (t [256]bool) {
	for _, c := range []byte("+-0123456789.eEtruefalsNaIiny") {
		t[c] = true
	}
	return t
}()

func (p *nestedParser) number(depth int) error {
	if p.rank < 0 {
		p.rank = depth
	} else if p.rank != depth {
		return fmt.Errorf("ragged nesting: numbers at depths %d and %d", p.rank, depth)
	}
	start := p.i
	for p.i < len(p.b) && numberByte[p.b[p.i]] {
		p.i++
	}
	tok := p.b[start:p.i]
	switch string(tok) {
	case "true":
		p.vals = append(p.vals, 1)
		return nil
	case "false":
		p.vals = append(p.vals, 0)
		return nil
	}
	if len(tok) == 0 {
		return fmt.Errorf("expected a number or a list at offset %d, got %q", start, p.b[start])
	}
	var v float64
	var err error
	switch string(tok) {
	case "NaN", "Infinity", "-Infinity": // TF Serving's JSON parser accepts these too
		v, err = strconv.ParseFloat(string(tok), 64)
	default:
		if !jsonNumber(tok) { // strconv alone would also take .5, +1, 01, 0x1p4, inf
			return fmt.Errorf("bad number %q", tok)
		}
		v, err = strconv.ParseFloat(unsafe.String(&tok[0], len(tok)), 64)
	}
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return fmt.Errorf("bad number %q", tok)
	}
	p.vals = append(p.vals, v)
	return nil
}

// jsonNumber reports whether tok is a number in JSON's grammar (RFC 8259 section 6):
// -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func jsonNumber(tok []byte) bool {
	i, n := 0, len(tok)
	digits := func() int {
		start := i
		for i < n && tok[i] >= '0' && tok[i] <= '9' {
			i++
		}
		return i - start
	}
	if i < n && tok[i] == '-' {
		i++
	}
	if i < n && tok[i] == '0' {
		i++
	} else if digits() == 0 {
		return false
	}
	if i < n && tok[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < n && (tok[i] == 'e' || tok[i] == 'E') {
		i++
		if i < n && (tok[i] == '+' || tok[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == n
}

// appendJSON writes r (or, with row >= 0, its row-th slice along dimension 0) as nested lists.
func appendJSON(buf []byte, r rawTensor, vals []float64, row int64) []byte {
	shape := r.shape
	if row >= 0 {
		per := numElements(shape[1:])
		vals = vals[row*per : (row+1)*per]
		shape = shape[1:]
	}
	bits := 64
	if r.dtype == tf.Float || r.dtype == tf.Half || r.dtype == tf.Bfloat16 {
		bits = 32
	}
	buf, _ = appendNested(buf, shape, vals, bits)
	return buf
}

func appendNested(buf []byte, shape []int64, vals []float64, bits int) ([]byte, []float64) {
	if len(shape) == 0 {
		return appendNumber(buf, vals[0], bits), vals[1:]
	}
	buf = append(buf, '[')
	for i := int64(0); i < shape[0]; i++ {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf, vals = appendNested(buf, shape[1:], vals, bits)
	}
	return append(buf, ']'), vals
}

func appendNumber(buf []byte, v float64, bits int) []byte {
	switch {
	case math.IsNaN(v):
		return append(buf, "NaN"...)
	case math.IsInf(v, 1):
		return append(buf, "Infinity"...)
	case math.IsInf(v, -1):
		return append(buf, "-Infinity"...)
	}
	return strconv.AppendFloat(buf, v, 'g', -1, bits)
}

// encodePredictResponse shapes the outputs as TF Serving does: row format gives
// "predictions", a list with one entry per instance (the value itself for a single output,
// else an object by output name); columnar gives "outputs" (the tensor, or an object).
func encodePredictResponse(outputs map[string]rawTensor, format requestFormat) ([]byte, error) {
	names := sortedKeys(outputs)
	values := make(map[string][]float64, len(names))
	for _, n := range names {
		v, err := outputs[n].values()
		if err != nil {
			return nil, fmt.Errorf("output %s: %w", n, err)
		}
		values[n] = v
	}
	buf := make([]byte, 0, 256)
	if format == columnarFormat {
		buf = append(buf, `{"outputs":`...)
		if len(names) == 1 {
			buf = appendJSON(buf, outputs[names[0]], values[names[0]], -1)
		} else {
			buf = append(buf, '{')
			for i, n := range names {
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = strconv.AppendQuote(buf, n)
				buf = append(buf, ':')
				buf = appendJSON(buf, outputs[n], values[n], -1)
			}
			buf = append(buf, '}')
		}
		return append(buf, "}\n"...), nil
	}
	rows := outputs[names[0]].rows()
	for _, n := range names {
		if outputs[n].rows() != rows || len(outputs[n].shape) == 0 {
			return nil, fmt.Errorf("outputs have different batch sizes; ask for the columnar format")
		}
	}
	buf = append(buf, `{"predictions":[`...)
	for r := int64(0); r < rows; r++ {
		if r > 0 {
			buf = append(buf, ',')
		}
		if len(names) == 1 {
			buf = appendJSON(buf, outputs[names[0]], values[names[0]], r)
			continue
		}
		buf = append(buf, '{')
		for i, n := range names {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = strconv.AppendQuote(buf, n)
			buf = append(buf, ':')
			buf = appendJSON(buf, outputs[n], values[n], r)
		}
		buf = append(buf, '}')
	}
	return append(buf, "]}\n"...), nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
