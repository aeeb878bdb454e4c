package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/emotions-dev/emotions/classify"
	"github.com/urfave/cli/v2"
)

func predictCommand() *cli.Command {
	return &cli.Command{
		Name:      "predict",
		Usage:     `say which emotion a photo shows ("sad"), with class probabilities and the face box`,
		ArgsUsage: "IMAGE_OR_DIR...",
		Description: "Each file gets a label or a one-line error naming it; the others go on. Directories are read\n" +
			"one level deep. The exit status is 0 when every file was handled, non-zero for usage or model errors.",
		Flags: append(dataFlags(),
			modelFlag(true),
			&cli.BoolFlag{Name: "json", Usage: "print a JSON array, one object per file"},
			&cli.StringFlag{Name: "annotate", Usage: "write a copy of each image with the face box and label drawn into this directory"},
			&cli.IntFlag{Name: "batch-size", Value: 64, Usage: "images per session run"},
			&cli.StringFlag{Name: "data", Usage: "a model of any inputs: a NumPy .npz `FILE` of arrays named as its inputs (instead of images)"},
			&cli.StringFlag{Name: "out", Usage: "with --data: the .npz `FILE` to write every output to"},
		),
		Action: func(c *cli.Context) error {
			if data := c.String("data"); data != "" {
				if c.NArg() > 0 {
					return usageError("predict takes --data or images, not both")
				}
				m, err := openModel(c, c.String("model"))
				if err != nil {
					return err
				}
				defer m.Close()
				return predictArrays(c, m, data, c.String("out"))
			}
			if c.NArg() == 0 {
				return usageError("predict needs at least one image or directory")
			}
			files, err := expandInputs(c.Args().Slice())
			if err != nil {
				return err
			}
			m, cl, err := openClassifier(c)
			if err != nil {
				return err
			}
			defer m.Close()
			o := loadOptions(c, "predict")
			o.CacheDir = "" // one-off photos: caching them only fills the disk
			preds, _, err := cl.Files(c.Context, files, o)
			if err != nil {
				return err
			}
			if dir := c.String("annotate"); dir != "" {
				for i, p := range preds {
					if p.Error != nil {
						continue
					}
					if err := annotate(cl.Prep, files[i], dir, p); err != nil {
						fmt.Fprintf(os.Stderr, "annotate %s: %v\n", files[i], err)
					}
				}
			}
			if c.Bool("json") {
				return printJSON(preds)
			}
			for _, p := range preds {
				fmt.Println(predictionLine(p, m.Meta.Classes))
			}
			return nil
		},
	}
}

func predictionLine(p classify.Prediction, classes []string) string {
	if p.Error != nil {
		return fmt.Sprintf("%s: error: %s", p.File, *p.Error)
	}
	var probs []string
	for _, c := range classes {
		probs = append(probs, fmt.Sprintf("%s %.2f", c, p.Probabilities[c]))
	}
	face := "no face found (centre crop)"
	if p.Face != nil {
		face = fmt.Sprintf("face %dx%d at (%d,%d)", p.Face.Width, p.Face.Height, p.Face.X, p.Face.Y)
	}
	return fmt.Sprintf("%s: %s  [%s]  %s", p.File, *p.Label, strings.Join(probs, ", "), face)
}

// expandInputs lists files, reading directories one level deep (sorted, hidden files skipped).
// A path that does not exist stays in the list: it gets its own per-file error.
func expandInputs(args []string) ([]string, error) {
	var files []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil || !st.IsDir() {
			files = append(files, a)
			continue
		}
		entries, err := os.ReadDir(a)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", a, err)
		}
		var names []string
		for _, e := range entries {
			if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
				names = append(names, filepath.Join(a, e.Name()))
			}
		}
		sort.Strings(names)
		files = append(files, names...)
	}
	return files, nil
}
