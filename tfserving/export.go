// Package tfserving exports models for TensorFlow Serving and serves them with TF Serving's
// REST and gRPC APIs (plus :classify_image for raw photos), batching concurrent requests
// into one session run.
package tfserving

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	tf "github.com/wamuir/graft/tensorflow"
	"github.com/wamuir/graft/tensorflow/op"

	"github.com/emotions-dev/emotions/internal/atomicfs"
	"github.com/emotions-dev/emotions/savedmodel"
	"github.com/emotions-dev/emotions/tfgraph"
)

// maxObjectGraphBytes bounds object_graph.pb (InceptionResNetV2's is ~100 KB).
const maxObjectGraphBytes = 64 << 20

// LabelsFile lists the class names, one a line, in output order (in assets.extra/, TF
// Serving's place for files that travel with a version but are not part of the graph).
const LabelsFile = "labels.txt"

// keyMap is the serving template's key_map.json, written by export.py.
type keyMap struct {
	Map    map[string]string `json:"map"`    // serving checkpoint key -> training checkpoint key
	DTypes map[string]string `json:"dtypes"` // serving checkpoint key -> numpy dtype name
}

// servingTemplate is what an export is built from: the serving SavedModel proto, its assets,
// the object graph its checkpoint must carry, and where each of its variables comes from.
type servingTemplate struct {
	graph       string // file holding the serving saved_model.pb
	assets      string // assets directory ("" if none)
	objectGraph []byte
	keys        keyMap
}

// readServingTemplate reads the template of the model directory src in either layout: the
// weightless serving-graph/ (format 2), or the serving/ SavedModel of models made before, whose
// object graph is read from its checkpoint (its weights are never used).
func readServingTemplate(src string, info savedmodel.ServingInfo) (servingTemplate, error) {
	var tpl servingTemplate
	km, err := readKeyMap(filepath.Join(src, info.KeyMap))
	if err != nil {
		return tpl, err
	}
	tpl.keys = km
	dir := filepath.Join(src, info.Dir)
	if dirExists(filepath.Join(dir, "assets")) {
		tpl.assets = filepath.Join(dir, "assets")
	}
	if info.HasWeights() {
		tpl.graph = filepath.Join(dir, "saved_model.pb")
		tpl.objectGraph, err = tfgraph.ObjectGraph(filepath.Join(dir, "variables", "variables"))
		return tpl, err
	}
	tpl.graph = filepath.Join(src, info.Graph)
	path := filepath.Join(src, info.ObjectGraph)
	st, err := os.Stat(path)
	if err != nil {
		return tpl, fmt.Errorf("serving template: %w", err)
	}
	if st.Size() > maxObjectGraphBytes {
		return tpl, fmt.Errorf("%s: %d bytes, more than an object graph can be (%d)", path, st.Size(), maxObjectGraphBytes)
	}
	if tpl.objectGraph, err = os.ReadFile(path); err != nil {
		return tpl, fmt.Errorf("serving template: %w", err)
	}
	return tpl, nil
}

// Export writes the serving-only SavedModel of the model directory src, with its trained
// weights and without optimizer slots or training signatures, to base/<version>. version 0
// picks the next free integer. An existing version is never overwritten. It returns the
// directory written.
func Export(src, base string, version int64) (string, error) {
	meta, err := savedmodel.ReadMetadata(src)
	if err != nil {
		return "", err
	}
	if meta.Serving == nil || meta.Serving.Dir == "" {
		return "", fmt.Errorf("%s has no serving archive (emotions.json lacks \"serving\"): re-create it with `emotions new-model`", src)
	}
	tpl, err := readServingTemplate(src, *meta.Serving)
	if err != nil {
		return "", fmt.Errorf("export %s: %w", src, err)
	}
	if version == 0 {
		if version, err = nextVersion(base); err != nil {
			return "", err
		}
	}
	if version < 0 {
		return "", fmt.Errorf("version %d: versions are positive integers", version)
	}
	dst := filepath.Join(base, strconv.FormatInt(version, 10))
	if _, err := os.Lstat(dst); err == nil {
		return "", fmt.Errorf("%s already exists: versions are never overwritten: pick another version", dst)
	}
	tmp, err := atomicfs.TempDir(dst)
	if err != nil {
		return "", err
	}
	if err := fillExport(tmp, src, tpl, meta); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("export %s: %w", src, err)
	}
	if err := atomicfs.SyncTree(tmp); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	// Not atomicfs.Replace: rename(2) refuses a non-empty target, so a version written
	// concurrently by someone else is kept rather than swapped out.
	if err := os.Rename(tmp, dst); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("put the export in place at %s: %w", dst, err)
	}
	return dst, syncDir(base)
}

func fillExport(tmp, src string, tpl servingTemplate, meta savedmodel.Metadata) error {
	if err := atomicfs.LinkOrCopy(tpl.graph, filepath.Join(tmp, "saved_model.pb")); err != nil {
		return err
	}
	if tpl.assets != "" {
		if err := atomicfs.LinkTree(tpl.assets, filepath.Join(tmp, "assets")); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(tmp, "variables"), 0o755); err != nil {
		return err
	}
	err := copyServingVariables(filepath.Join(src, "variables", "variables"), filepath.Join(tmp, "variables", "variables"), tpl)
	if err != nil {
		return err
	}
	return writeServingMetadata(tmp, meta)
}

// writeServingMetadata puts emotions.json and labels.txt in assets.extra/ for TF Serving
// clients, and emotions.json at the top too, so the export is also a model directory the
// rest of emotions (predict, serve --model) can open.
func writeServingMetadata(dir string, meta savedmodel.Metadata) error {
	meta.Serving = nil
	meta.Signatures = map[string]string{"serve": servingSignature(meta)}
	if err := savedmodel.WriteMetadata(dir, meta); err != nil {
		return err
	}
	extra := filepath.Join(dir, "assets.extra")
	if err := os.MkdirAll(extra, 0o755); err != nil {
		return err
	}
	if err := atomicfs.LinkOrCopy(filepath.Join(dir, savedmodel.MetadataFile), filepath.Join(extra, savedmodel.MetadataFile)); err != nil {
		return err
	}
	if len(meta.Classes) == 0 { // a generic model: its outputs are named, there are no classes
		return nil
	}
	labels := strings.Join(meta.Classes, "\n") + "\n"
	return os.WriteFile(filepath.Join(extra, LabelsFile), []byte(labels), 0o644)
}

func servingSignature(meta savedmodel.Metadata) string {
	if s := meta.Signatures["serve"]; s != "" {
		return s
	}
	return "serve"
}

// copyServingVariables restores the trained tensors from the training checkpoint under their
// training keys and saves them under the serving keys, with the template's object graph, in
// one small graph run: no model is loaded and optimizer slots are never read.
func copyServingVariables(trainPrefix, outPrefix string, tpl servingTemplate) error {
	km := tpl.keys
	servingKeys := make([]string, 0, len(km.Map))
	for k := range km.Map {
		if k != tfgraph.ObjectGraphKey { // the object graph is the template's, never training's
			servingKeys = append(servingKeys, k)
		}
	}
	if len(servingKeys) == 0 {
		return errors.New("key map lists no variables")
	}
	sort.Strings(servingKeys)
	trainKeys := make([]string, len(servingKeys))
	dtypes := make([]tf.DataType, len(servingKeys))
	for i, k := range servingKeys {
		trainKeys[i] = km.Map[k]
		dt, err := dtypeFromName(km.DTypes[k])
		if err != nil {
			return fmt.Errorf("key map entry %s: %w", k, err)
		}
		dtypes[i] = dt
	}

	s := op.NewScope()
	konst := func(name string, value any) tf.Output { return op.Const(s.SubScope(name), value) }
	trained := op.RestoreV2(s.SubScope("trained"), konst("train_prefix", trainPrefix), konst("train_keys", trainKeys),
		konst("train_slices", make([]string, len(trainKeys))), dtypes)
	graph := konst("object_graph", string(tpl.objectGraph))
	outKeys := append(append([]string{}, servingKeys...), tfgraph.ObjectGraphKey)
	save := op.SaveV2(s.SubScope("save"), konst("out_prefix", outPrefix), konst("out_keys", outKeys),
		konst("out_slices", make([]string, len(outKeys))), append(trained, graph))
	g, err := s.Finalize()
	if err != nil {
		return fmt.Errorf("build the checkpoint-copy graph: %w", err)
	}
	sess, err := tf.NewSession(g, nil)
	if err != nil {
		return fmt.Errorf("checkpoint-copy session: %w", err)
	}
	defer sess.Close()
	if _, err := sess.Run(nil, nil, []*tf.Operation{save}); err != nil {
		return fmt.Errorf("copy trained weights from %s to %s: %w", trainPrefix, outPrefix, err)
	}
	return nil
}

func readKeyMap(path string) (keyMap, error) {
	var km keyMap
	b, err := os.ReadFile(path)
	if err != nil {
		return km, fmt.Errorf("read the serving key map: %w", err)
	}
	if err := json.Unmarshal(b, &km); err != nil {
		return km, fmt.Errorf("parse %s: %w", path, err)
	}
	return km, nil
}

func dtypeFromName(name string) (tf.DataType, error) {
	if name == "" {
		return tf.Float, nil
	}
	dt, ok := tfgraph.DataTypeOf(name)
	if !ok {
		return 0, fmt.Errorf("unknown dtype %q", name)
	}
	return dt, nil
}

// Versions lists the numeric version directories of base holding a saved_model.pb, ascending.
func Versions(base string) ([]int64, error) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return nil, fmt.Errorf("model base %s: %w", base, err)
	}
	var out []int64
	for _, e := range entries {
		v, err := strconv.ParseInt(e.Name(), 10, 64)
		if err != nil || v <= 0 || !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(base, e.Name(), "saved_model.pb")); err == nil {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// nextVersion is one above the highest numeric entry of base (1 for a new base). Any numeric
// entry counts, complete or not, so a version is never reused.
func nextVersion(base string) (int64, error) {
	entries, err := os.ReadDir(base)
	if errors.Is(err, fs.ErrNotExist) {
		return 1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("model base %s: %w", base, err)
	}
	var top int64
	for _, e := range entries {
		if v, err := strconv.ParseInt(e.Name(), 10, 64); err == nil && v > top {
			top = v
		}
	}
	return top + 1, nil
}

// syncDir makes a rename inside dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

func dirExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}
