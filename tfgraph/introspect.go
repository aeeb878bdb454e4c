package tfgraph

import (
	"fmt"
	"strings"

	tf "github.com/wamuir/graft/tensorflow"
)

// TensorSpec is one input or output of a signature as the SavedModel declares it.
type TensorSpec struct {
	// Key is the signature's name for the tensor: what Run takes and returns it under.
	Key   string
	DType tf.DataType
	// Shape has -1 for each unknown dimension (the batch, usually); nil when the rank
	// itself is unknown (UnknownRank).
	Shape       []int64
	UnknownRank bool
}

// String is "key: dtype[d0,d1,...]" ("x: float32[-1,8]"; "x: float32[?]" for unknown rank).
func (t TensorSpec) String() string {
	if t.UnknownRank {
		return t.Key + ": " + dtypeName(t.DType) + "[?]"
	}
	dims := make([]string, len(t.Shape))
	for i, d := range t.Shape {
		dims[i] = fmt.Sprint(d)
	}
	return t.Key + ": " + dtypeName(t.DType) + "[" + strings.Join(dims, ",") + "]"
}

// SignatureSpec is one signature's inputs and outputs, each sorted by key.
type SignatureSpec struct {
	Name            string
	Inputs, Outputs []TensorSpec
}

// String is "name(in: dtype[shape], ...) -> (out: dtype[shape], ...)", for logs.
func (s SignatureSpec) String() string {
	join := func(ts []TensorSpec) string {
		parts := make([]string, len(ts))
		for i, t := range ts {
			parts[i] = t.String()
		}
		return strings.Join(parts, ", ")
	}
	return s.Name + "(" + join(s.Inputs) + ") -> (" + join(s.Outputs) + ")"
}

// Signatures describes every signature of the model (TensorFlow's internal init op aside),
// sorted by name.
func (m *Model) Signatures() []SignatureSpec {
	var out []SignatureSpec
	for _, name := range m.SignatureNames() {
		spec, _ := m.SignatureSpec(name)
		out = append(out, spec)
	}
	return out
}

// SignatureSpec describes the named signature.
func (m *Model) SignatureSpec(name string) (SignatureSpec, bool) {
	sig, ok := m.Signature(name)
	if !ok {
		return SignatureSpec{}, false
	}
	return SignatureSpec{Name: name, Inputs: tensorSpecs(sig.Inputs), Outputs: tensorSpecs(sig.Outputs)}, true
}

func tensorSpecs(infos map[string]tf.TensorInfo) []TensorSpec {
	out := make([]TensorSpec, 0, len(infos))
	for _, key := range keys(infos) {
		info := infos[key]
		spec := TensorSpec{Key: key, DType: info.DType}
		if shape, err := info.Shape.ToSlice(); err == nil {
			spec.Shape = append([]int64{}, shape...)
		} else {
			spec.UnknownRank = true
		}
		out = append(out, spec)
	}
	return out
}
