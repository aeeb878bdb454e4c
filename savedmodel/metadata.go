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
	"strings"
)

// MetadataFile is the name of the metadata file inside a model directory.
const MetadataFile = "emotions.json"

// FormatVersion is bumped when the metadata or signature contract changes incompatibly.
// Format 2 added input_height/input_width/channels/color/output; format 1 (input_size, square
// RGB, probabilities) is still read.
const FormatVersion = 2

// GenericFormat is the format of a wrapped compiled Keras model of any inputs and outputs
// (`new-model --from model.keras --generic`, Kind "generic"): Inputs, Outputs, Targets, Losses,
// Logs and Monitor describe it; the image fields are unused.
const GenericFormat = 3

// KindGeneric is Metadata.Kind of a GenericFormat model.
const KindGeneric = "generic"

// Tensor is one named tensor of a generic model's contract: its dtype (NumPy's name) and shape,
// -1 where a dimension is dynamic (the batch).
type Tensor struct {
	Name  string  `json:"name"`
	DType string  `json:"dtype"`
	Shape []int64 `json:"shape"`
}

// Names lists the tensors' names, comma-separated, for messages.
func Names(ts []Tensor) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.Name
	}
	return strings.Join(names, ", ")
}

// Loss is the loss compiled for one output of a generic model.
type Loss struct {
	Output     string  `json:"output"`
	Loss       string  `json:"loss"` // Keras' snake_case name ("sparse_categorical_crossentropy")
	FromLogits *bool   `json:"from_logits"`
	Weight     float64 `json:"weight"` // its loss_weights entry (1 when none was given)
}

// Log is one value the train_step and evaluate signatures return, in the order Keras logs them.
type Log struct {
	Name  string  `json:"name"`
	Shape []int64 `json:"shape"` // [] for a scalar
}

// Values of Metadata.Output and Metadata.Color.
const (
	OutputProbabilities = "probabilities"
	OutputLogits        = "logits"
	ColorRGB            = "rgb"
	ColorGrayscale      = "grayscale"
)

// Normalization maps an 8-bit RGB pixel to the model's input: x = p*Scale[c] + Offset[c],
// taken in the channel order the backbone expects (BGR for Keras' "caffe" mode). A
// one-channel model's pixel p is the BT.601 luma of the RGB pixel and uses Scale[0], Offset[0].
type Normalization struct {
	Mode   string     `json:"mode"` // rescale ([0,1], the seed's), tf ([-1,1]), caffe, torch, mean_std
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
	Format      int    `json:"format"`
	Backbone    string `json:"backbone"`
	Weights     string `json:"weights"`
	InputHeight int    `json:"input_height"`
	InputWidth  int    `json:"input_width"`
	Channels    int    `json:"channels"` // 1 (grayscale: the luma of the RGB pixel) or 3
	Color       string `json:"color"`    // ColorRGB or ColorGrayscale, as Channels says
	// Output is what the model itself outputs, OutputProbabilities or OutputLogits; the serve
	// signature returns probabilities either way.
	Output string `json:"output"`
	// InputSize is the side of a square input (InputHeight == InputWidth), 0 otherwise.
	// Deprecated: use InputHeight and InputWidth; ReadMetadata derives it from them.
	InputSize     int           `json:"input_size,omitempty"`
	Classes       []string      `json:"classes"`
	Normalization Normalization `json:"normalization"`
	// Crop is how a photo becomes the input: CropFace (around the detected face; "" too),
	// CropCenter or CropNone (the whole photo resized).
	Crop         string  `json:"crop,omitempty"`
	Seed         int     `json:"seed"`
	Optimizer    string  `json:"optimizer"`
	LearningRate float64 `json:"learning_rate"`
	Loss         string  `json:"loss"`
	TFVersion    string  `json:"tensorflow_version"`
	KerasVersion string  `json:"keras_version"`
	Source       string  `json:"source,omitempty"` // a wrapped .keras file, if any
	// Signatures maps our endpoint roles to the SavedModel signature names.
	Signatures map[string]string `json:"signatures"`
	// Serving names what `emotions export` builds the serving-only SavedModel from.
	Serving *ServingInfo `json:"serving,omitempty"`
	Params  int64        `json:"params,omitempty"`
	// MixedPrecision is the Keras dtype policy the model computes under, "mixed_float16" or
	// "mixed_bfloat16" (variables and outputs float32); "" is float32 throughout.
	MixedPrecision string `json:"mixed_precision,omitempty"`
	// LossScale: the optimizer is Keras' LossScaleOptimizer (mixed_float16); its dynamic
	// scale is an optimizer variable, saved and resumed with the others.
	LossScale bool `json:"loss_scale,omitempty"`

	// Kind is KindGeneric for a GenericFormat model, "" for the image classifier.
	Kind string `json:"kind,omitempty"`
	// Inputs, Outputs and Targets are a generic model's tensors as its signatures name them:
	// Keras' x and y dicts. A target is named as its output.
	Inputs  []Tensor `json:"inputs,omitempty"`
	Outputs []Tensor `json:"outputs,omitempty"`
	Targets []Tensor `json:"targets,omitempty"`
	// SampleWeights is the per-row weight train_step and evaluate take.
	SampleWeights *Tensor `json:"sample_weights,omitempty"`
	Losses        []Loss  `json:"losses,omitempty"`
	Logs          []Log   `json:"logs,omitempty"`
	// Monitor is, per log name, the direction Keras' `auto` mode picks for it (and its val_
	// twin): "min", "max", or "" where Keras refuses auto mode.
	Monitor map[string]string `json:"monitor,omitempty"`
}

// Generic reports a wrapped compiled Keras model of any inputs and outputs (GenericFormat).
func (m Metadata) Generic() bool { return m.Kind == KindGeneric }

// Values of Metadata.Crop.
const (
	CropFace   = "face"
	CropCenter = "center"
	CropNone   = "none"
)

// PixelsPerImage is the number of floats of one input image: height x width x channels.
func (m Metadata) PixelsPerImage() int { return m.InputHeight * m.InputWidth * m.Channels }

// ServingInfo describes the serving template written beside the training model, from which
// `emotions export` builds a serving-only SavedModel of the trained weights (no optimizer
// slots). Paths are relative to the model directory.
//
// Since format 2 the template holds no weights: Dir ("serving-graph") has Graph (the serving
// SavedModel proto, not named saved_model.pb so that nothing loads it as a model), ObjectGraph
// (its checkpoint's object graph) and KeyMap. Directories made before (Graph empty) hold a
// complete serving SavedModel with the initial weights in Dir ("serving"); export still reads
// them.
type ServingInfo struct {
	Dir         string `json:"dir"`                    // "serving-graph" ("serving" before)
	KeyMap      string `json:"key_map"`                // JSON file: serving checkpoint key -> training checkpoint key
	Graph       string `json:"graph,omitempty"`        // the serving SavedModel proto
	ObjectGraph string `json:"object_graph,omitempty"` // serialized TrackableObjectGraph of its checkpoint
}

// ServingTemplate is the layout export.py writes since format 2.
var ServingTemplate = ServingInfo{
	Dir:         "serving-graph",
	KeyMap:      "serving-graph/key_map.json",
	Graph:       "serving-graph/graph.pb",
	ObjectGraph: "serving-graph/object_graph.pb",
}

// HasWeights reports whether the template is the old layout: a complete SavedModel with the
// weights the model was created with.
func (s ServingInfo) HasWeights() bool { return s.Graph == "" }

// Default is used when a model directory has no metadata (e.g. preprocessing without a model):
// the seed's 80x80 RGB input, [0,1] pixels, four classes.
func Default() Metadata {
	return Metadata{
		Format:        FormatVersion,
		InputHeight:   80,
		InputWidth:    80,
		Channels:      3,
		Color:         ColorRGB,
		Output:        OutputProbabilities,
		InputSize:     80,
		Classes:       []string{"angry", "happy", "normal", "sad"},
		Normalization: Rescale,
	}
}

// ReadMetadata reads DIR/emotions.json and checks it is usable. A format-1 file is returned
// as format 2: its input_size is the height and width, of 3 channels, output probabilities.
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
	if m.Format == 1 {
		m.upgradeFormat1()
	}
	validate := m.Validate
	if m.Format == GenericFormat {
		validate = m.validateGeneric
	}
	if err := validate(); err != nil {
		return Metadata{}, fmt.Errorf("%s: %w", path, err)
	}
	m.InputSize = 0
	if m.InputHeight == m.InputWidth {
		m.InputSize = m.InputHeight
	}
	return m, nil
}

// upgradeFormat1 fills the fields format 2 added with what format 1 implied.
func (m *Metadata) upgradeFormat1() {
	m.Format = FormatVersion
	m.InputHeight, m.InputWidth = m.InputSize, m.InputSize
	m.Channels, m.Color, m.Output = 3, ColorRGB, OutputProbabilities
}

// Validate reports the first thing that makes the metadata unusable.
func (m Metadata) Validate() error {
	if m.Format != FormatVersion {
		return fmt.Errorf("metadata format %d, this emotions reads 1 and %d: re-export the model", m.Format, FormatVersion)
	}
	if m.InputHeight < 8 || m.InputHeight > 4096 || m.InputWidth < 8 || m.InputWidth > 4096 {
		return fmt.Errorf("input %dx%d (input_height x input_width) out of range 8..4096", m.InputHeight, m.InputWidth)
	}
	switch {
	case m.Channels == 3 && m.Color == ColorRGB:
	case m.Channels == 1 && m.Color == ColorGrayscale:
		if m.Normalization.BGR {
			return errors.New("normalization.bgr is set for a one-channel (grayscale) model")
		}
	case m.Channels != 1 && m.Channels != 3:
		return fmt.Errorf("channels %d: need 1 (grayscale) or 3 (RGB)", m.Channels)
	default:
		return fmt.Errorf("color %q does not match channels %d (1: %q, 3: %q)", m.Color, m.Channels, ColorGrayscale, ColorRGB)
	}
	if m.Output != OutputProbabilities && m.Output != OutputLogits {
		return fmt.Errorf("output %q: need %q or %q", m.Output, OutputProbabilities, OutputLogits)
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
	if err := CheckCrop(m.Crop); err != nil {
		return err
	}
	for c := 0; c < m.Channels; c++ {
		if m.Normalization.Scale[c] == 0 {
			return errors.New("normalization.scale is zero")
		}
	}
	return nil
}

// CheckCrop reports a crop mode other than "" and the Crop* values.
func CheckCrop(crop string) error {
	switch crop {
	case "", CropFace, CropCenter, CropNone:
		return nil
	}
	return fmt.Errorf("crop %q: need %s, %s or %s", crop, CropFace, CropCenter, CropNone)
}

// validateGeneric reports the first thing that makes a GenericFormat file unusable.
func (m Metadata) validateGeneric() error {
	if m.Kind != KindGeneric {
		return fmt.Errorf("metadata format %d of kind %q: format %d is kind %q", m.Format, m.Kind, GenericFormat, KindGeneric)
	}
	if len(m.Inputs) == 0 || len(m.Outputs) == 0 {
		return fmt.Errorf("a generic model needs inputs and outputs: it has %d and %d", len(m.Inputs), len(m.Outputs))
	}
	if len(m.Targets) != len(m.Outputs) || len(m.Losses) != len(m.Outputs) {
		return fmt.Errorf("%d outputs but %d targets and %d losses", len(m.Outputs), len(m.Targets), len(m.Losses))
	}
	seen := map[string]string{}
	for _, group := range []struct {
		what    string
		tensors []Tensor
	}{{"input", m.Inputs}, {"output", m.Outputs}} {
		for _, t := range group.tensors {
			if t.Name == "" || seen[t.Name] != "" {
				return fmt.Errorf("%s name %q is empty or also names an %s", group.what, t.Name, seen[t.Name])
			}
			seen[t.Name] = group.what
			if len(t.Shape) == 0 || t.Shape[0] != -1 {
				return fmt.Errorf("%s %s: shape %v: the first (batch) dimension must be dynamic (-1)", group.what, t.Name, t.Shape)
			}
		}
	}
	for i, t := range m.Targets {
		if t.Name != m.Outputs[i].Name || m.Losses[i].Output != t.Name {
			return fmt.Errorf("target %d is %q, its loss is for %q: both must name output %q", i, t.Name, m.Losses[i].Output, m.Outputs[i].Name)
		}
	}
	return nil
}

// WriteMetadata writes DIR/emotions.json.
func WriteMetadata(dir string, m Metadata) error {
	m.InputSize = 0 // written for format-1 readers of a square model only
	if m.InputHeight == m.InputWidth {
		m.InputSize = m.InputHeight
	}
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
