package preprocess

import (
	"math"
	"math/rand/v2"
)

// Augment sets the ranges of the random changes made to training crops. Each value is
// drawn uniformly in [-max, +max] (FlipProb is a probability).
type Augment struct {
	FlipProb     float64 // mirror left-right
	MaxRotateDeg float64 // rotation, degrees
	MaxShift     float64 // translation, fraction of the side
	MaxZoom      float64 // scale change, fraction (0.1 = 0.9x..1.1x)
	Brightness   float64 // added to every channel, fraction of the 0..255 range
	Contrast     float64 // scale of the deviation from the crop's mean, fraction
}

// DefaultAugment returns ranges suited to face crops: a mirrored face shows the same
// expression, so flips are free data; rotation, shift and zoom stay within what the face
// detector's own jitter produces (on faces4, detected box sides spread over 0.89-1.10 of
// the frame), so crops still look like detector output; brightness and contrast cover
// the lighting differences between photos.
func DefaultAugment() Augment {
	return Augment{FlipProb: 0.5, MaxRotateDeg: 10, MaxShift: 0.08, MaxZoom: 0.1, Brightness: 0.15, Contrast: 0.2}
}

// Augmenter applies an Augment to Width x Height RGB crops. It holds no mutable state: it
// is safe for concurrent use, and all randomness comes from the rng passed to Apply.
type Augmenter struct {
	a    Augment
	w, h int
}

// NewAugmenter returns an augmenter for crops of width w and height h.
func NewAugmenter(a Augment, w, h int) *Augmenter {
	return &Augmenter{a: a, w: w, h: h}
}

// Apply writes a randomly changed copy of crop to out (both w*h*3). It always draws the same
// number of values from rng, so the same rng state gives the same output.
func (g *Augmenter) Apply(rng *rand.Rand, crop []uint8, out []uint8) {
	a, w, h := g.a, g.w, g.h
	sym := func(m float64) float64 { return (2*rng.Float64() - 1) * m }
	flip := rng.Float64() < a.FlipProb
	angle := sym(a.MaxRotateDeg) * math.Pi / 180
	tx, ty := sym(a.MaxShift)*float64(w), sym(a.MaxShift)*float64(h)
	zoom := 1 + sym(a.MaxZoom)
	bright := sym(a.Brightness) * 255
	contrast := 1 + sym(a.Contrast)

	var sum uint64
	for _, v := range crop {
		sum += uint64(v)
	}
	mean := float64(sum) / float64(max(1, len(crop)))
	// Brightness and contrast as a table: the sampled value v becomes (v-mean)*contrast +
	// mean + bright, rounded and clamped.
	var tone [256]uint8
	for v := range tone {
		tone[v] = clampByte(float32((float64(v)-mean)*contrast + mean + bright))
	}

	// Inverse mapping: for each output pixel, where it comes from in the crop (rotation
	// and zoom about the centre, then shift), sampled bilinearly with the edges
	// replicated so no black corners appear. Coordinates are 16.16 fixed point and move
	// by a constant step along a row; the bilinear weights have 8 fractional bits and
	// serve the three channels.
	const one = 1 << 16
	cx, cy := float64(w-1)/2, float64(h-1)/2
	cos, sin := math.Cos(angle)/zoom, math.Sin(angle)/zoom
	maxX, maxY := int64(w-1)*one, int64(h-1)*one
	stepX, stepY := int64(math.Round(cos*one)), int64(math.Round(-sin*one))
	for y := 0; y < h; y++ {
		u, v := -cx-tx, float64(y)-cy-ty
		sx := int64(math.Round((cos*u + sin*v + cx) * one))
		sy := int64(math.Round((-sin*u + cos*v + cy) * one))
		row := out[3*y*w : 3*(y+1)*w]
		for x := 0; x < w; x, sx, sy = x+1, sx+stepX, sy+stepY {
			px := sx
			if flip {
				px = maxX - sx
			}
			px, py := min(max(px, 0), maxX), min(max(sy, 0), maxY)
			x0, y0 := int(px>>16), int(py>>16)
			x1, y1 := min(x0+1, w-1), min(y0+1, h-1)
			fx, fy := uint32(px>>8)&255, uint32(py>>8)&255
			w00, w01 := (256-fx)*(256-fy), fx*(256-fy)
			w10, w11 := (256-fx)*fy, fx*fy
			i00, i01, i10, i11 := 3*(y0*w+x0), 3*(y0*w+x1), 3*(y1*w+x0), 3*(y1*w+x1)
			// Three-element slices: one bounds check each, not one per channel and tap.
			p00, p01 := crop[i00:i00+3:i00+3], crop[i01:i01+3:i01+3]
			p10, p11 := crop[i10:i10+3:i10+3], crop[i11:i11+3:i11+3]
			o := row[3*x : 3*x+3 : 3*x+3]
			o[0] = tone[uint8((w00*uint32(p00[0])+w01*uint32(p01[0])+w10*uint32(p10[0])+w11*uint32(p11[0])+1<<15)>>16)]
			o[1] = tone[uint8((w00*uint32(p00[1])+w01*uint32(p01[1])+w10*uint32(p10[1])+w11*uint32(p11[1])+1<<15)>>16)]
			o[2] = tone[uint8((w00*uint32(p00[2])+w01*uint32(p01[2])+w10*uint32(p10[2])+w11*uint32(p11[2])+1<<15)>>16)]
		}
	}
}
