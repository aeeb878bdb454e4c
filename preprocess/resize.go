package preprocess

import (
	"image"
	"math"
	"math/bits"
)

// cropResize cuts r (inside img) and resamples it to outW x outH packed RGB.
//
// Large reductions first average k x k blocks down to between 2x and 3x the target
// (what Pillow calls reducing_gap): a box filter at 2x+ oversampling is invisible after
// the final filter, and it cuts the Catmull-Rom work, the bulk of the cost, by k*k.
func cropResize(img raster, r image.Rectangle, outW, outH int) []uint8 {
	ch := img.ch
	k := max(1, min(r.Dx()/(2*outW), r.Dy()/(2*outH)))
	rw, rh := r.Dx()/k, r.Dy()/k
	// Centre the k*k blocks in r: up to k-1 pixels left over are split between the edges.
	x0 := r.Min.X + (r.Dx()-rw*k)/2
	y0 := r.Min.Y + (r.Dy()-rh*k)/2
	reduced := newRaster(rw, rh, ch)
	sums := make([]uint32, rw*ch)
	n := uint32(k * k)
	for y := 0; y < rh; y++ {
		clear(sums)
		for dy := 0; dy < k; dy++ {
			in := img.pix[((y0+y*k+dy)*img.w+x0)*ch:][:rw*k*ch]
			if k == 1 {
				for i, v := range in {
					sums[i] = uint32(v)
				}
				continue
			}
			if ch == 1 && k == 2 { // most of faces4: 350-pixel gray photos to 80
				for x := range sums {
					p := in[2*x : 2*x+2 : 2*x+2]
					sums[x] += uint32(p[0]) + uint32(p[1])
				}
				continue
			}
			if ch == 1 {
				for x := range sums {
					for _, v := range in[x*k : (x+1)*k] {
						sums[x] += uint32(v)
					}
				}
				continue
			}
			for x := 0; x < rw; x++ {
				s := sums[3*x : 3*x+3 : 3*x+3]
				for p := 0; p < k; p++ {
					px := in[3*(x*k+p) : 3*(x*k+p)+3 : 3*(x*k+p)+3]
					s[0] += uint32(px[0])
					s[1] += uint32(px[1])
					s[2] += uint32(px[2])
				}
			}
		}
		out := reduced.pix[y*rw*ch:][:rw*ch]
		if n&(n-1) == 0 { // a shift, not a division per pixel
			shift := bits.TrailingZeros32(n)
			for i, s := range sums {
				out[i] = uint8((s + n/2) >> shift)
			}
			continue
		}
		for i, s := range sums {
			out[i] = uint8((s + n/2) / n)
		}
	}
	small := resample(reduced, outW, outH)
	if ch == 3 {
		return small.pix
	}
	rgb := make([]uint8, 3*len(small.pix))
	for i, v := range small.pix {
		rgb[3*i], rgb[3*i+1], rgb[3*i+2] = v, v, v
	}
	return rgb
}

// taps holds, for each output coordinate, n source indices (clamped at the edges, which
// replicates the border) and their normalised weights.
type taps struct {
	n   int
	idx []int
	w   []float32
}

// catmullRomTaps computes the filter taps to resample src samples to dst samples; when
// shrinking, the kernel is stretched by the ratio so it also low-passes (no aliasing).
func catmullRomTaps(src, dst int) taps {
	scale := float64(src) / float64(dst)
	stretch := max(1, scale)
	radius := 2 * stretch
	n := int(math.Ceil(2*radius)) + 1
	t := taps{n: n, idx: make([]int, dst*n), w: make([]float32, dst*n)}
	for i := 0; i < dst; i++ {
		centre := (float64(i)+0.5)*scale - 0.5
		first := int(math.Floor(centre - radius + 1))
		var sum float64
		ws := make([]float64, n)
		for j := 0; j < n; j++ {
			ws[j] = catmullRom((float64(first+j) - centre) / stretch)
			sum += ws[j]
		}
		for j := 0; j < n; j++ {
			t.idx[i*n+j] = min(max(first+j, 0), src-1)
			t.w[i*n+j] = float32(ws[j] / sum)
		}
	}
	return t
}

func catmullRom(x float64) float64 {
	x = math.Abs(x)
	switch {
	case x < 1:
		return (1.5*x-2.5)*x*x + 1
	case x < 2:
		return ((-0.5*x+2.5)*x-4)*x + 2
	}
	return 0
}

// resample resizes with a separable Catmull-Rom filter: rows first, then columns.
func resample(src raster, dw, dh int) raster {
	ch := src.ch
	tx, ty := catmullRomTaps(src.w, dw), catmullRomTaps(src.h, dh)
	tmp := make([]float32, src.h*dw*ch)
	for y := 0; y < src.h; y++ {
		in := src.pix[y*src.w*ch:][:src.w*ch]
		out := tmp[y*dw*ch:][:dw*ch]
		for x := 0; x < dw; x++ {
			idx, w := tx.idx[x*tx.n:][:tx.n], tx.w[x*tx.n:][:tx.n]
			if ch == 1 {
				var v float32
				for j, i := range idx {
					v += w[j] * float32(in[i])
				}
				out[x] = v
				continue
			}
			var r, g, b float32
			for j, i := range idx {
				p := in[3*i : 3*i+3 : 3*i+3]
				r += w[j] * float32(p[0])
				g += w[j] * float32(p[1])
				b += w[j] * float32(p[2])
			}
			out[3*x], out[3*x+1], out[3*x+2] = r, g, b
		}
	}
	dst := newRaster(dw, dh, ch)
	col := make([]float32, dw*ch)
	for y := 0; y < dh; y++ {
		clear(col)
		idx, w := ty.idx[y*ty.n:][:ty.n], ty.w[y*ty.n:][:ty.n]
		for j, i := range idx {
			row := tmp[i*dw*ch:][:dw*ch]
			wj := w[j]
			for x, v := range row {
				col[x] += wj * v
			}
		}
		out := dst.pix[y*dw*ch:][:dw*ch]
		for x, v := range col {
			out[x] = clampByte(v)
		}
	}
	return dst
}

func clampByte(v float32) uint8 {
	switch {
	case v <= 0:
		return 0
	case v >= 255:
		return 255
	}
	return uint8(v + 0.5)
}
