package preprocess

import (
	"bytes"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// FuzzPreprocessBytes: any bytes, as :classify_image and `emotions predict` receive them.
// Preprocessing never panics and answers with either a crop of the model's size or an
// error naming the file; it accepts exactly what the image decoders accept (sniffed from
// content) within the pixel limit, agrees with Decode, and gives the same crop twice.
//
// Its seeds are added here rather than kept in testdata/fuzz/: TestCorpusOutcomes counts
// the entries of testdata/. They are a small image in each format Go can encode and every
// fixture of testdata/ under 64 KiB (WebP, EXIF-oriented, truncated, a bomb, not images).
func FuzzPreprocessBytes(f *testing.F) {
	const side, maxPixels = 32, 1 << 22 // a small limit keeps fuzzed images quick to decode
	p, err := New(Options{Height: side, Width: side, MaxPixels: maxPixels, Face: DefaultFaceOptions()})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range encodedSeeds(f) {
		f.Add(seed)
	}
	fixtures, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range fixtures {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() && info.Size() <= 64<<10 {
			raw, err := os.ReadFile(filepath.Join("testdata", e.Name()))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(raw)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := p.Bytes("fuzzed.img", data)
		if r.File != "fuzzed.img" {
			t.Fatalf("result names %q", r.File)
		}
		cfg, _, cfgErr := image.DecodeConfig(bytes.NewReader(data))
		declared := int64(cfg.Width) * int64(cfg.Height)
		if r.Err != nil {
			if r.Outcome != OutcomeRejected || r.Crop != nil || r.Face != nil || !strings.HasPrefix(r.Err.Error(), "fuzzed.img: ") {
				t.Fatalf("rejected as %q with crop %d bytes, face %v, error %q", r.Outcome, len(r.Crop), r.Face, r.Err)
			}
			if cfgErr == nil && declared > maxPixels && !strings.Contains(r.Err.Error(), "megapixel limit") {
				t.Fatalf("%dx%d refused for another reason than the pixel limit: %v", cfg.Width, cfg.Height, r.Err)
			}
		} else {
			if len(r.Crop) != side*side*3 || (r.Outcome == OutcomeFace) != (r.Face != nil) || (r.Outcome != OutcomeFace && r.Outcome != OutcomeFallback) {
				t.Fatalf("accepted as %q with a %d-byte crop and face %v", r.Outcome, len(r.Crop), r.Face)
			}
			if cfgErr != nil || cfg.Width <= 0 || cfg.Height <= 0 || declared > maxPixels {
				t.Fatalf("accepted, but the decoders declare %dx%d (%v)", cfg.Width, cfg.Height, cfgErr)
			}
			again := p.Bytes("fuzzed.img", data)
			if !bytes.Equal(again.Crop, r.Crop) || again.Outcome != r.Outcome {
				t.Fatalf("the same bytes preprocessed twice gave different crops")
			}
		}
		img, derr := p.Decode("fuzzed.img", data)
		detectorFailed := r.Err != nil && strings.Contains(r.Err.Error(), "face detector")
		if (derr == nil) != (r.Err == nil) && !detectorFailed {
			t.Fatalf("Decode says %v, Bytes says %v", derr, r.Err)
		}
		if derr == nil {
			b := img.Bounds()
			if int64(b.Dx())*int64(b.Dy()) != declared {
				t.Fatalf("Decode gave %v for an image declaring %dx%d", b, cfg.Width, cfg.Height)
			}
		}
	})
}

// encodedSeeds is a 24x20 gradient in PNG (RGBA and 16-bit gray), JPEG, GIF, BMP and
// deflated TIFF.
func encodedSeeds(f *testing.F) [][]byte {
	img := image.NewRGBA(image.Rect(0, 0, 24, 20))
	for y := 0; y < 20; y++ {
		for x := 0; x < 24; x++ {
			img.Set(x, y, color.RGBA{uint8(x * 10), uint8(y * 12), uint8((x + y) * 7), 255})
		}
	}
	gray := image.NewGray16(image.Rect(0, 0, 9, 13))
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i * 31)
	}
	encoders := []func(io.Writer) error{
		func(w io.Writer) error { return png.Encode(w, img) },
		func(w io.Writer) error { return png.Encode(w, gray) },
		func(w io.Writer) error { return jpeg.Encode(w, img, &jpeg.Options{Quality: 50}) },
		func(w io.Writer) error { return gif.Encode(w, img, &gif.Options{NumColors: 16}) },
		func(w io.Writer) error { return bmp.Encode(w, img) },
		func(w io.Writer) error { return tiff.Encode(w, img, &tiff.Options{Compression: tiff.Deflate}) },
	}
	var seeds [][]byte
	for _, encode := range encoders {
		var buf bytes.Buffer
		if err := encode(&buf); err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, buf.Bytes())
	}
	return seeds
}
