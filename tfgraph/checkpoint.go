package tfgraph

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	tf "github.com/wamuir/graft/tensorflow"

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
	return m.writeModelDir(dir, extra, m.saveVariables)
}

// linkStaticFiles links into dir the files of the model directory that a save does not
// rewrite: the graph, the metadata and the assets.
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
	for _, sub := range []string{"assets", "assets.extra", servingDir(m.Meta)} {
		if sub == "" {
			continue
		}
		src := filepath.Join(m.Dir, sub)
		if _, err := os.Stat(src); err == nil {
			if err := atomicfs.LinkTree(src, filepath.Join(dir, sub)); err != nil {
				return fmt.Errorf("save %s: %w", dir, err)
			}
		}
	}
	return nil
}

func servingDir(meta savedmodel.Metadata) string {
	if meta.Serving == nil {
		return ""
	}
	return meta.Serving.Dir
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
