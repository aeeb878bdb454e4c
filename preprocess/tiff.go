package preprocess

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"math/bits"

	"golang.org/x/image/ccitt"
	"golang.org/x/image/tiff/lzw"
)

// x/image/tiff lacks JPEG compression, CMYK, 2- and 4-bit samples, gray with alpha and
// BigTIFF, reads planar (one plane after another) files as if they were interleaved, with
// wrong pixels and no error, and inverts CCITT bilevel images relative to libtiff. So TIFF
// is read here: the file structure, the sample layouts and the colour models, with the
// decompressors coming from libraries (x/image's LZW and CCITT, compress/zlib,
// image/jpeg); PackBits is ten lines. Pillow (libtiff) is the reference for the pixels.

var tiffCodec = codec{"tiff", tiffConfig, decodeTIFF}

const tiffMaxSide = 1 << 24

// TIFF tags this decoder reads.
const (
	tagImageWidth      = 256
	tagImageLength     = 257
	tagBitsPerSample   = 258
	tagCompression     = 259
	tagPhotometric     = 262
	tagFillOrder       = 266
	tagStripOffsets    = 273
	tagSamplesPerPixel = 277
	tagRowsPerStrip    = 278
	tagStripByteCounts = 279
	tagPlanarConfig    = 284
	tagPredictor       = 317
	tagColorMap        = 320
	tagTileWidth       = 322
	tagTileLength      = 323
	tagTileOffsets     = 324
	tagTileByteCounts  = 325
	tagExtraSamples    = 338
	tagSampleFormat    = 339
	tagJPEGTables      = 347
)

var tiffTagNames = map[uint16]string{
	tagImageWidth: "ImageWidth", tagImageLength: "ImageLength", tagPhotometric: "PhotometricInterpretation",
	tagStripOffsets: "StripOffsets", tagStripByteCounts: "StripByteCounts", tagColorMap: "ColorMap",
	tagTileLength: "TileLength", tagTileOffsets: "TileOffsets", tagTileByteCounts: "TileByteCounts",
}

// Photometric interpretations.
const (
	photoWhiteIsZero = 0
	photoBlackIsZero = 1
	photoRGB         = 2
	photoPalette     = 3
	photoCMYK        = 5
	photoYCbCr       = 6
)

// Compressions.
const (
	tiffNone       = 1
	tiffCCITTRLE   = 2
	tiffGroup3     = 3
	tiffGroup4     = 4
	tiffLZW        = 5
	tiffOldJPEG    = 6
	tiffJPEG       = 7
	tiffDeflate    = 8
	tiffPackBits   = 32773
	tiffDeflateOld = 32946
	tiffLZMA       = 34925
	tiffZstd       = 50000
	tiffWebP       = 50001
)

type tiffEntry struct {
	typ   uint16
	count uint64
	value []byte // the value field itself (4 or 8 bytes): the data, or its offset
}

type tiffImage struct {
	order         binary.ByteOrder
	width, height int
	bitsPerSample int
	samples       int // per pixel
	base          int // samples of the colour model, before extra ones
	alpha         int // 0 none, 1 associated (premultiplied), 2 unassociated
	compression   int
	photometric   int
	planar        int
	predictor     int
	fillOrder     int
	blockW        int // strips are blocks as wide as the image
	blockH        int
	tiled         bool
	offsets       []uint64
	counts        []uint64
	colormap      []uint64
	jpegTables    []byte
}

func tiffConfig(data []byte) (image.Config, error) {
	t, err := parseTIFF(data)
	if err != nil {
		return image.Config{}, err
	}
	return image.Config{Width: t.width, Height: t.height}, nil
}

// parseTIFF reads the first IFD and checks everything decoding relies on.
func parseTIFF(d []byte) (*tiffImage, error) {
	if len(d) < 16 {
		return nil, io.ErrUnexpectedEOF
	}
	t := &tiffImage{order: binary.LittleEndian}
	if d[0] == 'M' {
		t.order = binary.BigEndian
	}
	big := t.order.Uint16(d[2:]) == 43
	var ifd uint64
	// Classic TIFF: a 2-byte entry count, 12-byte entries with a 4-byte value count and
	// value field; BigTIFF: 8, 20, 8 and 8.
	entrySize, countSize, valueSize := 12, 2, 4
	if big {
		if t.order.Uint16(d[4:]) != 8 {
			return nil, errors.New("tiff: BigTIFF with offsets other than 8 bytes")
		}
		ifd = t.order.Uint64(d[8:])
		entrySize, countSize, valueSize = 20, 8, 8
	} else {
		ifd = uint64(t.order.Uint32(d[4:]))
	}
	if ifd > uint64(len(d)-countSize) {
		return nil, io.ErrUnexpectedEOF
	}
	var n uint64
	if big {
		n = t.order.Uint64(d[ifd:])
	} else {
		n = uint64(t.order.Uint16(d[ifd:]))
	}
	start := ifd + uint64(countSize)
	if n > (uint64(len(d))-start)/uint64(entrySize) {
		return nil, io.ErrUnexpectedEOF
	}
	entries := map[uint16]tiffEntry{}
	for i := range n {
		e := d[start+i*uint64(entrySize):]
		tag := t.order.Uint16(e)
		te := tiffEntry{typ: t.order.Uint16(e[2:]), value: e[4+valueSize : 4+2*valueSize]}
		if big {
			te.count = t.order.Uint64(e[4:])
		} else {
			te.count = uint64(t.order.Uint32(e[4:]))
		}
		entries[tag] = te
	}
	vals := func(tag uint16, def ...uint64) ([]uint64, error) {
		e, ok := entries[tag]
		if !ok {
			if def == nil {
				return nil, fmt.Errorf("tiff: missing tag %d (%s)", tag, tiffTagNames[tag])
			}
			return def, nil
		}
		return t.values(d, e, valueSize)
	}
	first := func(tag uint16, def ...uint64) (int, error) {
		v, err := vals(tag, def...)
		if err != nil {
			return 0, err
		}
		if len(v) == 0 || v[0] > tiffMaxSide {
			return 0, fmt.Errorf("tiff: tag %d has no usable value", tag)
		}
		return int(v[0]), nil
	}
	var err error
	must := func(v int, e error) int {
		if err == nil {
			err = e
		}
		return v
	}
	t.width = must(first(tagImageWidth))
	t.height = must(first(tagImageLength))
	t.compression = must(first(tagCompression, tiffNone))
	t.photometric = must(first(tagPhotometric))
	t.samples = must(first(tagSamplesPerPixel, 1))
	t.planar = must(first(tagPlanarConfig, 1))
	t.predictor = must(first(tagPredictor, 1))
	t.fillOrder = must(first(tagFillOrder, 1))
	sampleFormat := must(first(tagSampleFormat, 1))
	if err != nil {
		return nil, err
	}
	if t.width <= 0 || t.height <= 0 {
		return nil, fmt.Errorf("tiff: invalid size %dx%d", t.width, t.height)
	}
	bps, err := vals(tagBitsPerSample, 1)
	if err != nil {
		return nil, err
	}
	if sampleFormat != 1 {
		return nil, unsupportedError{"TIFF with signed or floating-point samples", "convert it to 8-bit unsigned samples"}
	}
	if err := t.checkLayout(bps); err != nil {
		return nil, err
	}
	if t.photometric == photoPalette {
		if t.colormap, err = vals(tagColorMap); err != nil {
			return nil, err
		}
		if len(t.colormap) < 3<<t.bitsPerSample {
			return nil, fmt.Errorf("tiff: colour map of %d values for %d-bit indices", len(t.colormap), t.bitsPerSample)
		}
	}
	extra, err := vals(tagExtraSamples, 2) // alpha when the tag is missing, as in Pillow
	if err != nil {
		return nil, err
	}
	if t.samples > t.base && len(extra) > 0 && extra[0] != 0 {
		t.alpha = 2
		if extra[0] == 1 {
			t.alpha = 1
		}
	}
	if err := t.readBlocks(vals, first); err != nil {
		return nil, err
	}
	if t.compression == tiffJPEG {
		if e, ok := entries[tagJPEGTables]; ok {
			tables, err := t.values(d, e, valueSize)
			if err != nil {
				return nil, err
			}
			t.jpegTables = make([]byte, len(tables))
			for i, v := range tables {
				t.jpegTables[i] = byte(v)
			}
		}
	}
	return t, nil
}

// values reads an integer-typed entry's values, checking they lie inside the file before
// allocating for them.
func (t *tiffImage) values(d []byte, e tiffEntry, valueSize int) ([]uint64, error) {
	size := map[uint16]uint64{1: 1, 2: 1, 3: 2, 4: 4, 6: 1, 7: 1, 8: 2, 9: 4, 13: 4, 16: 8, 17: 8, 18: 8}[e.typ]
	if size == 0 {
		return nil, fmt.Errorf("tiff: unexpected field type %d", e.typ)
	}
	if e.count > uint64(len(d))/size {
		return nil, io.ErrUnexpectedEOF
	}
	data := e.value
	if total := e.count * size; total > uint64(valueSize) {
		var off uint64
		if valueSize == 8 {
			off = t.order.Uint64(e.value)
		} else {
			off = uint64(t.order.Uint32(e.value))
		}
		if off > uint64(len(d)) || total > uint64(len(d))-off {
			return nil, io.ErrUnexpectedEOF
		}
		data = d[off : off+total]
	}
	out := make([]uint64, e.count)
	for i := range out {
		p := data[uint64(i)*size:]
		switch size {
		case 1:
			out[i] = uint64(p[0])
		case 2:
			out[i] = uint64(t.order.Uint16(p))
		case 4:
			out[i] = uint64(t.order.Uint32(p))
		default:
			out[i] = t.order.Uint64(p)
		}
	}
	return out, nil
}

// checkLayout checks the sample layout and refuses, by name, what is not supported.
func (t *tiffImage) checkLayout(bps []uint64) error {
	for _, b := range bps {
		if b != bps[0] {
			return unsupportedError{"TIFF with samples of different sizes", "convert it to 8 bits per sample"}
		}
	}
	t.bitsPerSample = int(bps[0])
	switch t.bitsPerSample {
	case 1, 2, 4, 8, 16:
	default:
		return unsupportedError{fmt.Sprintf("TIFF with %d-bit samples", t.bitsPerSample), "convert it to 8 or 16 bits per sample"}
	}
	switch t.photometric {
	case photoWhiteIsZero, photoBlackIsZero, photoPalette:
		t.base = 1
	case photoRGB:
		t.base = 3
	case photoCMYK:
		t.base = 4
	case photoYCbCr:
		t.base = 3
		if t.compression != tiffJPEG {
			return unsupportedError{"TIFF with Y'CbCr samples not JPEG-compressed", "re-save it as RGB"}
		}
	default:
		return unsupportedError{fmt.Sprintf("TIFF with photometric interpretation %d", t.photometric), "convert it to RGB"}
	}
	if t.samples < t.base || t.samples > 8 {
		return fmt.Errorf("tiff: %d samples per pixel for photometric interpretation %d", t.samples, t.photometric)
	}
	if t.photometric == photoPalette && t.bitsPerSample > 8 {
		return fmt.Errorf("tiff: %d-bit palette indices", t.bitsPerSample)
	}
	if t.planar != 1 && t.planar != 2 {
		return fmt.Errorf("tiff: planar configuration %d", t.planar)
	}
	if t.fillOrder != 1 && t.fillOrder != 2 {
		return fmt.Errorf("tiff: fill order %d", t.fillOrder)
	}
	switch t.predictor {
	case 1:
	case 2:
		if t.bitsPerSample < 8 {
			return fmt.Errorf("tiff: horizontal predictor with %d-bit samples", t.bitsPerSample)
		}
	default:
		return unsupportedError{fmt.Sprintf("TIFF with predictor %d", t.predictor), "re-save it without a floating-point predictor"}
	}
	switch t.compression {
	case tiffNone, tiffLZW, tiffDeflate, tiffDeflateOld, tiffPackBits:
	case tiffGroup3, tiffGroup4:
		if t.bitsPerSample != 1 || t.samples != 1 {
			return fmt.Errorf("tiff: CCITT compression of %d %d-bit samples", t.samples, t.bitsPerSample)
		}
	case tiffJPEG:
		if t.bitsPerSample != 8 || t.planar != 1 || t.samples != t.base ||
			(t.photometric != photoBlackIsZero && t.photometric != photoRGB && t.photometric != photoYCbCr) {
			return unsupportedError{"JPEG-compressed TIFF other than 8-bit gray, RGB or Y'CbCr", "re-save it with LZW or Deflate"}
		}
	case tiffCCITTRLE:
		return unsupportedError{"TIFF with CCITT modified Huffman compression (2)", "re-save it with CCITT Group 4"}
	case tiffOldJPEG:
		return unsupportedError{"TIFF with old-style JPEG compression (6)", "re-save it with JPEG (7), LZW or Deflate"}
	case tiffLZMA:
		return unsupportedError{"TIFF with LZMA compression", "re-save it with LZW or Deflate"}
	case tiffZstd:
		return unsupportedError{"TIFF with Zstandard compression", "re-save it with LZW or Deflate"}
	case tiffWebP:
		return unsupportedError{"TIFF with WebP compression", "re-save it with LZW or Deflate"}
	default:
		return unsupportedError{fmt.Sprintf("TIFF with compression %d", t.compression), "re-save it with LZW or Deflate"}
	}
	return nil
}

// readBlocks reads the strip or tile layout and its offsets.
func (t *tiffImage) readBlocks(vals func(uint16, ...uint64) ([]uint64, error), first func(uint16, ...uint64) (int, error)) error {
	offsetTag, countTag := uint16(tagStripOffsets), uint16(tagStripByteCounts)
	t.blockW, t.blockH = t.width, t.height
	if tw, err := first(tagTileWidth, 0); err != nil {
		return err
	} else if tw > 0 {
		th, err := first(tagTileLength)
		if err != nil || th <= 0 {
			return errors.New("tiff: tile width without a tile length")
		}
		// Tiles may overhang the image (a 256x256 tile on a small picture is ordinary),
		// but one far larger than the image is refused before a buffer is sized by it.
		if (tw > t.width+16 || th > t.height+16) && (tw > 1024 || th > 1024) {
			return fmt.Errorf("tiff: %dx%d tiles on a %dx%d image", tw, th, t.width, t.height)
		}
		t.tiled, t.blockW, t.blockH = true, tw, th
		offsetTag, countTag = tagTileOffsets, tagTileByteCounts
	} else if rps, err := vals(tagRowsPerStrip, uint64(t.height)); err != nil {
		return err
	} else if len(rps) > 0 && rps[0] > 0 && rps[0] < uint64(t.height) {
		t.blockH = int(rps[0])
	}
	var err error
	if t.offsets, err = vals(offsetTag); err != nil {
		return err
	}
	if t.counts, err = vals(countTag); err != nil {
		return err
	}
	if need := t.blocks(); len(t.offsets) < need || len(t.counts) < need {
		return fmt.Errorf("tiff: %d block offsets and %d sizes for %d blocks", len(t.offsets), len(t.counts), need)
	}
	return nil
}

func (t *tiffImage) across() int { return (t.width + t.blockW - 1) / t.blockW }
func (t *tiffImage) down() int   { return (t.height + t.blockH - 1) / t.blockH }

func (t *tiffImage) planes() int {
	if t.planar == 2 {
		return t.samples
	}
	return 1
}

func (t *tiffImage) blocks() int { return t.across() * t.down() * t.planes() }

func decodeTIFF(data []byte) (raster, error) {
	t, err := parseTIFF(data)
	if err != nil {
		return raster{}, err
	}
	// One 8-bit value per sample: 16-bit samples keep their high byte, sub-byte ones their
	// value, scaled once the colour model is known.
	samples := make([]uint8, t.width*t.height*t.samples)
	perPlane := t.across() * t.down()
	for i := range t.blocks() {
		plane, b := i/perPlane, i%perPlane
		x0, y0 := b%t.across()*t.blockW, b/t.across()*t.blockH
		cols, rows := min(t.blockW, t.width-x0), min(t.blockH, t.height-y0)
		off, n := t.offsets[i], t.counts[i]
		if off > uint64(len(data)) || n > uint64(len(data))-off {
			return raster{}, io.ErrUnexpectedEOF
		}
		raw := data[off : off+n]
		if t.compression == tiffJPEG {
			err = t.jpegBlock(samples, raw, x0, y0, cols, rows)
		} else {
			err = t.block(samples, raw, plane, x0, y0, cols, rows)
		}
		if err != nil {
			return raster{}, fmt.Errorf("block %d: %w", i, err)
		}
	}
	return t.toRaster(samples), nil
}

// block decompresses one strip or tile (of one plane, for planar files) into samples.
func (t *tiffImage) block(samples, raw []byte, plane, x0, y0, cols, rows int) error {
	n := t.samples
	if t.planar == 2 {
		n = 1
	}
	rowBytes := (t.blockW*n*t.bitsPerSample + 7) / 8
	buf := make([]byte, rows*rowBytes) // only the rows inside the image: overhang is never read
	if t.fillOrder == 2 && t.compression != tiffGroup3 && t.compression != tiffGroup4 {
		// Bits stored least significant first: libtiff reverses them before decoding.
		rev := make([]byte, len(raw))
		for i, c := range raw {
			rev[i] = bits.Reverse8(c)
		}
		raw = rev
	}
	var r io.Reader
	switch t.compression {
	case tiffNone:
		r = bytes.NewReader(raw)
	case tiffLZW:
		lr := lzw.NewReader(bytes.NewReader(raw), lzw.MSB, 8)
		defer lr.Close()
		r = lr
	case tiffDeflate, tiffDeflateOld:
		zr, err := zlib.NewReader(bytes.NewReader(raw))
		if err != nil {
			return err
		}
		defer zr.Close()
		r = zr
	case tiffPackBits:
		r = &packBitsReader{src: raw}
	case tiffGroup3, tiffGroup4:
		order, sub := ccitt.MSB, ccitt.Group3
		if t.fillOrder == 2 {
			order = ccitt.LSB
		}
		if t.compression == tiffGroup4 {
			sub = ccitt.Group4
		}
		// Invert: white runs become 0 bits whatever the photometric interpretation, as
		// libtiff decodes them; the interpretation then says what a 0 bit looks like.
		r = ccitt.NewReader(bytes.NewReader(raw), order, sub, t.blockW, rows, &ccitt.Options{Invert: true})
	}
	if _, err := io.ReadFull(r, buf); err != nil {
		return err
	}
	for y := range rows {
		row := buf[y*rowBytes:][:rowBytes]
		if t.predictor == 2 {
			t.undoPredictor(row, n)
		}
		out := samples[((y0+y)*t.width+x0)*t.samples:]
		for x := range cols {
			for s := range n {
				dst := x*t.samples + s
				if t.planar == 2 {
					dst = x*t.samples + plane
				}
				out[dst] = t.sample(row, x*n+s)
			}
		}
	}
	return nil
}

// sample is the i-th sample of a row as 8 bits (the high byte of 16-bit samples).
func (t *tiffImage) sample(row []byte, i int) uint8 {
	switch t.bitsPerSample {
	case 8:
		return row[i]
	case 16:
		if t.order == binary.ByteOrder(binary.BigEndian) {
			return row[2*i]
		}
		return row[2*i+1]
	}
	bit := i * t.bitsPerSample
	return row[bit/8] >> (8 - t.bitsPerSample - bit%8) & (1<<t.bitsPerSample - 1)
}

// undoPredictor undoes horizontal differencing: each sample was stored as its difference
// from the same sample of the pixel to its left.
func (t *tiffImage) undoPredictor(row []byte, n int) {
	if t.bitsPerSample == 8 {
		for i := n; i < len(row); i++ {
			row[i] += row[i-n]
		}
		return
	}
	for i := 2 * n; i+1 < len(row); i += 2 {
		v := t.order.Uint16(row[i:]) + t.order.Uint16(row[i-2*n:])
		t.order.PutUint16(row[i:], v)
	}
}

// adobeRGB is an APP14 segment saying the components are R, G, B (transform 0): without
// it image/jpeg would take three components for Y'CbCr.
var adobeRGB = []byte{0xFF, 0xEE, 0, 14, 'A', 'd', 'o', 'b', 'e', 0, 100, 0, 0, 0, 0, 0}

// jpegBlock decodes a JPEG-compressed strip or tile: an abbreviated JPEG stream whose
// tables are in the JPEGTables tag.
func (t *tiffImage) jpegBlock(samples, raw []byte, x0, y0, cols, rows int) error {
	stream := []byte{0xFF, 0xD8}
	if t.photometric == photoRGB {
		stream = append(stream, adobeRGB...)
	}
	tables := bytes.TrimSuffix(bytes.TrimPrefix(t.jpegTables, []byte{0xFF, 0xD8}), []byte{0xFF, 0xD9})
	stream = append(stream, tables...)
	stream = append(stream, bytes.TrimPrefix(raw, []byte{0xFF, 0xD8})...)
	if err := jpegVariant(stream); err != nil {
		return err
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(stream))
	if err != nil {
		return err
	}
	// The block's own header must fit the block before image/jpeg allocates for it.
	if cfg.Width < cols || cfg.Height < rows || cfg.Width > t.blockW || cfg.Height > t.blockH {
		return fmt.Errorf("tiff: JPEG block is %dx%d, the block %dx%d", cfg.Width, cfg.Height, t.blockW, t.blockH)
	}
	img, err := jpeg.Decode(bytes.NewReader(stream))
	if err != nil {
		return err
	}
	r := jpegRaster(img)
	if r.ch != t.samples {
		return fmt.Errorf("tiff: JPEG block has %d channels, the image %d samples", r.ch, t.samples)
	}
	for y := range rows {
		copy(samples[((y0+y)*t.width+x0)*t.samples:][:cols*t.samples], r.pix[y*r.w*r.ch:])
	}
	return nil
}

// toRaster applies the colour model: gray (composited on white if it has alpha) stays one
// channel, the rest becomes RGB.
func (t *tiffImage) toRaster(samples []uint8) raster {
	n, w, h := t.samples, t.width, t.height
	scale := func(v uint8) uint8 { return v }
	if t.bitsPerSample < 8 {
		top := uint32(1)<<t.bitsPerSample - 1
		scale = func(v uint8) uint8 { return uint8(uint32(v) * 255 / top) }
	}
	composite := func(v, a uint8) uint8 {
		switch t.alpha {
		case 1: // premultiplied: add the uncovered share of white
			return uint8(min(255, uint32(v)+255-uint32(a)))
		case 2:
			return overWhite(uint32(v), uint32(a))
		}
		return v
	}
	switch t.photometric {
	case photoWhiteIsZero, photoBlackIsZero:
		dst := newRaster(w, h, 1)
		for i := range w * h {
			v := scale(samples[i*n])
			if t.photometric == photoWhiteIsZero {
				v = 255 - v
			}
			if t.alpha != 0 {
				v = composite(v, scale(samples[i*n+1]))
			}
			dst.pix[i] = v
		}
		return dst
	case photoPalette:
		var lut [256][3]uint8
		size := 1 << t.bitsPerSample
		for i := range size {
			for c := range 3 {
				lut[i][c] = uint8(t.colormap[c*size+i] >> 8)
			}
		}
		dst := newRaster(w, h, 3)
		for i := range w * h {
			c := lut[samples[i*n]]
			if t.alpha != 0 {
				a := scale(samples[i*n+1])
				c = [3]uint8{composite(c[0], a), composite(c[1], a), composite(c[2], a)}
			}
			copy(dst.pix[3*i:3*i+3], c[:])
		}
		return dst
	case photoCMYK:
		dst := newRaster(w, h, 3)
		cmykRow(dst.pix, samples, n)
		return dst
	}
	dst := newRaster(w, h, 3) // RGB, and Y'CbCr already converted by the JPEG decoder
	for i := range w * h {
		p := samples[i*n:]
		for c := range 3 {
			v := scale(p[c])
			if t.alpha != 0 {
				v = composite(v, scale(p[3]))
			}
			dst.pix[3*i+c] = v
		}
	}
	return dst
}

// packBitsReader expands PackBits (Macintosh run-length) data: a header byte n says copy
// the next n+1 bytes (n < 128) or repeat the next byte 257-n times (n > 128).
type packBitsReader struct {
	src []byte
	run int  // bytes left in the current run
	lit bool // the run copies literal bytes rather than repeating one
	byt byte
}

func (p *packBitsReader) Read(out []byte) (int, error) {
	n := 0
	for n < len(out) {
		if p.run == 0 {
			if len(p.src) == 0 {
				if n == 0 {
					return 0, io.EOF
				}
				return n, nil
			}
			h := p.src[0]
			p.src = p.src[1:]
			switch {
			case h < 128:
				p.run, p.lit = int(h)+1, true
			case h > 128:
				if len(p.src) == 0 {
					return n, io.ErrUnexpectedEOF
				}
				p.run, p.lit, p.byt = 257-int(h), false, p.src[0]
				p.src = p.src[1:]
			}
			continue // 128 is a no-op
		}
		if p.lit {
			if len(p.src) == 0 {
				return n, io.ErrUnexpectedEOF
			}
			p.byt, p.src = p.src[0], p.src[1:]
		}
		out[n] = p.byt
		n++
		p.run--
	}
	return n, nil
}
