package tfserving

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	tf "github.com/wamuir/graft/tensorflow"
	"google.golang.org/grpc/codes"
)

// The JSON side of TF Serving's REST predict API: the row ("instances") and columnar
// ("inputs") request formats and their "predictions" / "outputs" answers.
//
// A body is split with objectFields and listElements, which hand each field or element to
// a callback as a slice of the body: nothing proportional to the number of fields or
// elements is allocated, so a body of a million tiny instances costs what its numbers do.
// The numbers themselves are parsed straight into the signature's dtype, within the
// request's tensorBudget.

type predictBody struct {
	SignatureName string
	Instances     []byte
	Inputs        []byte
}

// requestFormat says how the answer must be shaped.
type requestFormat int

const (
	rowFormat requestFormat = iota
	columnarFormat
)

func parsePredictBody(body []byte) (predictBody, requestFormat, *Error) {
	var req predictBody
	err := objectFields(body, func(key string, value []byte) error {
		switch key { // other fields are ignored, as TF Serving does
		case "signature_name":
			if err := json.Unmarshal(value, &req.SignatureName); err != nil {
				return errorf(codes.InvalidArgument, `"signature_name" must be a string: %v`, err)
			}
		case "instances":
			req.Instances = value
		case "inputs":
			req.Inputs = value
		}
		return nil
	})
	if err != nil {
		return req, 0, asError(err, "malformed JSON request body")
	}
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

// asError keeps an *Error a callback returned; any other error is a syntax error of the
// body, reported after context.
func asError(err error, context string) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return errorf(codes.InvalidArgument, "%s: %v", context, err)
}

// objectFields calls each with the fields of the JSON object b, in order, as raw values
// (slices of b). Request bodies are mostly numbers in nested lists that the tensor parser
// reads (and checks) anyway: scanning them here with encoding/json first would triple the
// cost of a request. Scalars are checked by whoever decodes them.
func objectFields(b []byte, each func(key string, value []byte) error) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return fmt.Errorf("want a JSON object")
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return trailing(b, i+1)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return fmt.Errorf("want a quoted field name at offset %d", i)
		}
		end, err := skipValue(b, i)
		if err != nil {
			return err
		}
		key, err := fieldName(b[i:end])
		if err != nil {
			return fmt.Errorf("field name at offset %d: %v", i, err)
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return fmt.Errorf("want ':' after field %q", key)
		}
		start := skipSpace(b, i+1)
		if end, err = skipValue(b, start); err != nil {
			return fmt.Errorf("field %q: %v", key, err)
		}
		if err := each(key, b[start:end]); err != nil {
			return err
		}
		i = skipSpace(b, end)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
			continue
		}
		if i < len(b) && b[i] == '}' {
			return trailing(b, i+1)
		}
		return fmt.Errorf("want ',' or '}' at offset %d", i)
	}
}

// fieldName decodes a quoted field name; plain ASCII names (all of TF Serving's, and
// signature inputs) skip encoding/json.
func fieldName(quoted []byte) (string, error) {
	inner := quoted[1 : len(quoted)-1]
	plain := true
	for _, c := range inner {
		if c < 0x20 || c == '\\' || c >= utf8.RuneSelf {
			plain = false
			break
		}
	}
	if plain {
		return string(inner), nil
	}
	var key string
	err := json.Unmarshal(quoted, &key)
	return key, err
}

// listElements calls each with the elements of the JSON list b, in order, as raw values.
func listElements(b []byte, each func(value []byte) error) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return fmt.Errorf("want a list")
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return trailing(b, i+1)
	}
	for {
		end, err := skipValue(b, i)
		if err != nil {
			return err
		}
		if err := each(b[i:end]); err != nil {
			return err
		}
		i = skipSpace(b, end)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
			continue
		}
		if i < len(b) && b[i] == ']' {
			return trailing(b, i+1)
		}
		return fmt.Errorf("want ',' or ']' at offset %d", i)
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
// scalars are checked by whoever decodes them. It does not recurse: depth is a counter.
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

func isNull(raw []byte) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// isB64 reports whether raw is an object whose one field is "b64": a binary string, not
// an instance naming its inputs.
func isB64(raw []byte) bool {
	fields, b64 := 0, false
	err := objectFields(raw, func(key string, _ []byte) error {
		fields++
		b64 = key == "b64"
		return nil
	})
	return err == nil && fields == 1 && b64
}

func isObject(raw []byte) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && t[0] == '{'
}

// decodeInputs turns the request's instances or inputs into one tensor per signature input,
// holding their total size to maxBytes.
func decodeInputs(req predictBody, format requestFormat, sigName string, sig tf.Signature, maxBytes int64) (map[string]rawTensor, *Error) {
	names := sortedKeys(sig.Inputs)
	budget := newTensorBudget(maxBytes)
	tensors := map[string]*jsonTensor{}
	tensorFor := func(name string) (*jsonTensor, *Error) {
		if t, ok := tensors[name]; ok {
			return t, nil
		}
		info, ok := sig.Inputs[name]
		if !ok {
			return nil, errorf(codes.InvalidArgument, "signature %s has no input %q (inputs: %v)", sigName, name, names)
		}
		t, err := newJSONTensor(name, info.DType, budget)
		if err != nil {
			return nil, err
		}
		tensors[name] = t
		return t, nil
	}

	if format == columnarFormat {
		switch {
		case isObject(req.Inputs):
			err := objectFields(req.Inputs, func(name string, value []byte) error {
				t, err := tensorFor(name)
				if err != nil {
					return err
				}
				if t.parts > 0 {
					return errorf(codes.InvalidArgument, `"inputs" names %q twice`, name)
				}
				return t.add(value)
			})
			if err != nil {
				return nil, asError(err, `"inputs"`)
			}
		case len(names) == 1:
			t, err := tensorFor(names[0])
			if err != nil {
				return nil, err
			}
			if err := t.add(req.Inputs); err != nil {
				return nil, asError(err, `"inputs"`)
			}
		default:
			return nil, errorf(codes.InvalidArgument, `signature %s has %d inputs (%v): "inputs" must be an object naming them`, sigName, len(names), names)
		}
	} else {
		instances := 0
		err := listElements(req.Instances, func(row []byte) error {
			i := instances
			instances++
			if !isObject(row) || (len(names) == 1 && isB64(row) && names[0] != "b64") {
				if len(names) != 1 {
					return errorf(codes.InvalidArgument, "instance %d: signature %s has %d inputs (%v): each instance must be an object naming them", i, sigName, len(names), names)
				}
				t, err := tensorFor(names[0])
				if err != nil {
					return err
				}
				return t.add(row)
			}
			named := 0
			err := objectFields(row, func(name string, value []byte) error {
				t, err := tensorFor(name)
				if err != nil {
					return err
				}
				if t.parts != int64(i) {
					return errorf(codes.InvalidArgument, "instance %d names input %q twice, or instances before it lack it", i, name)
				}
				named++
				return t.add(value)
			})
			if err != nil {
				return asError(err, fmt.Sprintf("instance %d", i))
			}
			if named != len(names) {
				return errorf(codes.InvalidArgument, "instance %d names %d inputs, signature %s has %d (%v)", i, named, sigName, len(names), names)
			}
			return nil
		})
		if err != nil {
			return nil, asError(err, `"instances" must be a list`)
		}
		if instances == 0 {
			return nil, errorf(codes.InvalidArgument, `"instances" is empty`)
		}
	}

	out := make(map[string]rawTensor, len(tensors))
	for name, t := range tensors {
		out[name] = t.tensor(format == rowFormat)
	}
	return out, checkInputs(sigName, sig, out)
}

// checkInputs holds a request's tensors against the signature before they join a batch, so
// one wrong request fails alone instead of failing the batch it would have joined.
func checkInputs(sigName string, sig tf.Signature, inputs map[string]rawTensor) *Error {
	for _, name := range sortedKeys(inputs) {
		t := inputs[name]
		info, ok := sig.Inputs[name]
		if !ok {
			return errorf(codes.InvalidArgument, "signature %s has no input %q (inputs: %v)", sigName, name, sortedKeys(sig.Inputs))
		}
		if err := checkDType(sigName, name, info, t.dtype); err != nil {
			return err
		}
		if err := checkDims(sigName, name, info, t.shape); err != nil {
			return err
		}
	}
	for _, name := range sortedKeys(sig.Inputs) {
		if _, ok := inputs[name]; !ok {
			return errorf(codes.InvalidArgument, "signature %s: missing input %q", sigName, name)
		}
	}
	return nil
}

// jsonTensor gathers one input's values: one nested list per instance (stacked into a
// batch), or one nested list holding the whole tensor.
type jsonTensor struct {
	name      string
	parser    nestedParser
	parts     int64
	partShape []int64
}

func newJSONTensor(name string, dt tf.DataType, budget *tensorBudget) (*jsonTensor, *Error) {
	size, ok := elementSize[dt]
	if dt == tf.String {
		size, ok = stringOverhead, true
	}
	if !ok {
		return nil, errorf(codes.InvalidArgument, "input %s: inputs of dtype %s are not supported in JSON", name, dtypeName(dt))
	}
	return &jsonTensor{name: name, parser: nestedParser{input: name, dtype: dt, size: size, budget: budget}}, nil
}

func (t *jsonTensor) add(raw []byte) error {
	if isObject(raw) && t.parser.dtype != tf.String {
		return errorf(codes.InvalidArgument, `input %s: {"b64": ...} and objects are only for string inputs; this input is %s`, t.name, dtypeName(t.parser.dtype))
	}
	shape, err := t.parser.parse(raw)
	if err != nil {
		return asError(err, "input "+t.name)
	}
	if t.parts > 0 && !equalShape(shape, t.partShape) {
		return errorf(codes.InvalidArgument, "input %s: instance %d has shape %s, instance 0 %s: all instances must have the same shape",
			t.name, t.parts, shapeString(shape), shapeString(t.partShape))
	}
	t.partShape = shape
	t.parts++
	return nil
}

func (t *jsonTensor) tensor(stacked bool) rawTensor {
	shape := t.partShape
	if stacked {
		shape = append([]int64{t.parts}, shape...)
	}
	return rawTensor{dtype: t.parser.dtype, shape: shape, data: t.parser.data, strs: t.parser.strs}
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

// nestedParser reads a JSON number or nested list of numbers into its shape, appending the
// values to data encoded as dtype, in one pass: encoding/json into []any allocates per
// number, far too slow for image batches. Each value is charged to the budget before it
// is stored.
type nestedParser struct {
	input  string
	dtype  tf.DataType
	size   int
	budget *tensorBudget
	data   []byte   // every value parsed so far, all parts
	strs   []string // or, for a string input, every string

	b     []byte
	i     int
	shape []int64
	rank  int // depth at which numbers sit, -1 until the first number
}

// parse reads one value (a number or nested lists of them) and returns its shape.
func (p *nestedParser) parse(b []byte) ([]int64, error) {
	p.b, p.i, p.shape, p.rank = b, 0, nil, -1
	if err := p.value(0); err != nil {
		return nil, err
	}
	p.space()
	if p.i != len(p.b) {
		return nil, fmt.Errorf("unexpected %q after the value", p.b[p.i])
	}
	if p.rank >= 0 && p.rank != len(p.shape) {
		return nil, fmt.Errorf("ragged nesting: numbers at depth %d and lists %d deep", p.rank, len(p.shape))
	}
	return p.shape, nil
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
		if p.dtype == tf.String {
			return p.str(depth)
		}
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
	if err := p.leaf(depth); err != nil {
		return err
	}
	start := p.i
	for p.i < len(p.b) && numberByte[p.b[p.i]] {
		p.i++
	}
	tok := p.b[start:p.i]
	var v float64
	switch string(tok) {
	case "true":
		v = 1
	case "false":
		v = 0
	case "NaN", "Infinity", "-Infinity": // TF Serving's JSON parser accepts these too
		v, _ = strconv.ParseFloat(string(tok), 64)
	case "":
		return fmt.Errorf("expected a number or a list at offset %d, got %q", start, p.b[start])
	default:
		if !jsonNumber(tok) { // strconv alone would also take .5, +1, 01, 0x1p4, inf
			return fmt.Errorf("bad number %q", tok)
		}
		var err error
		v, err = strconv.ParseFloat(unsafe.String(&tok[0], len(tok)), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) { // out of range: +-Inf or 0, as TF Serving
			return fmt.Errorf("bad number %q", tok)
		}
	}
	if p.budget.elements(p.size) < 1 {
		return p.budget.exceeded(p.input, "too many numbers")
	}
	p.budget.take(1, p.size)
	n := len(p.data)
	p.data = append(p.data, make([]byte, p.size)...)
	encodeValue(p.dtype, v, p.data[n:])
	return nil
}

// str reads one element of a string input: a JSON string, or {"b64": "..."} (standard
// base64, as TF Serving takes binary data). Its bytes are charged to the budget before the
// element is decoded (decoding never makes it longer).
func (p *nestedParser) str(depth int) error {
	if err := p.leaf(depth); err != nil {
		return err
	}
	start := p.i
	end, err := skipValue(p.b, p.i)
	if err != nil {
		return err
	}
	tok := p.b[start:end]
	p.i = end
	if p.budget.elements(stringOverhead+len(tok)) < 1 {
		return p.budget.exceeded(p.input, "too many strings")
	}
	p.budget.take(1, stringOverhead+len(tok))
	var v string
	switch tok[0] {
	case '"':
		if err := json.Unmarshal(tok, &v); err != nil {
			return fmt.Errorf("bad string: %v", err)
		}
	case '{':
		found := false
		err := objectFields(tok, func(key string, value []byte) error {
			if key != "b64" || found {
				return fmt.Errorf(`a string given as an object is {"b64": "..."}, got field %q`, key)
			}
			found = true
			var enc string
			if err := json.Unmarshal(value, &enc); err != nil {
				return fmt.Errorf(`"b64" must be a string: %v`, err)
			}
			raw, err := base64.StdEncoding.DecodeString(enc)
			if err != nil {
				return fmt.Errorf(`"b64": %v`, err)
			}
			v = string(raw)
			return nil
		})
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf(`a string given as an object is {"b64": "..."}`)
		}
	default:
		return fmt.Errorf(`input %s is a string input: want strings, {"b64": "..."} or lists of them, got %q at offset %d`, p.input, tok[0], start)
	}
	p.strs = append(p.strs, v)
	return nil
}

// leaf checks that the elements of a tensor all sit at the same depth.
func (p *nestedParser) leaf(depth int) error {
	if p.rank < 0 {
		p.rank = depth
	} else if p.rank != depth {
		return fmt.Errorf("ragged nesting: values at depths %d and %d", p.rank, depth)
	}
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

// appendJSON writes r (or, with row >= 0, its row-th slice along dimension 0) as nested
// lists; name is the output's, which decides how its strings are written (stringJSON).
func appendJSON(buf []byte, name string, r rawTensor, vals []float64, row int64) []byte {
	shape := r.shape
	first := int64(0)
	if row >= 0 {
		per, _ := elementCount(shape[1:], math.MaxInt64) // an output TensorFlow made: its size is real
		first = row * per
		shape = shape[1:]
	}
	bits := 64
	if r.dtype == tf.Float || r.dtype == tf.Half || r.dtype == tf.Bfloat16 {
		bits = 32
	}
	elem := func(buf []byte, i int64) []byte { return appendNumber(buf, vals[i], bits) }
	if r.dtype == tf.String {
		b64 := strings.HasSuffix(name, "_bytes")
		elem = func(buf []byte, i int64) []byte { return appendString(buf, r.strs[i], b64) }
	}
	buf, _ = appendNested(buf, shape, first, elem)
	return buf
}

// appendNested writes the elements from i on as nested lists of shape; it returns where it
// stopped.
func appendNested(buf []byte, shape []int64, i int64, elem func([]byte, int64) []byte) ([]byte, int64) {
	if len(shape) == 0 {
		return elem(buf, i), i + 1
	}
	buf = append(buf, '[')
	for k := int64(0); k < shape[0]; k++ {
		if k > 0 {
			buf = append(buf, ',')
		}
		buf, i = appendNested(buf, shape[1:], i, elem)
	}
	return append(buf, ']'), i
}

// appendString writes a string output as TF Serving does: {"b64": ...} for an output whose
// name ends in "_bytes", else a JSON string. Bytes that are not UTF-8 go as b64 too: a JSON
// string cannot carry them.
func appendString(buf []byte, v string, b64 bool) []byte {
	if b64 || !utf8.ValidString(v) {
		buf = append(buf, `{"b64":"`...)
		buf = base64.StdEncoding.AppendEncode(buf, []byte(v))
		return append(buf, `"}`...)
	}
	enc, _ := json.Marshal(v) // a valid UTF-8 string always encodes
	return append(buf, enc...)
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
		if outputs[n].dtype == tf.String {
			continue
		}
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
			buf = appendJSON(buf, names[0], outputs[names[0]], values[names[0]], -1)
		} else {
			buf = append(buf, '{')
			for i, n := range names {
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = strconv.AppendQuote(buf, n)
				buf = append(buf, ':')
				buf = appendJSON(buf, n, outputs[n], values[n], -1)
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
			buf = appendJSON(buf, names[0], outputs[names[0]], values[names[0]], r)
			continue
		}
		buf = append(buf, '{')
		for i, n := range names {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = strconv.AppendQuote(buf, n)
			buf = append(buf, ':')
			buf = appendJSON(buf, n, outputs[n], values[n], r)
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
