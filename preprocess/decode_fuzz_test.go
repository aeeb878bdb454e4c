package preprocess

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Fuzz targets for the decoders written in this package: bmp.go, tiff.go, webp.go's
// animation path, gif.go's canvas, jpeg.go's variant check and ycbcr.go's conversions
// (reached through JPEG and WebP). Whatever the bytes, decoding must end in an error that
// names the file on one line, or in a raster of the size the header declared; never in a
// panic (decodeRaster turns one into a "decoder crashed" error, which fails here), and
// never in memory beyond what the pixel limit allows. Seeds: the parity fixtures of the
// format, and hand-made edge cases in testdata/fuzz/<target>/ (written by
// testdata/fuzz/seeds.py). Run one with e.g. `go test ./preprocess -run X -fuzz FuzzBMPDecoder
// -fuzzminimizetime 2s`: minimizing a new 18 KB WebP input by default takes minutes.

// fuzzMaxPixels keeps a fuzzed header from asking for more than a few megabytes.
const fuzzMaxPixels = 1 << 20

func fuzzDecoder(f *testing.F, fixturePrefix string) {
	paths, err := filepath.Glob(filepath.Join(parityDir, fixturePrefix+"*"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no parity fixtures %s* to seed from (%v)", fixturePrefix, err)
	}
	for _, p := range paths {
		if strings.HasSuffix(p, ".gz") {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := decodeRaster("fuzzed", data, fuzzMaxPixels)
		if err != nil {
			msg := err.Error()
			if strings.Contains(msg, "decoder crashed") {
				t.Fatal(msg)
			}
			if !strings.HasPrefix(msg, "fuzzed: ") || strings.Contains(msg, "\n") {
				t.Fatalf("error is not one line naming the file: %q", msg)
			}
			return
		}
		if img.w <= 0 || img.h <= 0 || img.w*img.h > fuzzMaxPixels || len(img.pix) != img.w*img.h*img.ch {
			t.Fatalf("raster %dx%dx%d with %d bytes", img.w, img.h, img.ch, len(img.pix))
		}
	})
}

func FuzzBMPDecoder(f *testing.F)  { fuzzDecoder(f, "bmp-") }
func FuzzTIFFDecoder(f *testing.F) { fuzzDecoder(f, "tiff-") }
func FuzzWebPDecoder(f *testing.F) { fuzzDecoder(f, "webp-") }
func FuzzGIFDecoder(f *testing.F)  { fuzzDecoder(f, "gif-") }
func FuzzJPEGDecoder(f *testing.F) { fuzzDecoder(f, "jpeg-") }
