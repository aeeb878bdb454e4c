package preprocess

import (
	"image"
	"image/color"
	"image/draw"
)

// raster is an opaque 8-bit image packed without padding: ch is 1 (gray) or 3 (RGB).
// Gray photos (most of faces4) stay one channel through detection and resizing, a third
// of the work, and become RGB only in the final crop.
type raster struct {
	pix  []uint8
	w, h int
	ch   int
}

func newRaster(w, h, ch int) raster {
	return raster{pix: make([]uint8, w*h*ch), w: w, h: h, ch: ch}
}

func (r raster) bounds() image.Rectangle { return image.Rect(0, 0, r.w, r.h) }

// luma returns the BT.601 luma of pixel i (its index in pixels) in 16.16 fixed point.
func (r raster) luma(i int) uint32 {
	if r.ch == 1 {
		return uint32(r.pix[i]) << 16
	}
	p := r.pix[3*i : 3*i+3 : 3*i+3]
	return lumaRGB(p[0], p[1], p[2])
}

// lumaRGB is BT.601 luma in 16.16 fixed point: 0.299 R + 0.587 G + 0.114 B.
func lumaRGB(r, g, b uint8) uint32 {
	return 19595*uint32(r) + 38470*uint32(g) + 7471*uint32(b)
}

// rgba expands the raster for callers that want an image.Image.
func (r raster) rgba() *image.RGBA {
	out := image.NewRGBA(r.bounds())
	for i := 0; i < r.w*r.h; i++ {
		o := out.Pix[4*i : 4*i+4 : 4*i+4]
		if r.ch == 1 {
			v := r.pix[i]
			o[0], o[1], o[2] = v, v, v
		} else {
			o[0], o[1], o[2] = r.pix[3*i], r.pix[3*i+1], r.pix[3*i+2]
		}
		o[3] = 255
	}
	return out
}

// toRaster converts a decoded image. The decoders' usual outputs have direct loops: the
// generic At() path costs an interface call and an allocation per pixel, several times
// the whole decode.
func toRaster(src image.Image) raster {
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	switch s := src.(type) {
	case *image.Gray:
		if s.Stride == w && len(s.Pix) >= w*h && b.Min == (image.Point{}) {
			// Already packed: share the decoder's pixels instead of copying them.
			return raster{pix: s.Pix[:w*h], w: w, h: h, ch: 1}
		}
		dst := newRaster(w, h, 1)
		for y := 0; y < h; y++ {
			copy(dst.pix[y*w:][:w], s.Pix[s.PixOffset(b.Min.X, b.Min.Y+y):])
		}
		return dst
	case *image.Gray16:
		dst := newRaster(w, h, 1)
		for y := 0; y < h; y++ {
			in := s.Pix[s.PixOffset(b.Min.X, b.Min.Y+y):][:2*w]
			for x := range w {
				dst.pix[y*w+x] = in[2*x] // the high byte: color.GrayModel's rounding
			}
		}
		return dst
	case *image.YCbCr:
		// The standard library's YCbCr to RGBA conversion is optimised per subsampling.
		rgba := image.NewRGBA(image.Rect(0, 0, w, h))
		draw.Draw(rgba, rgba.Rect, s, b.Min, draw.Src)
		return toRaster(rgba)
	case *image.RGBA:
		dst := newRaster(w, h, 3)
		for y := 0; y < h; y++ {
			in := s.Pix[s.PixOffset(b.Min.X, b.Min.Y+y):][:4*w]
			out := dst.pix[y*w*3:][:w*3]
			for x := range w {
				// Premultiplied: compositing on white adds the uncovered part of white.
				white := 255 - in[4*x+3]
				out[3*x], out[3*x+1], out[3*x+2] = in[4*x]+white, in[4*x+1]+white, in[4*x+2]+white
			}
		}
		return dst
	case *image.NRGBA:
		dst := newRaster(w, h, 3)
		for y := 0; y < h; y++ {
			in := s.Pix[s.PixOffset(b.Min.X, b.Min.Y+y):][:4*w]
			out := dst.pix[y*w*3:][:w*3]
			for x := range w {
				a := uint32(in[4*x+3])
				out[3*x] = overWhite(uint32(in[4*x]), a)
				out[3*x+1] = overWhite(uint32(in[4*x+1]), a)
				out[3*x+2] = overWhite(uint32(in[4*x+2]), a)
			}
		}
		return dst
	case *image.Paletted:
		var lut [256][3]uint8
		for i, c := range s.Palette {
			lut[i] = opaqueOverWhite(c)
		}
		dst := newRaster(w, h, 3)
		for y := 0; y < h; y++ {
			in := s.Pix[s.PixOffset(b.Min.X, b.Min.Y+y):][:w]
			out := dst.pix[y*w*3:][:w*3]
			for x, i := range in {
				copy(out[3*x:3*x+3], lut[i][:])
			}
		}
		return dst
	}
	// CMYK, 16-bit colour, NYCbCrA...: rare enough for the generic path.
	dst := newRaster(w, h, 3)
	for y := 0; y < h; y++ {
		out := dst.pix[y*w*3:][:w*3]
		for x := range w {
			c := opaqueOverWhite(src.At(b.Min.X+x, b.Min.Y+y))
			copy(out[3*x:3*x+3], c[:])
		}
	}
	return dst
}

// overWhite composites a non-premultiplied 8-bit channel value with alpha a on white, rounded.
func overWhite(v, a uint32) uint8 {
	return uint8((v*a + 255*(255-a) + 127) / 255)
}

func opaqueOverWhite(c color.Color) [3]uint8 {
	r, g, b, a := c.RGBA() // 16-bit premultiplied
	white := 0xffff - a
	return [3]uint8{uint8((r + white) >> 8), uint8((g + white) >> 8), uint8((b + white) >> 8)}
}

// orient applies an EXIF orientation so the image is upright as the camera's user saw it.
func (r raster) orient(orientation int) raster {
	if orientation <= 1 || orientation > 8 {
		return r
	}
	w, h, ch := r.w, r.h, r.ch
	dw, dh := w, h
	if orientation >= 5 { // the four that swap axes
		dw, dh = h, w
	}
	dst := newRaster(dw, dh, ch)
	for dy := 0; dy < dh; dy++ {
		for dx := 0; dx < dw; dx++ {
			var sx, sy int
			switch orientation {
			case 2: // mirrored
				sx, sy = w-1-dx, dy
			case 3: // rotated 180
				sx, sy = w-1-dx, h-1-dy
			case 4: // mirrored vertically
				sx, sy = dx, h-1-dy
			case 5: // transposed
				sx, sy = dy, dx
			case 6: // needs a 90 degree clockwise turn
				sx, sy = dy, h-1-dx
			case 7: // transversed
				sx, sy = w-1-dy, h-1-dx
			case 8: // needs a 90 degree counter-clockwise turn
				sx, sy = w-1-dy, dx
			}
			copy(dst.pix[(dy*dw+dx)*ch:][:ch], r.pix[(sy*w+sx)*ch:][:ch])
		}
	}
	return dst
}
