package tfgraph

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	tf "github.com/wamuir/graft/tensorflow"
	"github.com/wamuir/graft/tensorflow/op"

	"github.com/emotions-dev/emotions/internal/atomicfs"
	"github.com/emotions-dev/emotions/savedmodel"
)

// Files of a model directory that never change after export: hard-linked into every saved
// copy. fingerprint.pb is left out on purpose: it hashes the checkpoint it was written with.
var staticModelFiles = []string{"saved_model.pb", savedmodel.MetadataFile, "variables.json"}

// Save writes the session's current variables (weights, optimizer slots and iteration count,
// learning rate, BatchNorm statistics, Dropout seed state) as a complete SavedModel at dir,
// atomically: dir is either the previous complete model or the new one, at every moment.
func (m *Model) Save(dir string) error { return m.SaveWithFiles(dir, nil) }

// SaveWithFiles is Save plus extra files (name -> content) written into the same directory
// in the same atomic step, e.g. a training loop's resume state beside the variables it
// belongs to.
func (m *Model) SaveWithFiles(dir string, extra map[string][]byte) error {
	m.saveMu.Lock()
	defer m.saveMu.Unlock()
	return m.writeModelDir(dir, extra, true, m.saveVariables)
}

// linkStaticFiles links into dir the files of the model directory that a save does not
// rewrite: the graph, the metadata, the assets and the serving template.
func (m *Model) linkStaticFiles(dir string) error {
	for _, name := range staticModelFiles {
		src := filepath.Join(m.Dir, name)
		if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := atomicfs.LinkOrCopy(src, filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	for _, sub := range []string{"assets", "assets.extra"} {
		src := filepath.Join(m.Dir, sub)
		if _, err := os.Stat(src); err == nil {
			if err := atomicfs.LinkTree(src, filepath.Join(dir, sub)); err != nil {
				return fmt.Errorf("save %s: %w", dir, err)
			}
		}
	}
	if err := m.saveServingTemplate(dir); err != nil {
		return fmt.Errorf("save %s: %w", dir, err)
	}
	return nil
}

// saveServingTemplate puts the serving template (what `emotions export` needs) beside the saved
// variables. It holds no weights, so every copy stays true to the directory it sits in. A model
// made before format 2 has a complete serving SavedModel with its initial weights there: the
// copy is converted to the weightless layout (its graph, key map and checkpoint object graph)
// and the copy's emotions.json says so, so no saved directory carries stale weights.
func (m *Model) saveServingTemplate(tmp string) error {
	info := m.Meta.Serving
	if info == nil || info.Dir == "" {
		return nil
	}
	src := filepath.Join(m.Dir, info.Dir)
	if !info.HasWeights() {
		return atomicfs.LinkTree(src, filepath.Join(tmp, info.Dir))
	}
	tpl := savedmodel.ServingTemplate
	if err := os.MkdirAll(filepath.Join(tmp, tpl.Dir), 0o755); err != nil {
		return err
	}
	objectGraph, err := ObjectGraph(filepath.Join(src, "variables", "variables"))
	if err != nil {
		return fmt.Errorf("convert the serving template of %s: %w", m.Dir, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, tpl.ObjectGraph), objectGraph, 0o644); err != nil {
		return err
	}
	if err := atomicfs.LinkOrCopy(filepath.Join(src, "saved_model.pb"), filepath.Join(tmp, tpl.Graph)); err != nil {
		return err
	}
	if err := atomicfs.LinkOrCopy(filepath.Join(m.Dir, info.KeyMap), filepath.Join(tmp, tpl.KeyMap)); err != nil {
		return err
	}
	if assets := filepath.Join(src, "assets"); dirHasEntries(assets) {
		if err := atomicfs.LinkTree(assets, filepath.Join(tmp, tpl.Dir, "assets")); err != nil {
			return err
		}
	}
	meta := m.Meta
	meta.Serving = &tpl
	// emotions.json was linked from the model directory: replace the link, never write through it.
	if err := os.Remove(filepath.Join(tmp, savedmodel.MetadataFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return savedmodel.WriteMetadata(tmp, meta)
}

func dirHasEntries(dir string) bool {
	entries, err := os.ReadDir(dir)
	return err == nil && len(entries) > 0
}

// ObjectGraphKey is the checkpoint entry holding the serialized object graph.
const ObjectGraphKey = "_CHECKPOINTABLE_OBJECT_GRAPH"

// ObjectGraph reads the serialized object graph (TrackableObjectGraph) of the checkpoint at
// prefix: what a SavedModel's loader matches the checkpoint's variables to its objects with.
func ObjectGraph(prefix string) ([]byte, error) {
	if _, err := os.Stat(prefix + ".index"); err != nil {
		return nil, fmt.Errorf("no checkpoint at %s: %w", prefix, err)
	}
	s := op.NewScope()
	restored := op.RestoreV2(s, op.Const(s.SubScope("prefix"), prefix), op.Const(s.SubScope("keys"), []string{ObjectGraphKey}),
		op.Const(s.SubScope("slices"), []string{""}), []tf.DataType{tf.String})
	g, err := s.Finalize()
	if err != nil {
		return nil, fmt.Errorf("build the object-graph read: %w", err)
	}
	sess, err := tf.NewSession(g, nil)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	out, err := sess.Run(nil, restored, nil)
	if err != nil {
		return nil, fmt.Errorf("read the object graph of %s: %w", prefix, err)
	}
	value, ok := out[0].Value().(string)
	if !ok {
		return nil, fmt.Errorf("%s: %s is not a string", prefix, ObjectGraphKey)
	}
	return []byte(value), nil
}

// saveVariables runs the SavedModel's own saver (its SaverDef) into prefix.
func (m *Model) saveVariables(prefix string) error {
	if m.saver == nil || m.saver.GetSaveTensorName() == "" {
		return fmt.Errorf("%s: the SavedModel has no saver", m.Dir)
	}
	feeds, err := m.saverFeeds(prefix)
	if err != nil {
		return err
	}
	save, err := m.output(m.saver.GetSaveTensorName())
	if err != nil {
		return fmt.Errorf("saver: %w", err)
	}
	if _, err := m.sm.Session.Run(feeds, []tf.Output{save}, nil); err != nil {
		return fmt.Errorf("save variables to %s: %w", prefix, err)
	}
	return nil
}

// Restore loads every variable from the model directory dir (written by Save, or the original
// export) into this session. dir must come from the same export (same checkpoint keys).
func (m *Model) Restore(dir string) error {
	m.saveMu.Lock()
	defer m.saveMu.Unlock()
	prefix := filepath.Join(dir, "variables", "variables")
	if _, err := os.Stat(prefix + ".index"); err != nil {
		return fmt.Errorf("restore from %s: no checkpoint (%s.index)", dir, prefix)
	}
	feeds, err := m.saverFeeds(prefix)
	if err != nil {
		return err
	}
	op := m.sm.Graph.Operation(m.saver.GetRestoreOpName())
	if op == nil {
		return fmt.Errorf("saver: graph has no restore op %q", m.saver.GetRestoreOpName())
	}
	if _, err := m.sm.Session.Run(feeds, nil, []*tf.Operation{op}); err != nil {
		return fmt.Errorf("restore variables from %s: %w", dir, err)
	}
	return nil
}

// saverFeeds feeds the checkpoint prefix to the SavedModel's saver.
func (m *Model) saverFeeds(prefix string) (map[tf.Output]*tf.Tensor, error) {
	fname, err := tf.NewTensor(prefix)
	if err != nil {
		return nil, err
	}
	feed, err := m.output(m.saver.GetFilenameTensorName())
	if err != nil {
		return nil, fmt.Errorf("saver: %w", err)
	}
	return map[tf.Output]*tf.Tensor{feed: fname}, nil
}
