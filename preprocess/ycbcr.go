package preprocess

import "image"

// Go's image/jpeg and x/image/webp hand back Y'CbCr planes with the chroma at its stored
// resolution. Go's own conversion then repeats each chroma sample over the pixels it covers,
// and converts with JFIF's full-range equations, which is right for JPEG but not for WebP
// (VP8 stores BT.601 "studio range" Y'CbCr). libjpeg-turbo and libwebp, which Pillow, OpenCV
// and browsers use, interpolate the chroma instead ("fancy upsampling"). The conversions
// below do what those libraries do, integer for integer, so a photo gives the model the
// same pixels here as in Python.

// jpegYCbCrRaster converts a JPEG's Y'CbCr planes as libjpeg-turbo does by default: fancy
// (triangular) upsampling for 4:2:2, 4:2:0 and 4:4:0 chroma, then JFIF conversion with
// jdcolor.c's fixed-point tables. ok is false for other subsamplings (4:1:1, 4:1:0), which
// libjpeg-turbo only replicates, as Go's conversion does.
func jpegYCbCrRaster(src *image.YCbCr) (r raster, ok bool) {
	h2 := src.SubsampleRatio == image.YCbCrSubsampleRatio422 || src.SubsampleRatio == image.YCbCrSubsampleRatio420
	v2 := src.SubsampleRatio == image.YCbCrSubsampleRatio440 || src.SubsampleRatio == image.YCbCrSubsampleRatio420
	if !h2 && !v2 && src.SubsampleRatio != image.YCbCrSubsampleRatio444 {
		return raster{}, false
	}
	b := src.Rect
	w, h := b.Dx(), b.Dy()
	cw, ch := w, h // chroma plane size, as the decoder laid it out
	if h2 {
		cw = (w + 1) / 2
	}
	if v2 {
		ch = (h + 1) / 2
	}
	dst := newRaster(w, h, 3)
	cb := make([]uint8, w) // one row of chroma at full resolution
	cr := make([]uint8, w)
	var sumCb, sumCr []int32
	if v2 {
		sumCb, sumCr = make([]int32, cw), make([]int32, cw)
	}
	for y := 0; y < h; y++ {
		cy := y
		if v2 {
			cy = y / 2
		}
		cbRow := chromaRowAt(src.Cb, src, cy, cw)
		crRow := chromaRowAt(src.Cr, src, cy, cw)
		if v2 {
			// Vertical triangle filter: 3/4 of the nearer chroma row, 1/4 of the next nearer
			// (the row above for even output rows, below for odd ones; edges repeat).
			other := cy - 1
			if y%2 == 1 {
				other = cy + 1
			}
			other = min(max(other, 0), ch-1)
			cbOther := chromaRowAt(src.Cb, src, other, cw)
			crOther := chromaRowAt(src.Cr, src, other, cw)
			for x := range cw {
				sumCb[x] = 3*int32(cbRow[x]) + int32(cbOther[x])
				sumCr[x] = 3*int32(crRow[x]) + int32(crOther[x])
			}
		}
		switch {
		case h2 && v2:
			upsampleH2V2(cb, sumCb)
			upsampleH2V2(cr, sumCr)
		case h2:
			upsampleH2V1(cb, cbRow)
			upsampleH2V1(cr, crRow)
		case v2: // 4:4:0: columns already at full resolution, rows interpolated
			for x := range w {
				bias := int32(1)
				if y%2 == 1 {
					bias = 2
				}
				cb[x] = uint8((sumCb[x] + bias) >> 2)
				cr[x] = uint8((sumCr[x] + bias) >> 2)
			}
		default:
			copy(cb, cbRow[:w])
			copy(cr, crRow[:w])
		}
		yRow := src.Y[src.YOffset(b.Min.X, b.Min.Y+y):][:w]
		out := dst.pix[y*w*3:][:w*3]
		for x, yy := range yRow {
			out[3*x], out[3*x+1], out[3*x+2] = jfifToRGB(int32(yy), int32(cb[x]), int32(cr[x]))
		}
	}
	return dst, true
}

// upsampleH2V1 doubles a chroma row as jdsample.c's h2v1_fancy_upsample: each output is 3/4
// of its own sample and 1/4 of the neighbour on its side, rounding alternately up and down.
func upsampleH2V1(out []uint8, in []uint8) {
	n := len(in)
	for j := range n {
		c := 3 * int32(in[j])
		left, right := int32(in[max(j-1, 0)]), int32(in[min(j+1, n-1)])
		if 2*j < len(out) {
			out[2*j] = uint8((c + left + 1) >> 2)
		}
		if 2*j+1 < len(out) {
			out[2*j+1] = uint8((c + right + 2) >> 2)
		}
	}
}

// upsampleH2V2 finishes h2v2_fancy_upsample on column sums already weighted 3:1 vertically:
// 9/16, 3/16, 3/16, 1/16 overall.
func upsampleH2V2(out []uint8, sums []int32) {
	n := len(sums)
	for j := range n {
		c := 3 * sums[j]
		left, right := sums[max(j-1, 0)], sums[min(j+1, n-1)]
		if 2*j < len(out) {
			out[2*j] = uint8((c + left + 8) >> 4)
		}
		if 2*j+1 < len(out) {
			out[2*j+1] = uint8((c + right + 7) >> 4)
		}
	}
}

// jfifToRGB is jdcolor.c's ycc_rgb_convert: 16-bit fixed point, rounded, clamped.
func jfifToRGB(y, cb, cr int32) (uint8, uint8, uint8) {
	const (
		half = 1 << 15
		crR  = 91881  // FIX(1.40200)
		cbB  = 116130 // FIX(1.77200)
		crG  = 46802  // FIX(0.71414)
		cbG  = 22554  // FIX(0.34414)
	)
	cb, cr = cb-128, cr-128
	r := y + (crR*cr+half)>>16
	g := y + (-cbG*cb-crG*cr+half)>>16
	b := y + (cbB*cb+half)>>16
	return clamp8(r), clamp8(g), clamp8(b)
}

func clamp8(v int32) uint8 {
	return uint8(min(max(v, 0), 255))
}

// webpYCbCrRaster converts a lossy WebP's 4:2:0 planes as libwebp does by default: fancy
// upsampling (upsampling.c's UPSAMPLE_FUNC) and BT.601 studio-range conversion (yuv.h's
// VP8YuvToRgb). alpha, if not nil, is the alpha plane (rows aStride apart), composited on
// white.
func webpYCbCrRaster(src *image.YCbCr, alpha []uint8, aStride int) raster {
	b := src.Rect
	w, h := b.Dx(), b.Dy()
	cw, ch := (w+1)/2, (h+1)/2
	dst := newRaster(w, h, 3)
	u, v := make([]uint8, w), make([]uint8, w)
	for y := 0; y < h; y++ {
		// Output row y takes 3/4 from the nearer chroma row and 1/4 from the other one of
		// its pair (libwebp pairs rows 1-2, 3-4, ...; row 0 and an even-height picture's last
		// row use their one chroma row alone).
		near, far := 0, 0
		switch {
		case y%2 == 1:
			near, far = y/2, y/2+1
		case y > 0:
			near, far = y/2, y/2-1
		}
		far = min(far, ch-1)
		webpUpsampleRow(u, chromaRowAt(src.Cb, src, near, cw), chromaRowAt(src.Cb, src, far, cw))
		webpUpsampleRow(v, chromaRowAt(src.Cr, src, near, cw), chromaRowAt(src.Cr, src, far, cw))
		yRow := src.Y[src.YOffset(b.Min.X, b.Min.Y+y):][:w]
		out := dst.pix[y*w*3:][:w*3]
		for x, yy := range yRow {
			r, g, bl := vp8ToRGB(int32(yy), int32(u[x]), int32(v[x]))
			if alpha != nil {
				a := uint32(alpha[y*aStride+x])
				r, g, bl = overWhite(uint32(r), a), overWhite(uint32(g), a), overWhite(uint32(bl), a)
			}
			out[3*x], out[3*x+1], out[3*x+2] = r, g, bl
		}
	}
	return dst
}

// chromaRowAt is row cy (counted from the image's top) of a chroma plane, cw samples long.
func chromaRowAt(plane []uint8, src *image.YCbCr, cy, cw int) []uint8 {
	return plane[src.COffset(src.Rect.Min.X, src.Rect.Min.Y)+cy*src.CStride:][:cw]
}

// webpUpsampleRow interpolates one output row of chroma from the nearer (weight 3) and the
// farther (weight 1) chroma row, with libwebp's two-step rounding through the diagonals.
func webpUpsampleRow(out, near, far []uint8) {
	n := len(out)
	edge := func(i int) uint8 { return uint8((3*uint32(near[i]) + uint32(far[i]) + 2) >> 2) }
	out[0] = edge(0)
	for x := 1; x <= (n-1)/2; x++ {
		tl, t := uint32(near[x-1]), uint32(near[x])
		l, c := uint32(far[x-1]), uint32(far[x])
		avg := tl + t + l + c + 8
		diag12 := (avg + 2*(t+l)) >> 3
		diag03 := (avg + 2*(tl+c)) >> 3
		out[2*x-1] = uint8((diag12 + tl) >> 1)
		out[2*x] = uint8((diag03 + t) >> 1)
	}
	if n%2 == 0 {
		out[n-1] = edge(n/2 - 1)
	}
}

// vp8ToRGB is libwebp's VP8YuvToRgb: BT.601 studio range with 14-bit multipliers.
func vp8ToRGB(y, u, v int32) (uint8, uint8, uint8) {
	mulHi := func(a, coeff int32) int32 { return (a * coeff) >> 8 }
	clip := func(x int32) uint8 {
		if x&^(256<<6-1) == 0 {
			return uint8(x >> 6)
		}
		if x < 0 {
			return 0
		}
		return 255
	}
	yy := mulHi(y, 19077)
	return clip(yy + mulHi(v, 26149) - 14234),
		clip(yy - mulHi(u, 6419) - mulHi(v, 13320) + 8708),
		clip(yy + mulHi(u, 33050) - 17685)
}
