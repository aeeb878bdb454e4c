package savedmodel

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMetadataRoundTripAndValidation(t *testing.T) {
	dir := t.TempDir()
	m := Default()
	m.Backbone = "tiny"
	if err := WriteMetadata(dir, m); err != nil {
		t.Fatal(err)
	}
	got, err := ReadMetadata(dir)
	if err != nil || got.InputHeight != 80 || got.InputWidth != 80 || got.InputSize != 80 || got.Channels != 3 ||
		strings.Join(got.Classes, ",") != "angry,happy,normal,sad" {
		t.Fatalf("read back %+v, %v", got, err)
	}
	for _, c := range []struct {
		edit func(*Metadata)
		want string
	}{
		{func(m *Metadata) { m.Format = 99 }, "format 99"},
		{func(m *Metadata) { m.Classes = []string{"a", "a"} }, "unique"},
		{func(m *Metadata) { m.Classes = []string{"a"} }, "at least 2"},
		{func(m *Metadata) { m.InputHeight = 0 }, "out of range"},
		{func(m *Metadata) { m.InputWidth = 5000 }, "out of range"},
		{func(m *Metadata) { m.Channels = 2 }, "channels 2"},
		{func(m *Metadata) { m.Channels = 1 }, "does not match channels 1"},
		{func(m *Metadata) { m.Color = ColorGrayscale }, "does not match channels 3"},
		{func(m *Metadata) { m.Channels, m.Color, m.Normalization.BGR = 1, ColorGrayscale, true }, "bgr"},
		{func(m *Metadata) { m.Output = "" }, "output"},
		{func(m *Metadata) { m.Output = "sigmoid" }, "output \"sigmoid\""},
		{func(m *Metadata) { m.Normalization.Scale = [3]float32{} }, "scale"},
	} {
		bad := Default()
		c.edit(&bad)
		if err := WriteMetadata(dir, bad); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadMetadata(dir); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want an error with %q, got %v", c.want, err)
		}
	}
	os.WriteFile(filepath.Join(dir, MetadataFile), []byte("{"), 0o644)
	if _, err := ReadMetadata(dir); err == nil || !strings.Contains(err.Error(), "parse") {
		t.Errorf("truncated JSON: %v", err)
	}
	if _, err := ReadMetadata(t.TempDir()); err == nil || !strings.Contains(err.Error(), "new-model") {
		t.Errorf("missing file: %v", err)
	}
}

// A format-1 file (models made before format 2) reads as a square RGB probabilities model.
func TestReadFormat1(t *testing.T) {
	dir := t.TempDir()
	format1 := `{"format": 1, "backbone": "tiny", "input_size": 64, "classes": ["a", "b"],
		"normalization": {"mode": "tf", "bgr": false, "scale": [0.00784, 0.00784, 0.00784], "offset": [-1, -1, -1]},
		"serving": {"dir": "serving", "key_map": "serving/key_map.json"}}`
	if err := os.WriteFile(filepath.Join(dir, MetadataFile), []byte(format1), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := ReadMetadata(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Format != FormatVersion || m.InputHeight != 64 || m.InputWidth != 64 || m.InputSize != 64 || m.Channels != 3 ||
		m.Color != ColorRGB || m.Output != OutputProbabilities || m.PixelsPerImage() != 64*64*3 {
		t.Fatalf("format 1 read as %+v", m)
	}
	if !m.Serving.HasWeights() {
		t.Fatal("a format-1 serving template (serving/ SavedModel) reported as weightless")
	}
	bad := strings.Replace(format1, `"input_size": 64`, `"input_size": 4`, 1)
	os.WriteFile(filepath.Join(dir, MetadataFile), []byte(bad), 0o644)
	if _, err := ReadMetadata(dir); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("format 1 with input_size 4: %v", err)
	}
}

// A non-square one-channel logits model: input_size is neither written nor derived, and the
// helpers count one float per pixel.
func TestNonSquareGrayscale(t *testing.T) {
	dir := t.TempDir()
	m := Default()
	m.InputHeight, m.InputWidth, m.Channels, m.Color, m.Output = 96, 64, 1, ColorGrayscale, OutputLogits
	m.Serving = &ServingTemplate
	if err := WriteMetadata(dir, m); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, MetadataFile))
	if strings.Contains(string(raw), "input_size") {
		t.Fatalf("input_size written for a 96x64 model:\n%s", raw)
	}
	got, err := ReadMetadata(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.InputSize != 0 || got.PixelsPerImage() != 96*64 || got.Output != OutputLogits || got.Serving.HasWeights() {
		t.Fatalf("read back %+v", got)
	}
}

func near(a float32, b float64) bool { return math.Abs(float64(a)-b) < 1e-5 }

// Normalization applies the channel order and affine map Keras' preprocess_input modes use.
func TestNormalizationApply(t *testing.T) {
	out := make([]float32, 3)
	Rescale.Apply(255, 0, 51, out)
	if out[0] != 1 || out[1] != 0 || math.Abs(float64(out[2])-0.2) > 1e-7 {
		t.Fatalf("rescale: %v", out)
	}
	caffe := Normalization{BGR: true, Scale: [3]float32{1, 1, 1}, Offset: [3]float32{-103.939, -116.779, -123.68}}
	caffe.Apply(200, 100, 50, out) // BGR order: 50, 100, 200 minus the means
	want := []float64{50 - 103.939, 100 - 116.779, 200 - 123.68}
	if math.Abs(float64(out[0])-want[0]) > 1e-4 || math.Abs(float64(out[1])-want[1]) > 1e-4 || math.Abs(float64(out[2])-want[2]) > 1e-4 {
		t.Fatalf("caffe: %v", out)
	}
}
