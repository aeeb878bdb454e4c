package preprocess

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // registered for image.Decode: the registry sniffs magic bytes
	_ "image/jpeg"
	_ "image/png"
	"io"
	"math"
	"strconv"
	"strings"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/tiff"
	_ "golang.org/x/image/webp"
)

// DefaultMaxPixels is the decompression-bomb limit: larger declared images are refused
// from their header, before any pixel memory is allocated.
const DefaultMaxPixels = 50_000_000

// decodeRaster decodes an image of any registered format (sniffed from the content,
// never the name), refuses it if its header declares more than maxPixels, applies its
// EXIF orientation and returns it opaque: gray stays one channel, everything else becomes
// RGB with alpha composited on white. GIF gives its first frame.
func decodeRaster(name string, data []byte, maxPixels int64) (img raster, err error) {
	if len(data) == 0 {
		return raster{}, fmt.Errorf("%s: empty file (0 bytes)", name)
	}
	// Third-party decoders (bmp, tiff, webp) have panicked on hostile input before: a
	// panic must become an error naming the file, not kill a batch or the server.
	defer func() {
		if r := recover(); r != nil {
			img, err = raster{}, fmt.Errorf("%s: decoder crashed on malformed data: %v", name, r)
		}
	}()
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return raster{}, decodeError(name, data, "", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return raster{}, fmt.Errorf("%s: %s declares an empty %dx%d image", name, format, cfg.Width, cfg.Height)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); maxPixels > 0 && px > maxPixels {
		return raster{}, fmt.Errorf("%s: %dx%d = %s megapixels exceeds the %s megapixel limit (possible decompression bomb)",
			name, cfg.Width, cfg.Height, megapixels(px), megapixels(maxPixels))
	}
	src, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return raster{}, decodeError(name, data, format, err)
	}
	return toRaster(src).orient(exifOrientation(format, data)), nil
}

// decodeRGBA is decodeRaster as an *image.RGBA, for callers that draw on the image.
func decodeRGBA(name string, data []byte, maxPixels int64) (*image.RGBA, error) {
	r, err := decodeRaster(name, data, maxPixels)
	if err != nil {
		return nil, err
	}
	return r.rgba(), nil
}

// decodeError turns a decoder's terse error into one that names the file and the likely reason.
func decodeError(name string, data []byte, format string, err error) error {
	switch {
	case errors.Is(err, image.ErrFormat):
		return fmt.Errorf("%s: not an image (unrecognised content %q; supported: JPEG, PNG, GIF, BMP, TIFF, WebP)",
			name, printablePrefix(data, 8))
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		// Go's JPEG decoder reports running out of data inside the entropy-coded scan as
		// "short Huffman data"; a file without its end-of-image marker was cut.
		format == "jpeg" && !bytes.HasSuffix(bytes.TrimRight(data, "\x00"), []byte{0xFF, 0xD9}):
		return fmt.Errorf("%s: truncated %s file (data ends early after %d bytes)", name, orUnknown(format), len(data))
	default:
		return fmt.Errorf("%s: corrupt %s file: %w", name, orUnknown(format), err)
	}
}

func orUnknown(format string) string {
	if format == "" {
		return "image"
	}
	return format
}

func printablePrefix(data []byte, n int) string {
	if len(data) > n {
		data = data[:n]
	}
	return string(bytes.ToValidUTF8(data, []byte("?")))
}

// megapixels formats a pixel count with three significant digits, no exponent.
func megapixels(px int64) string {
	mp := float64(px) / 1e6
	decimals := max(0, 2-int(math.Floor(math.Log10(mp))))
	s := strconv.FormatFloat(mp, 'f', decimals, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
