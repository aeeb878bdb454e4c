package preprocess

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
)

// jpegConfig refuses, by name, the JPEG variants Go's image/jpeg cannot decode (it would
// only say "unknown marker" or "unsupported JPEG feature"), then reads the frame size.
func jpegConfig(data []byte) (image.Config, error) {
	if err := jpegVariant(data); err != nil {
		return image.Config{}, err
	}
	return jpeg.DecodeConfig(bytes.NewReader(data))
}

// jpegVariant reads the frame header's marker and precision: baseline, extended and
// progressive 8-bit frames are supported; the others are refused with their name.
func jpegVariant(data []byte) (err error) {
	jpegSegments(data, func(marker byte, seg []byte) bool {
		if marker < 0xC0 || marker > 0xCF || marker == 0xC4 || marker == 0xC8 || marker == 0xCC {
			return true // not a frame header (DHT, JPG, DAC or another segment)
		}
		sof := fmt.Sprintf("SOF%d", marker-0xC0)
		switch {
		case marker >= 0xC9:
			kind := "arithmetic-coded JPEG"
			if marker >= 0xCD {
				kind = "hierarchical arithmetic-coded JPEG"
			}
			err = unsupportedError{kind + " (" + sof + ")", "re-encode it with Huffman coding, e.g. jpegtran -optimize, or as PNG"}
		case marker == 0xC3:
			err = unsupportedError{"lossless JPEG (SOF3)", "convert it to PNG or an ordinary JPEG"}
		case marker >= 0xC5:
			err = unsupportedError{"hierarchical JPEG (" + sof + ")", "re-encode it as an ordinary JPEG"}
		case len(seg) > 0 && seg[0] != 8:
			err = unsupportedError{fmt.Sprintf("%d-bit JPEG", seg[0]), "convert it to an 8-bit JPEG or to PNG"}
		}
		return false
	})
	return err
}

func decodeJPEG(data []byte) (raster, error) {
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		return raster{}, err
	}
	return jpegRaster(img), nil
}

// jpegRaster converts what image/jpeg returns as libjpeg-turbo would (see ycbcr.go).
func jpegRaster(img image.Image) raster {
	switch s := img.(type) {
	case *image.YCbCr:
		if r, ok := jpegYCbCrRaster(s); ok {
			return r
		}
	case *image.CMYK:
		b := s.Rect
		dst := newRaster(b.Dx(), b.Dy(), 3)
		for y := 0; y < b.Dy(); y++ {
			cmykRow(dst.pix[y*b.Dx()*3:][:b.Dx()*3], s.Pix[s.PixOffset(b.Min.X, b.Min.Y+y):][:4*b.Dx()], 4)
		}
		return dst
	}
	return toRaster(img)
}

// cmykRow converts one row of CMYK samples (4 of every step bytes) to RGB as Pillow's
// cmyk2rgb does: each channel is (255-K) less its ink's share of it, rounded.
func cmykRow(out, in []uint8, step int) {
	for x := 0; x < len(out)/3; x++ {
		p := in[x*step:]
		nk := 255 - int32(p[3])
		for c := range 3 {
			t := int32(p[c])*nk + 128
			out[3*x+c] = clamp8(nk - ((t>>8)+t)>>8)
		}
	}
}
