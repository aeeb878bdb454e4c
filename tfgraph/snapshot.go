package tfgraph

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	tf "github.com/wamuir/graft/tensorflow"
	fnpb "github.com/wamuir/graft/tensorflow/core/framework/function_go_proto"
	graphpb "github.com/wamuir/graft/tensorflow/core/framework/graph_go_proto"
	nodepb "github.com/wamuir/graft/tensorflow/core/framework/node_def_go_proto"
	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/emotions-dev/emotions/internal/atomicfs"
)

// ErrSnapshotUnsupported is returned by Snapshot when the SavedModel's saver is not the plain
// one-shard SaveV2 that Keras exports write; Save still works for such a model.
var ErrSnapshotUnsupported = errors.New("this SavedModel's saver cannot be snapshotted")

// Snapshot is a copy of every tensor the SavedModel's saver writes (variables, optimizer
// state, the object graph), taken in one session run between two steps. Taking it costs
// little: TensorFlow hands out the variables' buffers and copies a buffer only when a later
// step writes that variable. Writing it to disk (Write) can then happen on another goroutine
// while training goes on, which is how a training loop checkpoints without waiting for the
// disk.
type Snapshot struct {
	plan   *snapshotPlan
	model  *Model
	values []*tf.Tensor
	// replaced are the tensors of earlier snapshots this one was derived from and no longer
	// holds (RefreshLearningRate): Release frees them with its own.
	replaced []*tf.Tensor
}

// Release frees the snapshot's buffers at once (see Free): call it when no write of this
// snapshot, or of one it was derived from, is still to run. The snapshot is unusable after.
func (s *Snapshot) Release() {
	if s == nil {
		return
	}
	Free(s.values...)
	Free(s.replaced...)
	s.values, s.replaced = nil, nil
}

// snapshotPlan is what the saver saves, found once per model by reading the saver function:
// the checkpoint keys and, for each, the tensor of the main graph that holds its value.
type snapshotPlan struct {
	keys    []string
	fetches []tf.Output

	writeMu sync.Mutex // one write at a time: the writer session is shared
	writer  *tf.Session
	prefix  tf.Output
	inputs  []tf.Output
	save    *tf.Operation
}

// Snapshot copies the saver's tensors out of the session. It fails with
// ErrSnapshotUnsupported (wrapped) when the saver is not one this code can reproduce.
func (m *Model) Snapshot() (*Snapshot, error) {
	if m.sm == nil {
		return nil, errors.New("model is closed")
	}
	m.snapOnce.Do(func() { m.snap, m.snapErr = m.planSnapshot() })
	if m.snapErr != nil {
		return nil, m.snapErr
	}
	values, err := m.sm.Session.Run(nil, m.snap.fetches, nil)
	if err != nil {
		return nil, fmt.Errorf("snapshot the variables: %w", err)
	}
	return &Snapshot{plan: m.snap, model: m, values: values}, nil
}

// WriteOption changes how Snapshot.Write writes.
type WriteOption func(*writeSettings)

type writeSettings struct{ noSync, viaTensorFlow bool }

// NoSync makes Write skip the fsyncs: the directory is still replaced atomically, and a
// process killed at any moment still leaves the old or the new copy, but a power cut or a
// kernel crash soon after may leave it damaged (see atomicfs.WriteDirNoSync). For a
// checkpoint rewritten every epoch this halves the CPU time of writing it on a VM disk, and a
// copy replaced before the kernel writes it back never reaches the disk. MakeDurable(dir)
// fsyncs it later.
func NoSync() WriteOption { return func(w *writeSettings) { w.noSync = true } }

// MakeDurable fsyncs a model directory written with NoSync (its files and its name).
func MakeDurable(dir string) error {
	if err := atomicfs.MakeDurable(dir); err != nil {
		return fmt.Errorf("make %s durable: %w", dir, err)
	}
	return nil
}

// Write puts the snapshot at dir as a complete model directory (the same files Save writes),
// atomically and, unless NoSync is given, durably. It may run on any goroutine, concurrently
// with training steps; writes of one model's snapshots run one at a time.
func (s *Snapshot) Write(dir string, extra map[string][]byte, opts ...WriteOption) error {
	var ws writeSettings
	for _, o := range opts {
		o(&ws)
	}
	s.plan.writeMu.Lock()
	defer s.plan.writeMu.Unlock()
	return s.model.writeModelDir(dir, extra, !ws.noSync, func(prefix string) error {
		if !ws.viaTensorFlow {
			if err := s.writeBundle(prefix); !errors.Is(err, errNotBundled) {
				return err
			}
		}
		if err := s.plan.openWriter(s.values); err != nil {
			return err
		}
		name, err := tf.NewTensor(prefix)
		if err != nil {
			return err
		}
		defer Free(name)
		feeds := map[tf.Output]*tf.Tensor{s.plan.prefix: name}
		for i, in := range s.plan.inputs {
			feeds[in] = s.values[i]
		}
		if _, err := s.plan.writer.Run(feeds, nil, []*tf.Operation{s.plan.save}); err != nil {
			return fmt.Errorf("write the snapshot to %s: %w", prefix, err)
		}
		return nil
	})
}

// openWriter builds, once, a small graph that saves fed tensors under the saver's keys: the
// same SaveV2 the SavedModel's own saver runs, so the checkpoint is the one it would write.
func (p *snapshotPlan) openWriter(values []*tf.Tensor) error {
	if p.writer != nil {
		return nil
	}
	g := tf.NewGraph()
	add := func(spec tf.OpSpec) (*tf.Operation, error) { return g.AddOperation(spec) }
	prefix, err := add(tf.OpSpec{Type: "Placeholder", Name: "prefix", Attrs: map[string]any{"dtype": tf.String}})
	if err != nil {
		return err
	}
	keys, err := tf.NewTensor(p.keys)
	if err != nil {
		return err
	}
	slices, err := tf.NewTensor(make([]string, len(p.keys)))
	if err != nil {
		return err
	}
	keysOp, err := add(tf.OpSpec{Type: "Const", Name: "keys", Attrs: map[string]any{"dtype": tf.String, "value": keys}})
	if err != nil {
		return err
	}
	slicesOp, err := add(tf.OpSpec{Type: "Const", Name: "slices", Attrs: map[string]any{"dtype": tf.String, "value": slices}})
	if err != nil {
		return err
	}
	inputs := make([]tf.Output, len(values))
	list := make(tf.OutputList, len(values))
	for i, v := range values {
		ph, err := add(tf.OpSpec{Type: "Placeholder", Name: fmt.Sprintf("value_%d", i), Attrs: map[string]any{"dtype": v.DataType()}})
		if err != nil {
			return err
		}
		inputs[i], list[i] = ph.Output(0), ph.Output(0)
	}
	save, err := add(tf.OpSpec{Type: "SaveV2", Name: "save", Input: []tf.Input{prefix.Output(0), keysOp.Output(0), slicesOp.Output(0), list}})
	if err != nil {
		return fmt.Errorf("build the snapshot writer: %w", err)
	}
	sess, err := tf.NewSession(g, nil)
	if err != nil {
		return fmt.Errorf("snapshot writer session: %w", err)
	}
	p.writer, p.prefix, p.inputs, p.save = sess, prefix.Output(0), inputs, save
	return nil
}

// close waits for a write in progress, then releases the writer session.
func (p *snapshotPlan) close() {
	if p == nil {
		return
	}
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	if p.writer != nil {
		p.writer.Close()
		p.writer = nil
	}
}

// planSnapshot reads the SavedModel's saver: the top-level call its save tensor names, the
// function that call runs, and in it the one SaveV2 node. Each saved tensor is traced back,
// through Identity and ReadVariableOp nodes, to an argument of the function, that is to an
// input of the call in the main graph: a variable handle (fetched through the graph's own
// ReadVariableOp of it, which Keras exports have for every variable) or a constant such as the
// object graph (fetched as it is). The graph is read again from saved_model.pb here, once,
// rather than kept in memory for the model's life (tens of MB for InceptionResNetV2).
func (m *Model) planSnapshot() (*snapshotPlan, error) {
	unsupported := func(why string, args ...any) error {
		return fmt.Errorf("%s: %w: %s", m.Dir, ErrSnapshotUnsupported, fmt.Sprintf(why, args...))
	}
	if m.saver == nil {
		return nil, unsupported("no saver")
	}
	mg, err := readMetaGraph(m.Dir)
	if err != nil {
		return nil, unsupported("%v", err)
	}
	graphDef := mg.GetGraphDef()
	callName, _, _ := strings.Cut(m.saver.GetSaveTensorName(), ":")
	var call *nodepb.NodeDef
	reads := map[string]string{} // variable handle -> a ReadVariableOp of it
	for _, n := range graphDef.GetNode() {
		if n.GetName() == callName {
			call = n
		}
		if in := dataInputs(n); n.GetOp() == "ReadVariableOp" && len(in) == 1 {
			reads[in[0]] = n.GetName()
		}
	}
	if call == nil || call.GetAttr()["f"].GetFunc() == nil {
		return nil, unsupported("the save tensor %q is not a function call", m.saver.GetSaveTensorName())
	}
	fn := findFunction(graphDef, call.GetAttr()["f"].GetFunc().GetName())
	if fn == nil {
		return nil, unsupported("no function %q", call.GetAttr()["f"].GetFunc().GetName())
	}
	nodes := map[string]*nodepb.NodeDef{}
	var save *nodepb.NodeDef
	for _, n := range fn.GetNodeDef() {
		nodes[n.GetName()] = n
		if n.GetOp() == "SaveV2" {
			if save != nil {
				return nil, unsupported("the saver writes several shards")
			}
			save = n
		}
	}
	args := map[string]int{}
	for i, a := range fn.GetSignature().GetInputArg() {
		args[a.GetName()] = i
	}
	if save == nil || len(save.GetInput()) < 4 {
		return nil, unsupported("the saver has no SaveV2")
	}
	in := dataInputs(save)
	keys, err := constStrings(nodes, in[1])
	if err != nil {
		return nil, unsupported("tensor names: %v", err)
	}
	slices, err := constStrings(nodes, in[2])
	if err != nil {
		return nil, unsupported("shapes and slices: %v", err)
	}
	if len(keys) != len(in)-3 || len(slices) != len(keys) {
		return nil, unsupported("%d keys for %d tensors", len(keys), len(in)-3)
	}
	for _, s := range slices {
		if s != "" {
			return nil, unsupported("a partitioned variable (slice %q)", s)
		}
	}
	callInputs := dataInputs(call)
	plan := &snapshotPlan{keys: keys, fetches: make([]tf.Output, len(keys))}
	for i, tensor := range in[3:] {
		arg, err := traceToArg(nodes, args, tensor)
		if err != nil {
			return nil, unsupported("key %s: %v", keys[i], err)
		}
		if arg >= len(callInputs) {
			return nil, unsupported("key %s: argument %d of a call with %d inputs", keys[i], arg, len(callInputs))
		}
		if plan.fetches[i], err = m.snapshotFetch(callInputs[arg], reads, i); err != nil {
			return nil, unsupported("key %s: %v", keys[i], err)
		}
	}
	return plan, nil
}

// snapshotFetch is the main-graph tensor holding a saved value: a ReadVariableOp of a
// variable handle (the graph's own when it has one: adding nodes makes TensorFlow extend the
// session's whole graph, seconds and hundreds of MB for InceptionResNetV2), or the named tensor
// itself.
func (m *Model) snapshotFetch(name string, reads map[string]string, i int) (tf.Output, error) {
	src, err := m.output(name)
	if err != nil {
		return tf.Output{}, err
	}
	if src.Op.Type() != "VarHandleOp" {
		return src, nil
	}
	if read, ok := reads[src.Op.Name()]; ok {
		return m.output(read)
	}
	dtype, err := src.Op.Attr("dtype")
	if err != nil {
		return tf.Output{}, fmt.Errorf("variable %s: %w", name, err)
	}
	read, err := m.sm.Graph.AddOperation(tf.OpSpec{
		Type: "ReadVariableOp", Name: fmt.Sprintf("emotions_snapshot/read_%d", i),
		Input: []tf.Input{src}, Attrs: map[string]any{"dtype": dtype},
	})
	if err != nil {
		return tf.Output{}, fmt.Errorf("read variable %s: %w", name, err)
	}
	return read.Output(0), nil
}

// ReadMetaGraph parses DIR/saved_model.pb and returns its first MetaGraph (the one Load
// serves).
func ReadMetaGraph(dir string) (*corepb.MetaGraphDef, error) { return readMetaGraph(dir) }

// readMetaGraph parses DIR/saved_model.pb and returns its first MetaGraph.
func readMetaGraph(dir string) (*corepb.MetaGraphDef, error) {
	path := filepath.Join(dir, "saved_model.pb")
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var sm corepb.SavedModel
	if err := proto.Unmarshal(raw, &sm); err != nil {
		return nil, fmt.Errorf("%s: not a SavedModel protobuf: %w", path, err)
	}
	if len(sm.GetMetaGraphs()) == 0 {
		return nil, fmt.Errorf("%s: SavedModel has no MetaGraph", path)
	}
	return sm.GetMetaGraphs()[0], nil
}

func findFunction(g *graphpb.GraphDef, name string) *fnpb.FunctionDef {
	for _, f := range g.GetLibrary().GetFunction() {
		if f.GetSignature().GetName() == name {
			return f
		}
	}
	return nil
}

// dataInputs are a node's inputs without control dependencies ("^name").
func dataInputs(n *nodepb.NodeDef) []string {
	var out []string
	for _, in := range n.GetInput() {
		if !strings.HasPrefix(in, "^") {
			out = append(out, in)
		}
	}
	return out
}

// traceToArg follows a function-body tensor ("node:output:0" or an argument name) back
// through Identity and ReadVariableOp nodes to the function argument it comes from.
func traceToArg(nodes map[string]*nodepb.NodeDef, args map[string]int, tensor string) (int, error) {
	for range 64 {
		name, _, _ := strings.Cut(tensor, ":")
		if i, ok := args[name]; ok {
			return i, nil
		}
		n, ok := nodes[name]
		if !ok {
			return 0, fmt.Errorf("no node %q", name)
		}
		if op := n.GetOp(); op != "Identity" && op != "ReadVariableOp" {
			return 0, fmt.Errorf("saved value computed by a %s node", op)
		}
		ins := dataInputs(n)
		if len(ins) != 1 {
			return 0, fmt.Errorf("%s has %d inputs", name, len(ins))
		}
		tensor = ins[0]
	}
	return 0, errors.New("chain too long")
}

// constStrings is the value of a string Const node of the function body.
func constStrings(nodes map[string]*nodepb.NodeDef, tensor string) ([]string, error) {
	name, _, _ := strings.Cut(tensor, ":")
	n, ok := nodes[name]
	if !ok || n.GetOp() != "Const" {
		return nil, fmt.Errorf("%q is not a constant", tensor)
	}
	var out []string
	for _, s := range n.GetAttr()["value"].GetTensor().GetStringVal() {
		out = append(out, string(s))
	}
	return out, nil
}

// writeModelDir writes dir atomically: the model's files that never change (linked), extra,
// and the variables written by saveTo into the checkpoint prefix it is given.
func (m *Model) writeModelDir(dir string, extra map[string][]byte, durable bool, saveTo func(prefix string) error) error {
	return atomicfs.DirWriter(durable)(dir, func(tmp string) error {
		for name, content := range extra {
			if err := os.WriteFile(filepath.Join(tmp, name), content, 0o644); err != nil {
				return fmt.Errorf("save %s: %w", dir, err)
			}
		}
		prefix := filepath.Join(tmp, "variables", "variables")
		if err := os.MkdirAll(filepath.Dir(prefix), 0o755); err != nil {
			return err
		}
		if err := saveTo(prefix); err != nil {
			return err
		}
		return m.linkStaticFiles(tmp)
	})
}

// RefreshLearningRate returns a snapshot equal to s except for the optimizer's learning rate,
// read again from the session: what a snapshot taken now would hold after SetLearningRate
// and nothing else changed the variables. The other tensors are shared with s, so a loop
// that lowers the learning rate after saving (ReduceLROnPlateau after ModelCheckpoint) needs
// no second copy of the weights. ErrSnapshotUnsupported when variables.json does not name
// the learning rate variable, or get_state's learning_rate is not of its dtype and shape.
func (s *Snapshot) RefreshLearningRate() (*Snapshot, error) {
	i, err := s.model.learningRateEntry()
	if err != nil {
		return nil, err
	}
	// Read through get_state, whose executor the loop has already built (State), rather than
	// fetching the variable alone: a new fetch set makes TensorFlow build and optimise one
	// more executor on the whole graph (1.4 s and ~150 MB kept for InceptionResNetV2).
	out, err := s.model.Run(s.model.signatureFor("get_state"), map[string]*tf.Tensor{})
	if err != nil {
		return nil, fmt.Errorf("read the learning rate: %w", err)
	}
	lr := out["learning_rate"]
	delete(out, "learning_rate")
	FreeAll(out)
	old := s.values[i]
	if lr == nil || lr.DataType() != old.DataType() || !slices.Equal(lr.Shape(), old.Shape()) {
		Free(lr)
		return nil, fmt.Errorf("%w: get_state's learning_rate does not match the variable's dtype and shape", ErrSnapshotUnsupported)
	}
	values := slices.Clone(s.values)
	values[i] = lr
	return &Snapshot{plan: s.plan, model: s.model, values: values, replaced: append(slices.Clone(s.replaced), old)}, nil
}

// learningRateEntry is the snapshot entry of the optimizer's learning rate: the checkpoint
// key variables.json lists with the path "<optimizer>/learning_rate".
func (m *Model) learningRateEntry() (int, error) {
	m.lrOnce.Do(func() {
		m.lrEntry = -1
		path := filepath.Join(m.Dir, "variables.json")
		b, err := os.ReadFile(path)
		if err != nil {
			m.lrErr = fmt.Errorf("%w: %v", ErrSnapshotUnsupported, err)
			return
		}
		var listing struct {
			Variables []struct{ Key, Path, Role string } `json:"variables"`
		}
		if err := json.Unmarshal(b, &listing); err != nil {
			m.lrErr = fmt.Errorf("%w: parse %s: %v", ErrSnapshotUnsupported, path, err)
			return
		}
		for _, v := range listing.Variables {
			if v.Role == "optimizer" && (v.Path == "learning_rate" || strings.HasSuffix(v.Path, "/learning_rate")) {
				m.lrEntry = slices.Index(m.snap.keys, v.Key)
			}
		}
		if m.lrEntry < 0 {
			m.lrErr = fmt.Errorf("%w: %s names no learning rate variable", ErrSnapshotUnsupported, path)
		}
	})
	return m.lrEntry, m.lrErr
}
