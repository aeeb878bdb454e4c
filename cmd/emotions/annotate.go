package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/emotions-dev/emotions/classify"
	"github.com/emotions-dev/emotions/preprocess"
)

// annotate writes DIR/<name>.png: the upright image with the face box and the label drawn.
func annotate(prep *preprocess.Preprocessor, file, dir string, p classify.Prediction) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	img, err := prep.Decode(file, data)
	if err != nil {
		return err
	}
	canvas := image.NewRGBA(img.Bounds())
	draw.Draw(canvas, canvas.Bounds(), img, img.Bounds().Min, draw.Src)
	green := color.RGBA{0, 220, 0, 255}
	label := *p.Label
	x, y := 4, 14
	if p.Face != nil {
		box := image.Rect(p.Face.X, p.Face.Y, p.Face.X+p.Face.Width, p.Face.Y+p.Face.Height)
		thick := max(2, canvas.Bounds().Dx()/200)
		for i := 0; i < thick; i++ {
			outline(canvas, box.Inset(i), green)
		}
		x, y = max(box.Min.X, 0)+2, max(box.Min.Y-4, 14)
	} else {
		label += " (no face found)"
	}
	label = fmt.Sprintf("%s %.0f%%", label, 100*p.Probabilities[*p.Label])
	textBox := image.Rect(x-2, y-13, x+7*len(label)+2, y+3)
	draw.Draw(canvas, textBox, image.NewUniform(color.RGBA{0, 0, 0, 180}), image.Point{}, draw.Over)
	d := font.Drawer{Dst: canvas, Src: image.NewUniform(green), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(label)

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	name := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file)) + ".png"
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	if err := png.Encode(f, canvas); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func outline(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	if r.Empty() {
		return
	}
	for x := r.Min.X; x < r.Max.X; x++ {
		img.SetRGBA(x, r.Min.Y, c)
		img.SetRGBA(x, r.Max.Y-1, c)
	}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		img.SetRGBA(r.Min.X, y, c)
		img.SetRGBA(r.Max.X-1, y, c)
	}
}
