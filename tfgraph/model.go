// Package tfgraph loads a SavedModel written by savedmodel/export.py through the TensorFlow C
// API (github.com/wamuir/graft), runs its signatures by name through one small typed API, and
// saves/restores all of its variables (weights, optimizer state, BatchNorm statistics,
// Dropout seed state) as complete SavedModel directories, written atomically.
package tfgraph

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	tf "github.com/wamuir/graft/tensorflow"
	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"

	"github.com/emotions-dev/emotions/savedmodel"
)

// BuiltFor is the TensorFlow minor version graft v0.10.0 was generated against; the C API and
// the protos must match it.
const BuiltFor = "2.18"

// CheckVersion reports a clear error when the linked libtensorflow is not the one graft was
// built for (a wheel upgraded under the binary, or a GPU image with another TF).
func CheckVersion() error {
	v := tf.Version()
	if v != BuiltFor && !strings.HasPrefix(v, BuiltFor+".") {
		return fmt.Errorf("linked TensorFlow is %s but emotions was built with graft for TF %s: "+
			"run `make setup build` (it pins TensorFlow 2.18.1: tensorflow-cpu, or tensorflow[and-cuda] for GPUs)", v, BuiltFor)
	}
	return nil
}

// Version is the linked TensorFlow's version.
func Version() string { return tf.Version() }

// Model is a loaded SavedModel with its metadata. Its methods may be called from several
// goroutines (TensorFlow sessions are thread-safe); Save and Restore take a lock so they never
// interleave with each other.
type Model struct {
	Dir     string
	Meta    savedmodel.Metadata
	Options Options

	sm      *tf.SavedModel
	saver   *corepb.SaverDef
	devices []string
	saveMu  sync.Mutex
	hasMeta bool
	// replicas is how many towers TrainStep and Evaluate run (SetReplicas; 0 or 1 = the
	// single-device signatures).
	replicas int

	snapOnce sync.Once
	snap     *snapshotPlan
	snapErr  error
	lrOnce   sync.Once
	lrEntry  int
	lrErr    error
}

// Load opens DIR (a SavedModel with emotions.json) in a new session.
func Load(dir string, opts Options) (*Model, error) {
	return loadModel(dir, opts, true)
}

// LoadSavedModel opens any SavedModel with a "serve" tag set for inference: a Keras
// model.export(), a tf.saved_model.save, or a model of ours. Its emotions.json is read when it
// has one (HasMetadata); without one, Meta is zero and only Run and Signatures apply: the typed
// image API (Predict, TrainStep, ...) needs the metadata.
func LoadSavedModel(dir string, opts Options) (*Model, error) {
	return loadModel(dir, opts, false)
}

func loadModel(dir string, opts Options, needMeta bool) (*Model, error) {
	if err := CheckVersion(); err != nil {
		return nil, err
	}
	if err := checkModelDir(dir, needMeta); err != nil {
		return nil, err
	}
	var meta savedmodel.Metadata
	hasMeta := needMeta
	if !needMeta {
		_, err := os.Stat(filepath.Join(dir, savedmodel.MetadataFile))
		hasMeta = err == nil
	}
	if hasMeta {
		var err error
		if meta, err = savedmodel.ReadMetadata(dir); err != nil {
			return nil, err
		}
	}
	mg, err := readMetaGraph(dir)
	if err != nil {
		return nil, err
	}
	cfg, err := opts.ConfigProto()
	if err != nil {
		return nil, err
	}
	sm, err := tf.LoadSavedModel(dir, []string{"serve"}, &tf.SessionOptions{Config: cfg})
	if err != nil {
		return nil, fmt.Errorf("load SavedModel %s: %w", dir, err)
	}
	m := &Model{Dir: dir, Meta: meta, Options: opts, sm: sm, saver: mg.GetSaverDef(), hasMeta: hasMeta}
	for role, sig := range meta.Signatures {
		if _, ok := sm.Signatures[sig]; !ok {
			sm.Session.Close()
			return nil, fmt.Errorf("%s: emotions.json names signature %q (%s) but the SavedModel has only %s",
				dir, sig, role, strings.Join(m.SignatureNames(), ", "))
		}
	}
	devs, err := sm.Session.ListDevices()
	if err != nil {
		sm.Session.Close()
		return nil, fmt.Errorf("list devices: %w", err)
	}
	for _, d := range devs {
		m.devices = append(m.devices, d.Name+" ("+d.Type+")")
	}
	if opts.Device == "gpu" && !m.HasGPU() {
		sm.Session.Close()
		return nil, DetectGPUSupport().NoGPUError(m.devices)
	}
	return m, nil
}

// checkModelDir turns the usual mistakes into errors that name the directory.
func checkModelDir(dir string, needMeta bool) error {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("model %s: no such directory", dir)
	}
	if err != nil {
		return fmt.Errorf("model %s: %w", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("model %s: not a directory (want a SavedModel directory)", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("model %s: %w", dir, err)
	}
	if len(entries) == 0 {
		return fmt.Errorf("model %s: the directory is empty (want a SavedModel from `emotions new-model`)", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "saved_model.pb")); err != nil {
		return fmt.Errorf("model %s: not a SavedModel: no saved_model.pb", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, savedmodel.MetadataFile)); needMeta && errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("model %s: a SavedModel without %s, the metadata emotions needs (input size and "+
			"channels, class names, pixel normalisation, the train_step/evaluate signatures): export your Keras "+
			"model with `emotions new-model --from model.keras --classes a,b,c --out DIR` and use DIR (`emotions serve` "+
			"serves it as it is)", dir, savedmodel.MetadataFile)
	}
	return nil
}

// HasMetadata reports whether the model came with emotions.json (always so with Load).
func (m *Model) HasMetadata() bool { return m.hasMeta }

// Metadata is the export's description (the Meta field), for code that takes a model as an
// interface (train.Trainable).
func (m *Model) Metadata() savedmodel.Metadata { return m.Meta }

// Close releases the session.
func (m *Model) Close() error {
	if m == nil || m.sm == nil {
		return nil
	}
	err := m.sm.Session.Close()
	m.sm = nil
	m.snap.close()
	return err
}

// Devices lists the devices the session runs on.
func (m *Model) Devices() []string { return m.devices }

// HasGPU reports whether the session sees a GPU.
func (m *Model) HasGPU() bool {
	for _, d := range m.devices {
		if strings.Contains(d, "(GPU)") {
			return true
		}
	}
	return false
}

// SignatureNames lists the model's signatures, sorted, without TF's internal init op.
func (m *Model) SignatureNames() []string {
	var names []string
	for n := range m.sm.Signatures {
		if n != "__saved_model_init_op" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// Signature returns the named signature's description.
func (m *Model) Signature(name string) (tf.Signature, bool) {
	s, ok := m.sm.Signatures[name]
	return s, ok && name != "__saved_model_init_op"
}

// signatureFor maps a role ("serve", "train_step", ...) to the signature name in the metadata.
func (m *Model) signatureFor(role string) string {
	if n, ok := m.Meta.Signatures[role]; ok {
		return n
	}
	return role
}

// Run runs signature NAME with INPUTS keyed by the signature's input names and returns every
// output keyed by name. A missing signature, a missing or extra input, or a wrong dtype or
// shape is an error naming it; nothing reaches TensorFlow unchecked.
func (m *Model) Run(name string, inputs map[string]*tf.Tensor) (map[string]*tf.Tensor, error) {
	if m.sm == nil {
		return nil, errors.New("model is closed")
	}
	sig, ok := m.Signature(name)
	if !ok {
		return nil, fmt.Errorf("%s: no signature %q (has %s)", m.Dir, name, strings.Join(m.SignatureNames(), ", "))
	}
	feeds := make(map[tf.Output]*tf.Tensor, len(inputs))
	for key, info := range sig.Inputs {
		t, ok := inputs[key]
		if !ok {
			return nil, fmt.Errorf("signature %s: missing input %q", name, key)
		}
		if err := checkTensor(name, key, info, t); err != nil {
			return nil, err
		}
		out, err := m.output(info.Name)
		if err != nil {
			return nil, fmt.Errorf("signature %s input %s: %w", name, key, err)
		}
		feeds[out] = t
	}
	for key := range inputs {
		if _, ok := sig.Inputs[key]; !ok {
			return nil, fmt.Errorf("signature %s: unknown input %q (inputs: %s)", name, key, strings.Join(keys(sig.Inputs), ", "))
		}
	}
	outKeys := keys(sig.Outputs)
	fetches := make([]tf.Output, len(outKeys))
	for i, key := range outKeys {
		out, err := m.output(sig.Outputs[key].Name)
		if err != nil {
			return nil, fmt.Errorf("signature %s output %s: %w", name, key, err)
		}
		fetches[i] = out
	}
	res, err := m.sm.Session.Run(feeds, fetches, nil)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", name, err)
	}
	outs := make(map[string]*tf.Tensor, len(outKeys))
	for i, key := range outKeys {
		outs[key] = res[i]
	}
	return outs, nil
}

// output resolves a "op:index" tensor name in the graph.
func (m *Model) output(name string) (tf.Output, error) {
	opName, idx := name, 0
	if i := strings.LastIndexByte(name, ':'); i >= 0 {
		opName = name[:i]
		if _, err := fmt.Sscanf(name[i+1:], "%d", &idx); err != nil {
			return tf.Output{}, fmt.Errorf("bad tensor name %q", name)
		}
	}
	op := m.sm.Graph.Operation(opName)
	if op == nil {
		return tf.Output{}, fmt.Errorf("graph has no operation %q", opName)
	}
	return op.Output(idx), nil
}

func checkTensor(sig, key string, info tf.TensorInfo, t *tf.Tensor) error {
	if t == nil {
		return fmt.Errorf("signature %s input %s: nil tensor", sig, key)
	}
	if t.DataType() != info.DType {
		return fmt.Errorf("signature %s input %s: dtype %v, want %v", sig, key, dtypeName(t.DataType()), dtypeName(info.DType))
	}
	want, err := info.Shape.ToSlice()
	if err != nil { // unknown rank: anything goes
		return nil
	}
	got := t.Shape()
	if len(got) != len(want) {
		return fmt.Errorf("signature %s input %s: shape %v, want %v", sig, key, got, shapeString(want))
	}
	for i := range want {
		if want[i] >= 0 && got[i] != want[i] {
			return fmt.Errorf("signature %s input %s: shape %v, want %v", sig, key, got, shapeString(want))
		}
	}
	return nil
}

func shapeString(dims []int64) string {
	parts := make([]string, len(dims))
	for i, d := range dims {
		if d < 0 {
			parts[i] = "?"
		} else {
			parts[i] = fmt.Sprint(d)
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// dtypeNames pairs TensorFlow's dtypes with NumPy's names for them, the names emotions.json,
// the arrays package and an export's serving key map use: one table for both directions, so
// that a name printed is always a name parsed.
var dtypeNames = map[tf.DataType]string{
	tf.Half: "float16", tf.Bfloat16: "bfloat16", tf.Float: "float32", tf.Double: "float64",
	tf.Int8: "int8", tf.Int16: "int16", tf.Int32: "int32", tf.Int64: "int64",
	tf.Uint8: "uint8", tf.Uint16: "uint16", tf.Uint32: "uint32", tf.Uint64: "uint64",
	tf.Bool: "bool", tf.String: "string",
}

var dataTypes = func() map[string]tf.DataType {
	m := make(map[string]tf.DataType, len(dtypeNames))
	for dt, name := range dtypeNames {
		m[name] = dt
	}
	return m
}()

func dtypeName(dt tf.DataType) string {
	if name, ok := dtypeNames[dt]; ok {
		return name
	}
	return fmt.Sprintf("dtype(%d)", dt)
}

// DTypeName is the numpy-style name of a TensorFlow dtype ("float32").
func DTypeName(dt tf.DataType) string { return dtypeName(dt) }

// DataTypeOf is the TensorFlow dtype of a numpy-style name, as DTypeName names it; false for a
// name it does not know (which includes every dtype DTypeName can only number).
func DataTypeOf(name string) (tf.DataType, bool) {
	dt, ok := dataTypes[name]
	return dt, ok
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
