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

	var mean float64
	for _, v := range crop {
		mean += float64(v)
	}
	mean /= float64(max(1, len(crop)))

	// Inverse mapping: for each output pixel, where it comes from in the crop (rotation
	// and zoom about the centre, then shift), sampled bilinearly with the edges
	// replicated so no black corners appear.
	cx, cy := float64(w-1)/2, float64(h-1)/2
	cos, sin := math.Cos(angle)/zoom, math.Sin(angle)/zoom
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			u, v := float64(x)-cx-tx, float64(y)-cy-ty
			sx := cos*u + sin*v + cx
			sy := -sin*u + cos*v + cy
			if flip {
				sx = float64(w-1) - sx
			}
			sx = min(max(sx, 0), float64(w-1))
			sy = min(max(sy, 0), float64(h-1))
			x0, y0 := int(sx), int(sy)
			x1, y1 := min(x0+1, w-1), min(y0+1, h-1)
			fx, fy := sx-float64(x0), sy-float64(y0)
			o := out[3*(y*w+x):][:3]
			for ch := 0; ch < 3; ch++ {
				p := func(px, py int) float64 { return float64(crop[3*(py*w+px)+ch]) }
				val := (p(x0, y0)*(1-fx)+p(x1, y0)*fx)*(1-fy) + (p(x0, y1)*(1-fx)+p(x1, y1)*fx)*fy
				val = (val-mean)*contrast + mean + bright
				o[ch] = clampByte(float32(val))
			}
		}
	}
}
