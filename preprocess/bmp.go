package preprocess

import (
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"io"
	"math/bits"
)

// x/image/bmp reads only uncompressed 1-8, 24 and 32-bit BMPs with a 40, 108 or 124-byte
// header, and refuses the rest (16-bit, bitfields, RLE, OS/2 headers, 52/56-byte headers)
// as unsupported. This decoder reads what Pillow reads, the way Pillow reads it: where the
// format is ambiguous (alpha in a 32-bit BI_RGB file, pixels an RLE delta skips) it follows
// Pillow, so that a BMP gives the same pixels here as in Python.

var bmpCodec = codec{"bmp", bmpConfig, decodeBMP}

// bmpMaxSide bounds each side: BMP sizes are 32-bit, and the pixel count of a sane header
// is then checked against MaxPixels before anything is allocated.
const bmpMaxSide = 1 << 24

type bmpHeader struct {
	width, height int
	topDown       bool
	bitCount      int
	compression   uint32
	masks         [4]uint32 // red, green, blue, alpha (0: absent)
	palette       [][3]uint8
	pixels        int // offset of the pixel array
}

const (
	biRGB       = 0
	biRLE8      = 1
	biRLE4      = 2
	biBitfields = 3
	biJPEG      = 4
	biPNG       = 5
)

// bmpMagic recognises a BMP by its "BM" and a known header size, so that text that happens
// to start with "BM" is "not an image" rather than a corrupt BMP; a file too short to hold
// a header size is still a (truncated) BMP.
func bmpMagic(d []byte) bool {
	if len(d) < 2 || string(d[:2]) != "BM" {
		return false
	}
	if len(d) < 18 {
		return true
	}
	switch binary.LittleEndian.Uint32(d[14:]) {
	case 12, 40, 52, 56, 64, 108, 124:
		return true
	}
	return false
}

func bmpConfig(data []byte) (image.Config, error) {
	h, err := parseBMP(data)
	if err != nil {
		return image.Config{}, err
	}
	return image.Config{Width: h.width, Height: h.height}, nil
}

func parseBMP(d []byte) (bmpHeader, error) {
	var h bmpHeader
	if len(d) < 18 {
		return h, io.ErrUnexpectedEOF
	}
	le := binary.LittleEndian
	offset := int64(le.Uint32(d[10:]))
	size := int(le.Uint32(d[14:]))
	switch size {
	case 12, 40, 52, 56, 64, 108, 124:
	default:
		return h, fmt.Errorf("bmp: unknown header size %d", size)
	}
	if len(d) < 14+size {
		return h, io.ErrUnexpectedEOF
	}
	info := d[14 : 14+size]
	colorsUsed := 0
	if size == 12 { // OS/2 1.x (BITMAPCOREHEADER): 16-bit sizes, no compression
		h.width, h.height = int(le.Uint16(info[4:])), int(le.Uint16(info[6:]))
		h.bitCount = int(le.Uint16(info[10:]))
	} else {
		h.width, h.height = int(int32(le.Uint32(info[4:]))), int(int32(le.Uint32(info[8:])))
		if h.height < 0 {
			h.height, h.topDown = -h.height, true
		}
		h.bitCount = int(le.Uint16(info[14:]))
		h.compression = le.Uint32(info[16:])
		colorsUsed = int(le.Uint32(info[32:]))
	}
	if h.width <= 0 || h.height <= 0 || h.width > bmpMaxSide || h.height > bmpMaxSide {
		return h, fmt.Errorf("bmp: invalid size %dx%d", h.width, h.height)
	}
	if err := h.checkCompression(size); err != nil {
		return h, err
	}
	if err := h.readMasks(d, size); err != nil {
		return h, err
	}
	if h.bitCount <= 8 {
		entry := 4
		if size == 12 {
			entry = 3
		}
		if colorsUsed == 0 {
			colorsUsed = 1 << h.bitCount
		}
		if colorsUsed > 65536 {
			return h, fmt.Errorf("bmp: palette of %d colours", colorsUsed)
		}
		// Some writers point the pixel offset at the palette: Pillow skips it then.
		if offset == int64(14+size) {
			offset += int64(entry * colorsUsed)
		}
		start := 14 + size
		n := min(colorsUsed, 256, (len(d)-start)/entry)
		h.palette = make([][3]uint8, n)
		for i := range h.palette {
			p := d[start+i*entry:]
			h.palette[i] = [3]uint8{p[2], p[1], p[0]}
		}
	}
	if offset > int64(len(d)) {
		return h, io.ErrUnexpectedEOF
	}
	h.pixels = int(offset)
	return h, nil
}

func (h *bmpHeader) checkCompression(headerSize int) error {
	switch {
	case h.compression == biJPEG || h.compression == biPNG:
		if headerSize == 64 { // OS/2 2.x uses 4 for RLE24
			return unsupportedError{"OS/2 BMP with RLE24 compression", "convert it to an ordinary BMP or PNG"}
		}
		kind := map[uint32]string{biJPEG: "JPEG (BI_JPEG)", biPNG: "PNG (BI_PNG)"}[h.compression]
		return unsupportedError{"BMP with an embedded " + kind, "printer data: save the picture as an ordinary BMP, JPEG or PNG"}
	case headerSize == 64 && h.compression == biBitfields: // OS/2 2.x uses 3 for Huffman 1D
		return unsupportedError{"OS/2 BMP with Huffman compression", "convert it to an ordinary BMP or PNG"}
	case h.compression == biRLE8 && h.bitCount == 8, h.compression == biRLE4 && h.bitCount == 4:
		return nil
	case h.compression == biRGB || h.compression == biBitfields:
	default:
		return fmt.Errorf("bmp: compression %d with %d bits per pixel", h.compression, h.bitCount)
	}
	switch h.bitCount {
	case 1, 2, 4, 8, 24:
		if h.compression == biBitfields && h.bitCount != 24 {
			return fmt.Errorf("bmp: bitfields with %d bits per pixel", h.bitCount)
		}
	case 16, 32:
	default:
		return unsupportedError{fmt.Sprintf("%d-bit BMP", h.bitCount), "convert it to a 24-bit BMP or PNG"}
	}
	return nil
}

// readMasks sets the channel masks: from the header (or, after a 40-byte header, the three
// words that follow it) for BI_BITFIELDS, else the layout each depth implies.
func (h *bmpHeader) readMasks(d []byte, headerSize int) error {
	switch {
	case h.compression == biBitfields:
		if len(d) < 14+max(headerSize, 52) {
			return io.ErrUnexpectedEOF
		}
		for i := range 3 {
			h.masks[i] = binary.LittleEndian.Uint32(d[54+4*i:])
		}
		if headerSize >= 56 {
			h.masks[3] = binary.LittleEndian.Uint32(d[66:])
		}
		if h.masks == [4]uint32{} && h.bitCount == 32 {
			h.masks = [4]uint32{0xFF0000, 0xFF00, 0xFF, 0xFF000000} // as Pillow reads all-zero masks
		}
		for _, m := range h.masks {
			if m != 0 && bits.OnesCount32(m>>bits.TrailingZeros32(m)) != bits.Len32(m>>bits.TrailingZeros32(m)) {
				return fmt.Errorf("bmp: channel mask %#x is not contiguous", m)
			}
		}
		if h.masks[0]|h.masks[1]|h.masks[2] == 0 {
			return errors.New("bmp: bitfields without colour masks")
		}
	case h.bitCount == 16:
		h.masks = [4]uint32{0x7C00, 0x3E0, 0x1F, 0}
	case h.bitCount == 24, h.bitCount == 32:
		// 32-bit BI_RGB: the fourth byte is padding. Pillow reads it so; browsers too
		// except in icons.
		h.masks = [4]uint32{0xFF0000, 0xFF00, 0xFF, 0}
	}
	return nil
}

func decodeBMP(data []byte) (raster, error) {
	h, err := parseBMP(data)
	if err != nil {
		return raster{}, err
	}
	switch {
	case h.compression == biRLE8 || h.compression == biRLE4:
		return h.paletteRaster(h.decodeRLE(data[h.pixels:])), nil
	case h.bitCount <= 8:
		return h.decodePaletted(data)
	}
	return h.decodeMasked(data)
}

func (h *bmpHeader) stride() int { return (h.width*h.bitCount + 31) / 32 * 4 }

// row returns the file's bytes for image row y (0 at the top), or false if the file ends
// before it.
func (h *bmpHeader) row(data []byte, y int) ([]byte, bool) {
	if !h.topDown {
		y = h.height - 1 - y
	}
	start := h.pixels + y*h.stride()
	n := (h.width*h.bitCount + 7) / 8
	if start+n > len(data) {
		return nil, false
	}
	return data[start : start+n], true
}

func (h *bmpHeader) decodePaletted(data []byte) (raster, error) {
	idx := make([]uint8, h.width*h.height)
	perByte := 8 / h.bitCount
	mask := byte(1<<h.bitCount - 1)
	for y := range h.height {
		row, ok := h.row(data, y)
		if !ok {
			return raster{}, io.ErrUnexpectedEOF
		}
		out := idx[y*h.width:][:h.width]
		for x := range out {
			shift := 8 - h.bitCount*(x%perByte+1)
			out[x] = row[x/perByte] >> shift & mask
		}
	}
	return h.paletteRaster(idx), nil
}

// paletteRaster looks indices up in the palette (indices past its end are black); an
// all-gray palette gives a gray raster.
func (h *bmpHeader) paletteRaster(idx []uint8) raster {
	gray := true
	for _, c := range h.palette {
		gray = gray && c[0] == c[1] && c[1] == c[2]
	}
	var lut [256][3]uint8
	copy(lut[:], h.palette)
	if gray {
		dst := newRaster(h.width, h.height, 1)
		for i, v := range idx {
			dst.pix[i] = lut[v][0]
		}
		return dst
	}
	dst := newRaster(h.width, h.height, 3)
	for i, v := range idx {
		copy(dst.pix[3*i:3*i+3], lut[v][:])
	}
	return dst
}

// decodeMasked reads 16, 24 and 32-bit pixels through the channel masks. A channel of n
// bits scales to 8 as v*255/(2^n-1), truncated, as Pillow scales 5- and 6-bit channels.
func (h *bmpHeader) decodeMasked(data []byte) (raster, error) {
	type channel struct {
		mask  uint32
		shift int
		max   uint64
	}
	var ch [4]channel
	for i, m := range h.masks {
		if m != 0 {
			s := bits.TrailingZeros32(m)
			ch[i] = channel{m, s, uint64(m >> s)}
		}
	}
	scale := func(c channel, v uint32) uint32 {
		if c.mask == 0 {
			return 0
		}
		return uint32(uint64((v&c.mask)>>c.shift) * 255 / c.max)
	}
	bytesPer := h.bitCount / 8
	dst := newRaster(h.width, h.height, 3)
	for y := range h.height {
		row, ok := h.row(data, y)
		if !ok {
			return raster{}, io.ErrUnexpectedEOF
		}
		out := dst.pix[y*h.width*3:][:h.width*3]
		for x := range h.width {
			p := row[x*bytesPer:]
			var v uint32
			for i := range bytesPer {
				v |= uint32(p[i]) << (8 * i)
			}
			r, g, b := scale(ch[0], v), scale(ch[1], v), scale(ch[2], v)
			if ch[3].mask != 0 {
				a := scale(ch[3], v)
				r, g, b = uint32(overWhite(r, a)), uint32(overWhite(g, a)), uint32(overWhite(b, a))
			}
			out[3*x], out[3*x+1], out[3*x+2] = uint8(r), uint8(g), uint8(b)
		}
	}
	return dst, nil
}

// decodeRLE expands RLE8/RLE4 data to palette indices, top row first. Pixels the data
// leaves out (end-of-line, delta, end-of-bitmap, or data ending early) are index 0, as in
// Pillow; runs past the end of a row are cut there, and absolute runs may continue on the
// next row, also as in Pillow.
func (h *bmpHeader) decodeRLE(src []byte) []uint8 {
	w, total := h.width, h.width*h.height
	lines := make([]uint8, total) // in file order: bottom row first unless top-down
	rle4 := h.compression == biRLE4
	pos, x := 0, 0
	put := func(v uint8) {
		if pos < total {
			lines[pos] = v
		}
		pos++
	}
	for i := 0; pos < total && i+1 < len(src); {
		count, value := int(src[i]), src[i+1]
		i += 2
		if count > 0 { // encoded run: one value, or two alternating nibbles
			count = min(count, max(0, w-x))
			for k := range count {
				if rle4 {
					put(value >> (4 * (1 - k%2)) & 0x0F)
				} else {
					put(value)
				}
			}
			x += count
			continue
		}
		switch value {
		case 0: // end of line
			pos += (w - pos%w) % w
			x = 0
		case 1: // end of bitmap
			pos = total
		case 2: // delta: skip right, then down (up the picture for bottom-up files)
			if i+1 >= len(src) {
				pos = total
				break
			}
			pos += int(src[i]) + int(src[i+1])*w
			x = pos % w
			i += 2
		default: // absolute run of value pixels, padded to a 16-bit word
			n := int(value)
			size := n
			if rle4 {
				size = (n + 1) / 2
			}
			if i+size > len(src) {
				pos = total
				break
			}
			for k := range n {
				if rle4 {
					put(src[i+k/2] >> (4 * (1 - k%2)) & 0x0F)
				} else {
					put(src[i+k])
				}
			}
			x += n
			i += size + size%2
		}
	}
	if h.topDown {
		return lines
	}
	idx := make([]uint8, total)
	for y := range h.height {
		copy(idx[y*w:][:w], lines[(h.height-1-y)*w:][:w])
	}
	return idx
}
