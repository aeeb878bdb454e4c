package preprocess

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
)

// contactColumns and contactRows bound one sheet: 400 crops stay a readable image.
const (
	contactColumns = 20
	contactRows    = 20
	contactGap     = 4
)

// WriteContactSheets writes, for each class, PNG grids of its crops exactly as the model
// sees them (before normalisation), in dataset order: DIR/<class>.png, then
// <class>-2.png... when a class has more than 400 crops. Crops that fell back to the
// centre square (no face found) are framed in red, so bad crops are easy to spot.
func WriteContactSheets(dir string, d *Dataset) error {
	if err := d.check(); err != nil {
		return fmt.Errorf("contact sheets: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("contact sheets: %w", err)
	}
	perSheet := contactColumns * contactRows
	for label, class := range d.Classes {
		var members []int
		for i, l := range d.Labels {
			if int(l) == label {
				members = append(members, i)
			}
		}
		for page := 0; page*perSheet < len(members); page++ {
			name := filepath.Base(class) + ".png"
			if page > 0 {
				name = fmt.Sprintf("%s-%d.png", filepath.Base(class), page+1)
			}
			chunk := members[page*perSheet : min(len(members), (page+1)*perSheet)]
			if err := writePNG(filepath.Join(dir, name), contactSheet(d, chunk)); err != nil {
				return fmt.Errorf("contact sheets: %w", err)
			}
		}
	}
	return nil
}

func contactSheet(d *Dataset, indices []int) *image.RGBA {
	w, h := d.Width, d.Height
	cellW, cellH := w+contactGap, h+contactGap
	cols := min(contactColumns, len(indices))
	rows := (len(indices) + cols - 1) / cols
	sheet := image.NewRGBA(image.Rect(0, 0, cols*cellW+contactGap, rows*cellH+contactGap))
	for i := range sheet.Pix {
		sheet.Pix[i] = 255 // white background
	}
	red := color.RGBA{220, 0, 0, 255}
	for k, i := range indices {
		x0, y0 := contactGap+(k%cols)*cellW, contactGap+(k/cols)*cellH
		if d.Results[i].Outcome == OutcomeFallback {
			frame := image.Rect(x0-2, y0-2, x0+w+2, y0+h+2)
			for y := frame.Min.Y; y < frame.Max.Y; y++ {
				for x := frame.Min.X; x < frame.Max.X; x++ {
					sheet.SetRGBA(x, y, red)
				}
			}
		}
		crop := d.Crops[i]
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				p := crop[3*(y*w+x):]
				sheet.SetRGBA(x0+x, y0+y, color.RGBA{p[0], p[1], p[2], 255})
			}
		}
	}
	return sheet
}

func writePNG(path string, img image.Image) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return f.Close()
}
