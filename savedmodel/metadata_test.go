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
	if err != nil || got.InputSize != 80 || strings.Join(got.Classes, ",") != "angry,happy,normal,sad" {
		t.Fatalf("read back %+v, %v", got, err)
	}
	for _, c := range []struct {
		edit func(*Metadata)
		want string
	}{
		{func(m *Metadata) { m.Format = 99 }, "format 99"},
		{func(m *Metadata) { m.Classes = []string{"a", "a"} }, "unique"},
		{func(m *Metadata) { m.Classes = []string{"a"} }, "at least 2"},
		{func(m *Metadata) { m.InputSize = 0 }, "input_size"},
		{func(m *Metadata) { m.Normalization.Scale = [3]float32{} }, "scale"},
	} {
		bad := Default()
		c.edit(&bad)
		WriteMetadata(dir, bad)
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
