package preprocess

import (
	"image"
	"image/color"
	"testing"

	"github.com/emotions-dev/emotions/savedmodel"
)

// Crop modes: a 300x100 photo in thirds (red, green, blue) becomes a 30x30 input of its green
// middle with "center" (no detection run), of all three thirds side by side with "none" (the
// whole photo squeezed), and an unknown mode is refused.
func TestCropModes(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 300, 100))
	thirds := []color.RGBA{{255, 0, 0, 255}, {0, 255, 0, 255}, {0, 0, 255, 255}}
	for y := 0; y < 100; y++ {
		for x := 0; x < 300; x++ {
			img.Set(x, y, thirds[x/100])
		}
	}
	data := encodePNG(t, img)
	pixel := func(r Result, x, y int) [3]uint8 {
		i := (y*30 + x) * 3
		return [3]uint8{r.Crop[i], r.Crop[i+1], r.Crop[i+2]}
	}
	for _, c := range []struct {
		crop    string
		outcome Outcome
		left    [3]uint8 // the input's pixel at x=2 (x=27 mirrors it: blue for none)
	}{
		{savedmodel.CropCenter, OutcomeCenter, [3]uint8{0, 255, 0}},
		{savedmodel.CropNone, OutcomeWhole, [3]uint8{255, 0, 0}},
		{"", OutcomeFallback, [3]uint8{0, 255, 0}}, // face mode, no face: the centre
	} {
		p, err := New(Options{Height: 30, Width: 30, Face: DefaultFaceOptions(), Crop: c.crop})
		if err != nil {
			t.Fatal(err)
		}
		r := p.Bytes("thirds.png", data)
		if r.Outcome != c.outcome || len(r.Crop) != 30*30*3 {
			t.Fatalf("crop %q: outcome %s, %d values", c.crop, r.Outcome, len(r.Crop))
		}
		if got := pixel(r, 2, 15); got != c.left {
			t.Errorf("crop %q: left pixel %v, want %v", c.crop, got, c.left)
		}
		if c.crop == savedmodel.CropNone {
			if got := pixel(r, 27, 15); got != [3]uint8{0, 0, 255} {
				t.Errorf("crop none: right pixel %v, want blue", got)
			}
		}
	}
	if _, err := New(Options{Height: 30, Width: 30, Face: DefaultFaceOptions(), Crop: "middle"}); err == nil {
		t.Error(`crop "middle" accepted`)
	}
	// Each mode has its own cache key: a crop cached by one is never served to another.
	a, _ := New(Options{Height: 30, Width: 30, Face: DefaultFaceOptions()})
	b, _ := New(Options{Height: 30, Width: 30, Face: DefaultFaceOptions(), Crop: savedmodel.CropCenter})
	f, _ := New(Options{Height: 30, Width: 30, Face: DefaultFaceOptions(), Crop: savedmodel.CropFace})
	if a.cacheKey(data) == b.cacheKey(data) || a.cacheKey(data) != f.cacheKey(data) {
		t.Error("cache keys: center shares face's, or explicit face differs from the default")
	}
}
