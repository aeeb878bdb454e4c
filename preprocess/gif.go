package preprocess

import (
	"bytes"
	"fmt"
	"image"
	"image/gif"
)

// decodeGIF returns the first frame on the logical screen, as Pillow does: image/gif gives
// the frame alone, at its own position and size. The rest of the screen is the frame's
// transparent colour when it has one (white here), else palette entry 0.
func decodeGIF(data []byte) (raster, error) {
	cfg, err := gif.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return raster{}, err
	}
	img, err := gif.Decode(bytes.NewReader(data))
	if err != nil {
		return raster{}, err
	}
	frame, ok := img.(*image.Paletted)
	if !ok {
		return raster{}, fmt.Errorf("gif: unexpected frame type %T", img)
	}
	screen := image.Rect(0, 0, cfg.Width, cfg.Height)
	if frame.Rect == screen {
		return toRaster(frame), nil
	}
	canvas := image.NewPaletted(screen, frame.Palette)
	background := uint8(0)
	for i, c := range frame.Palette {
		if _, _, _, a := c.RGBA(); a == 0 { // image/gif's mark for the transparent index
			background = uint8(i)
			break
		}
	}
	for i := range canvas.Pix {
		canvas.Pix[i] = background
	}
	visible := frame.Rect.Intersect(screen)
	for y := visible.Min.Y; y < visible.Max.Y; y++ {
		copy(canvas.Pix[canvas.PixOffset(visible.Min.X, y):][:visible.Dx()], frame.Pix[frame.PixOffset(visible.Min.X, y):])
	}
	return toRaster(canvas), nil
}
