package preprocess

import (
	"fmt"

	"github.com/emotions-dev/emotions/savedmodel"
)

// Input is what a model takes, as emotions.json describes it: crops of Height x Width
// pixels, given as Channels values per pixel (3: RGB, or BGR when Norm says so; 1: the
// BT.601 luma of the RGB crop rounded to 8 bits, as Pillow's convert("L") and OpenCV's
// COLOR_RGB2GRAY compute it: what a grayscale model was trained on), each value normalised by
// Norm (x = p*scale + offset; a one-channel model uses scale[0] and offset[0]). Crops themselves are always packed 8-bit RGB (Result.Crop), so one
// cached crop serves a color and a grayscale model alike.
type Input struct {
	Height, Width, Channels int
	Norm                    savedmodel.Normalization
}

// InputOf returns the input a model's metadata describes.
func InputOf(meta savedmodel.Metadata) Input {
	return Input{Height: meta.InputHeight, Width: meta.InputWidth, Channels: meta.Channels, Norm: meta.Normalization}
}

// Validate reports an input no model can take.
func (in Input) Validate() error {
	if in.Height < 8 || in.Height > 4096 || in.Width < 8 || in.Width > 4096 {
		return fmt.Errorf("input %dx%d out of range [8,4096]", in.Width, in.Height)
	}
	if in.Channels != 1 && in.Channels != 3 {
		return fmt.Errorf("input of %d channels: want 1 (grayscale) or 3 (RGB)", in.Channels)
	}
	return nil
}

// Values is the number of float32 values of one image: Height * Width * Channels.
func (in Input) Values() int { return in.Height * in.Width * in.Channels }

// CropBytes is the size of one crop: Height * Width * 3 (RGB).
func (in Input) CropBytes() int { return in.Height * in.Width * 3 }

// Shape is the model's input shape for n images: [n, Height, Width, Channels].
func (in Input) Shape(n int) []int64 {
	return []int64{int64(n), int64(in.Height), int64(in.Width), int64(in.Channels)}
}

// Normalize writes one crop (packed RGB bytes, CropBytes long) into out (Values long) as the
// model's float input.
func (in Input) Normalize(crop []uint8, out []float32) {
	if len(crop) == 0 {
		return
	}
	norm := in.Norm
	if in.Channels == 1 {
		_ = out[len(crop)/3-1] // one bounds check, not one per pixel
		for i, j := 0, 0; i+2 < len(crop); i, j = i+3, j+1 {
			// Pillow's integer BT.601 (convert("L")): what a grayscale model was trained on.
			luma := (lumaRGB(crop[i], crop[i+1], crop[i+2]) + 1<<15) >> 16
			out[j] = float32(luma)*norm.Scale[0] + norm.Offset[0]
		}
		return
	}
	_ = out[len(crop)-1]
	for i := 0; i+2 < len(crop); i += 3 {
		norm.Apply(float32(crop[i]), float32(crop[i+1]), float32(crop[i+2]), out[i:i+3])
	}
}
