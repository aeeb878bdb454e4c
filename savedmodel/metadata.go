// Package savedmodel holds the project's only Python (export.py, the Keras exporter) and the
// Go side of its contract: the emotions.json metadata file written beside every SavedModel.
// Go never hard-codes what a model expects; it reads it from here.
package savedmodel

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// MetadataFile is the name of the metadata file inside a model directory.
const MetadataFile = "emotions.json"

// FormatVersion is bumped when the metadata or signature contract changes incompatibly.
const FormatVersion = 1

// Normalization maps an 8-bit RGB pixel to the model's input: x = p*Scale[c] + Offset[c],
// taken in the channel order the backbone expects (BGR for Keras' "caffe" mode).
type Normalization struct {
	Mode   string     `json:"mode"` // rescale ([0,1], the seed's), tf ([-1,1]), caffe, torch
	BGR    bool       `json:"bgr"`
	Scale  [3]float32 `json:"scale"`
	Offset [3]float32 `json:"offset"`
}

// Rescale is the seed's ImageDataGenerator(rescale=1/255): pixels in [0,1].
var Rescale = Normalization{Mode: "rescale", Scale: [3]float32{1.0 / 255, 1.0 / 255, 1.0 / 255}}

// Apply normalises one RGB pixel (0..255 each) into out[0:3].
func (n Normalization) Apply(r, g, b float32, out []float32) {
	if n.BGR {
		r, b = b, r
	}
	out[0] = r*n.Scale[0] + n.Offset[0]
	out[1] = g*n.Scale[1] + n.Offset[1]
	out[2] = b*n.Scale[2] + n.Offset[2]
}

// Metadata is what export.py writes to emotions.json.
type Metadata struct {
	Format        int           `json:"format"`
	Backbone      string        `json:"backbone"`
	Weights       string        `json:"weights"`
	InputSize     int           `json:"input_size"`
	Classes       []string      `json:"classes"`
	Normalization Normalization `json:"normalization"`
	Seed          int           `json:"seed"`
	Optimizer     string        `json:"optimizer"`
	LearningRate  float64       `json:"learning_rate"`
	Loss          string        `json:"loss"`
	TFVersion     string        `json:"tensorflow_version"`
	KerasVersion  string        `json:"keras_version"`
	Source        string        `json:"source,omitempty"` // a wrapped .keras file, if any
	// Signatures maps our endpoint roles to the SavedModel signature names.
	Signatures map[string]string `json:"signatures"`
	// Serving names the serving-only SavedModel (relative to the model dir) and its key map.
	Serving *ServingInfo `json:"serving,omitempty"`
	Params  int64        `json:"params,omitempty"`
}

// ServingInfo describes the serving-only archive written beside the training model, used by
// `emotions export` to copy trained weights without optimizer slots.
type ServingInfo struct {
	Dir    string `json:"dir"`     // e.g. "serving"
	KeyMap string `json:"key_map"` // JSON file: serving checkpoint key -> training checkpoint key
}

// Default is used when a model directory has no metadata (e.g. preprocessing without a model):
// the seed's 80x80 input, [0,1] pixels, four classes.
func Default() Metadata {
	return Metadata{
		Format:        FormatVersion,
		InputSize:     80,
		Classes:       []string{"angry", "happy", "normal", "sad"},
		Normalization: Rescale,
	}
}

// ReadMetadata reads DIR/emotions.json and checks it is usable.
func ReadMetadata(dir string) (Metadata, error) {
	path := filepath.Join(dir, MetadataFile)
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Metadata{}, fmt.Errorf("%s: no %s: not a model made by `emotions new-model`", dir, MetadataFile)
		}
		return Metadata{}, fmt.Errorf("read %s: %w", path, err)
	}
	var m Metadata
	if err := json.Unmarshal(b, &m); err != nil {
		return Metadata{}, fmt.Errorf("parse %s: %w", path, err)
	}
	if err := m.Validate(); err != nil {
		return Metadata{}, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Validate reports the first thing that makes the metadata unusable.
func (m Metadata) Validate() error {
	if m.Format != FormatVersion {
		return fmt.Errorf("metadata format %d, this emotions reads %d: re-export the model", m.Format, FormatVersion)
	}
	if m.InputSize < 8 || m.InputSize > 4096 {
		return fmt.Errorf("input_size %d out of range", m.InputSize)
	}
	if len(m.Classes) < 2 {
		return fmt.Errorf("need at least 2 classes, got %d", len(m.Classes))
	}
	seen := map[string]bool{}
	for _, c := range m.Classes {
		if c == "" || seen[c] {
			return fmt.Errorf("class names must be unique and non-empty: %q", m.Classes)
		}
		seen[c] = true
	}
	if m.Normalization.Scale == [3]float32{} {
		return errors.New("normalization.scale is zero")
	}
	return nil
}

// WriteMetadata writes DIR/emotions.json.
func WriteMetadata(dir string, m Metadata) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, MetadataFile)
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
