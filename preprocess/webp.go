package preprocess

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"

	"golang.org/x/image/webp"
)

// x/image/webp decodes still WebP (lossy, lossless, lossy with alpha) but refuses animated
// files. Their first frame is an ordinary VP8 or VP8L bitstream inside an ANMF chunk: it is
// wrapped here as a still WebP file of its own, decoded by x/image/webp, and placed on the
// canvas as libwebp's WebPAnimDecoder (Pillow's reader) places it: on a transparent canvas,
// which comes out white here.

// webpAnimation is what decoding an animated WebP's first frame needs from its header.
type webpAnimation struct {
	canvas image.Rectangle
	frame  []byte // the first ANMF chunk's payload
}

// webpAnimated reports whether data is an animated WebP, and its canvas and first frame.
func webpAnimated(data []byte) (anim webpAnimation, ok bool, err error) {
	if len(data) < 12 {
		return anim, false, nil
	}
	animated := false
	webpChunks(data[12:], func(fourcc string, payload []byte) bool {
		switch fourcc {
		case "VP8X":
			if len(payload) < 10 || payload[0]&0x02 == 0 { // the animation flag
				return false
			}
			animated = true
			anim.canvas = image.Rect(0, 0, int(uint24(payload[4:]))+1, int(uint24(payload[7:]))+1)
		case "ANMF":
			anim.frame = payload
			return false
		}
		return true
	})
	if !animated {
		return anim, false, nil
	}
	if anim.frame == nil {
		return anim, true, errors.New("webp: animated file without a frame")
	}
	return anim, true, nil
}

func uint24(b []byte) uint32 { return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 }

func webpConfig(data []byte) (image.Config, error) {
	anim, animated, err := webpAnimated(data)
	switch {
	case err != nil:
		return image.Config{}, err
	case animated:
		return image.Config{Width: anim.canvas.Dx(), Height: anim.canvas.Dy()}, nil
	}
	return webp.DecodeConfig(bytes.NewReader(data))
}

func decodeWebP(data []byte) (raster, error) {
	anim, animated, err := webpAnimated(data)
	switch {
	case err != nil:
		return raster{}, err
	case animated:
		return decodeWebPFrame(anim)
	}
	img, err := webp.Decode(bytes.NewReader(data))
	if err != nil {
		return raster{}, err
	}
	switch s := img.(type) {
	case *image.YCbCr:
		return webpYCbCrRaster(s, nil, 0), nil
	case *image.NYCbCrA:
		return webpYCbCrRaster(&s.YCbCr, s.A[s.AOffset(s.Rect.Min.X, s.Rect.Min.Y):], s.AStride), nil
	}
	return toRaster(img), nil
}

// decodeWebPFrame decodes the first frame of an animation onto its canvas.
func decodeWebPFrame(anim webpAnimation) (raster, error) {
	f := anim.frame
	if len(f) < 16 {
		return raster{}, errors.New("webp: animation frame header too short")
	}
	at := image.Rect(0, 0, int(uint24(f[6:]))+1, int(uint24(f[9:]))+1).Add(image.Pt(2*int(uint24(f[0:])), 2*int(uint24(f[3:]))))
	if !at.In(anim.canvas) {
		return raster{}, fmt.Errorf("webp: first frame %v lies outside the %dx%d canvas", at, anim.canvas.Dx(), anim.canvas.Dy())
	}
	still, err := webpStill(f[16:], at.Dx(), at.Dy())
	if err != nil {
		return raster{}, err
	}
	// The frame's own header must agree with the ANMF rectangle before anything is
	// allocated for it: a frame larger than its canvas would bypass the bomb check.
	cfg, err := webp.DecodeConfig(bytes.NewReader(still))
	if err != nil {
		return raster{}, err
	}
	if cfg.Width != at.Dx() || cfg.Height != at.Dy() {
		return raster{}, fmt.Errorf("webp: first frame is %dx%d, its animation header says %dx%d", cfg.Width, cfg.Height, at.Dx(), at.Dy())
	}
	frame, err := decodeWebP(still)
	if err != nil {
		return raster{}, err
	}
	canvas := newRaster(anim.canvas.Dx(), anim.canvas.Dy(), frame.ch)
	for i := range canvas.pix {
		canvas.pix[i] = 255
	}
	rowBytes := frame.w * frame.ch
	for y := range frame.h {
		copy(canvas.pix[((at.Min.Y+y)*canvas.w+at.Min.X)*canvas.ch:], frame.pix[y*rowBytes:][:rowBytes])
	}
	return canvas, nil
}

// webpStill wraps a frame's bitstream chunks (ALPH and VP8, or VP8L) as a still WebP file.
func webpStill(chunks []byte, w, h int) ([]byte, error) {
	var alph, bitstream []byte
	var kind string
	webpChunks(chunks, func(fourcc string, payload []byte) bool {
		switch fourcc {
		case "ALPH":
			alph = payload
		case "VP8 ", "VP8L":
			kind, bitstream = fourcc, payload
			return false
		}
		return true // unknown chunks are skipped, as the container specification asks
	})
	if bitstream == nil {
		return nil, errors.New("webp: animation frame without a VP8 or VP8L bitstream")
	}
	var body bytes.Buffer
	body.WriteString("WEBP")
	if alph != nil && kind == "VP8 " {
		vp8x := make([]byte, 10)
		vp8x[0] = 0x10 // alpha
		putUint24(vp8x[4:], uint32(w-1))
		putUint24(vp8x[7:], uint32(h-1))
		writeRIFFChunk(&body, "VP8X", vp8x)
		writeRIFFChunk(&body, "ALPH", alph)
	}
	writeRIFFChunk(&body, kind, bitstream)
	out := make([]byte, 8, 8+body.Len())
	copy(out, "RIFF")
	binary.LittleEndian.PutUint32(out[4:], uint32(body.Len()))
	return append(out, body.Bytes()...), nil
}

func putUint24(b []byte, v uint32) { b[0], b[1], b[2] = byte(v), byte(v>>8), byte(v>>16) }

func writeRIFFChunk(b *bytes.Buffer, fourcc string, payload []byte) {
	var size [4]byte
	binary.LittleEndian.PutUint32(size[:], uint32(len(payload)))
	b.WriteString(fourcc)
	b.Write(size[:])
	b.Write(payload)
	if len(payload)%2 == 1 {
		b.WriteByte(0)
	}
}
