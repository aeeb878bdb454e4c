package preprocess

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/png"
	"io"
	"math"
	"strconv"
	"strings"
)

// DefaultMaxPixels is the decompression-bomb limit: larger declared images are refused
// from their header, before any pixel memory is allocated.
const DefaultMaxPixels = 50_000_000

// A codec reads one container format: its header, for the bomb check before any pixel
// memory is allocated, and its pixels as an opaque raster.
type codec struct {
	format string // as messages and exifOrientation name it
	config func(data []byte) (image.Config, error)
	decode func(data []byte) (raster, error)
}

// sniffCodec picks the codec from the content's magic bytes, never the file name. The
// table is explicit rather than image.Decode's registry so that which decoder reads a
// format cannot depend on which packages happen to be linked in.
func sniffCodec(data []byte) *codec {
	has := func(magic string) bool { return bytes.HasPrefix(data, []byte(magic)) }
	switch {
	case has("\xff\xd8"):
		return &jpegCodec
	case has("\x89PNG\r\n\x1a\n"):
		return &pngCodec
	case has("GIF87a"), has("GIF89a"):
		return &gifCodec
	case bmpMagic(data):
		return &bmpCodec
	case has("II*\x00"), has("MM\x00*"), has("II+\x00"), has("MM\x00+"):
		return &tiffCodec
	case len(data) >= 12 && has("RIFF") && string(data[8:12]) == "WEBP":
		return &webpCodec
	}
	return nil
}

var (
	jpegCodec = codec{"jpeg", jpegConfig, decodeJPEG}
	pngCodec  = codec{"png", stdConfig(png.DecodeConfig), stdDecode(png.Decode)}
	gifCodec  = codec{"gif", stdConfig(gif.DecodeConfig), decodeGIF}
	webpCodec = codec{"webp", webpConfig, decodeWebP}
)

func stdConfig(f func(io.Reader) (image.Config, error)) func([]byte) (image.Config, error) {
	return func(data []byte) (image.Config, error) { return f(bytes.NewReader(data)) }
}

func stdDecode(f func(io.Reader) (image.Image, error)) func([]byte) (raster, error) {
	return func(data []byte) (raster, error) {
		img, err := f(bytes.NewReader(data))
		if err != nil {
			return raster{}, err
		}
		return toRaster(img), nil
	}
}

// decodeRaster decodes an image of any supported format (sniffed from the content, never
// the name), refuses it if its header declares more than maxPixels, applies its EXIF
// orientation and returns it opaque: gray stays one channel, everything else becomes RGB
// with alpha composited on white. GIF and animated WebP give their first frame.
func decodeRaster(name string, data []byte, maxPixels int64) (img raster, err error) {
	if len(data) == 0 {
		return raster{}, fmt.Errorf("%s: empty file (0 bytes)", name)
	}
	// Decoders have panicked on hostile input before: a panic must become an error naming
	// the file, not kill a batch or the server.
	defer func() {
		if r := recover(); r != nil {
			img, err = raster{}, fmt.Errorf("%s: decoder crashed on malformed data: %v", name, r)
		}
	}()
	c := sniffCodec(data)
	if c == nil {
		return raster{}, decodeError(name, data, "", image.ErrFormat)
	}
	cfg, err := c.config(data)
	if err != nil {
		return raster{}, decodeError(name, data, c.format, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return raster{}, fmt.Errorf("%s: %s declares an empty %dx%d image", name, c.format, cfg.Width, cfg.Height)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); maxPixels > 0 && px > maxPixels {
		return raster{}, fmt.Errorf("%s: %dx%d = %s megapixels exceeds the %s megapixel limit (possible decompression bomb)",
			name, cfg.Width, cfg.Height, megapixels(px), megapixels(maxPixels))
	}
	src, err := c.decode(data)
	if err != nil {
		return raster{}, decodeError(name, data, c.format, err)
	}
	if src.w != cfg.Width || src.h != cfg.Height {
		// Every later step trusts the header's size: a decoder disagreeing is a bug or a
		// crafted file, never a picture to pass on.
		return raster{}, fmt.Errorf("%s: corrupt %s file: header says %dx%d, pixels are %dx%d", name, c.format, cfg.Width, cfg.Height, src.w, src.h)
	}
	return src.orient(exifOrientation(c.format, data)), nil
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
	var unsupported unsupportedError
	switch {
	case errors.As(err, &unsupported):
		return fmt.Errorf("%s: %s", name, unsupported.Error())
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

// unsupportedError is a deliberate refusal: a valid file of a variant the README's decode
// parity table lists as unsupported. Its message names the variant and what to do.
type unsupportedError struct {
	variant string // e.g. "arithmetic-coded JPEG (SOF9)"
	advice  string // e.g. "re-encode it as baseline JPEG"
}

func (e unsupportedError) Error() string {
	return fmt.Sprintf("%s is not supported (%s)", e.variant, e.advice)
}
