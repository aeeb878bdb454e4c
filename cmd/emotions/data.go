package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/emotions-dev/emotions/classify"
	"github.com/emotions-dev/emotions/internal/termui"
	"github.com/emotions-dev/emotions/plots"
	"github.com/emotions-dev/emotions/preprocess"
	"github.com/emotions-dev/emotions/savedmodel"
	"github.com/emotions-dev/emotions/train"
)

// dataFlags are shared by every command that reads images.
func dataFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "workers", EnvVars: []string{"EMOTIONS_WORKERS"}, Usage: "preprocessing workers (0 = all cores)"},
		&cli.StringFlag{Name: "cache", EnvVars: []string{"EMOTIONS_CACHE"}, Value: defaultCacheDir(), Usage: "cache of preprocessed crops (keyed by file content and settings); empty to disable"},
		&cli.StringFlag{Name: "crop", EnvVars: []string{"EMOTIONS_CROP"}, Usage: "how photos become inputs: face, center (no detection) or none (the whole photo resized); default: the model's (new-model --crop)"},
		&cli.Int64Flag{Name: "max-megapixels", Value: preprocess.DefaultMaxPixels / 1_000_000, EnvVars: []string{"EMOTIONS_MAX_MEGAPIXELS"}, Usage: "refuse images declaring more pixels than this (decompression bombs)"},
	}
}

func defaultCacheDir() string {
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "emotions", "preprocess")
	}
	return ""
}

// preprocessOptions are the model's preprocessing options with the data flags applied.
func preprocessOptions(c *cli.Context, meta savedmodel.Metadata) preprocess.Options {
	opts := preprocess.OptionsFor(meta)
	if mp := c.Int64("max-megapixels"); mp > 0 {
		opts.MaxPixels = mp * 1_000_000
	}
	if crop := c.String("crop"); crop != "" {
		opts.Crop = crop // preprocess.New refuses an unknown one
	}
	return opts
}

func newPreprocessor(c *cli.Context, meta savedmodel.Metadata) (*preprocess.Preprocessor, error) {
	return preprocess.New(preprocessOptions(c, meta))
}

func loadOptions(c *cli.Context, desc string) preprocess.LoadOptions {
	return preprocess.LoadOptions{Workers: c.Int("workers"), CacheDir: c.String("cache"), Progress: termui.Preprocess(os.Stderr, desc)}
}

// loadDataset reads DIR/<class>/* and reports rejected files on stderr, naming each.
func loadDataset(c *cli.Context, prep *preprocess.Preprocessor, dir string, classes []string, desc string, allowEmpty bool) (*preprocess.Dataset, error) {
	o := loadOptions(c, desc)
	o.AllowEmptyClasses = allowEmpty
	d, err := preprocess.LoadClassDirs(dir, classes, prep, o)
	if err != nil {
		return nil, err
	}
	for _, r := range d.Rejected {
		fmt.Fprintf(os.Stderr, "skipped %v\n", r.Err)
	}
	counts := make([]string, len(classes))
	for i, name := range classes {
		counts[i] = fmt.Sprintf("%s %d", name, d.Counts[i])
	}
	fmt.Fprintf(os.Stderr, "%s: %d images (%s), %d faces found, %d centre-crop fallbacks, %d rejected\n",
		dir, len(d.Labels), strings.Join(counts, ", "), d.FacesFound, d.Fallbacks, len(d.Rejected))
	return d, nil
}

// modelMeta reads the metadata of --model when given, else the defaults (80x80, [0,1]).
func modelMeta(path string) (savedmodel.Metadata, error) {
	if path == "" {
		return savedmodel.Default(), nil
	}
	return savedmodel.ReadMetadata(train.ResolveModel(path))
}

func preprocessCommand() *cli.Command {
	return &cli.Command{
		Name:  "preprocess",
		Usage: "turn class folders into the exact tensors the model is fed, as a NumPy .npz",
		Description: "Writes x (float32 [n,S,S,3], the model's normalisation), y (int32 class index), files, outcome,\n" +
			"face_box and face_score. Without --model: 80x80, [0,1], classes angry,happy,normal,sad.",
		Flags: append(dataFlags(),
			&cli.StringFlag{Name: "data", Aliases: []string{"d"}, Required: true, Usage: "directory with one folder per class"},
			modelFlag(false),
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Required: true, Usage: "the .npz file to write"},
			&cli.StringFlag{Name: "crops", Usage: "also write PNG contact sheets of the crops per class into this directory"},
		),
		Action: func(c *cli.Context) error {
			meta, err := modelMeta(c.String("model"))
			if err != nil {
				return err
			}
			prep, err := newPreprocessor(c, meta)
			if err != nil {
				return err
			}
			d, err := loadDataset(c, prep, c.String("data"), meta.Classes, "preprocess", true)
			if err != nil {
				return err
			}
			in := preprocess.InputOf(meta)
			if err := preprocess.WriteNPZ(c.String("out"), d, in); err != nil {
				return err
			}
			fmt.Printf("wrote %s: x [%d,%d,%d,%d] float32 (%s normalisation)\n", c.String("out"), len(d.Labels), in.Height, in.Width, in.Channels, meta.Normalization.Mode)
			if dir := c.String("crops"); dir != "" {
				if err := preprocess.WriteContactSheets(dir, d); err != nil {
					return err
				}
				fmt.Printf("contact sheets in %s\n", dir)
			}
			return nil
		},
	}
}

func evaluateCommand() *cli.Command {
	return &cli.Command{
		Name:  "evaluate",
		Usage: "accuracy, loss, per-class precision/recall/F1, confusion matrix and a 95% interval on class folders",
		Flags: append(dataFlags(),
			modelFlag(true),
			&cli.StringFlag{Name: "data", Aliases: []string{"d"}, Required: true, EnvVars: []string{"EMOTIONS_EVAL_DATA"}, Usage: "directory with one folder per class (e.g. faces4/test); for a model of any inputs a NumPy .npz archive named as its inputs and outputs (prints Keras' evaluate logs)"},
			&cli.IntFlag{Name: "batch-size", Value: 64, Usage: "images per session run"},
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
			&cli.StringFlag{Name: "confusion", Usage: "also draw the confusion matrix into this PNG: counts, and rows normalised to recall per class"},
		),
		Action: func(c *cli.Context) error {
			if isArrayFile(c.String("data")) {
				m, err := openModel(c, c.String("model"))
				if err != nil {
					return err
				}
				defer m.Close()
				return evaluateArrays(c, m, c.String("data"))
			}
			m, cl, err := openClassifier(c)
			if err != nil {
				return err
			}
			defer m.Close()
			report, err := evaluateDir(c, cl, c.String("data"))
			if err != nil {
				return err
			}
			if path := c.String("confusion"); path != "" {
				if err := plots.PlotConfusion(path, report); err != nil {
					return err
				}
			}
			if c.Bool("json") {
				return printJSON(report)
			}
			printReport(report)
			if path := c.String("confusion"); path != "" {
				fmt.Printf("\nconfusion matrix: %s (%s)\n", path, plots.ConfusionPanels)
			}
			return nil
		},
	}
}

// evaluateDir scores the classifier on the class folders of dir: what `emotions evaluate`
// and `emotions train --test` print.
func evaluateDir(c *cli.Context, cl *classify.Classifier, dir string) (*classify.Report, error) {
	d, err := loadDataset(c, cl.Prep, dir, cl.Classes, "evaluate", true)
	if err != nil {
		return nil, err
	}
	if len(d.Labels) == 0 {
		return nil, fmt.Errorf("evaluate: no usable image in %s", dir)
	}
	return cl.Evaluate(c.Context, d)
}

func printReport(r *classify.Report) {
	fmt.Printf("accuracy %.4f (95%% CI %.4f-%.4f) on %d images, loss %.4f\n", r.Accuracy, r.AccuracyCI95[0], r.AccuracyCI95[1], r.N, r.Loss)
	fmt.Printf("\n%-10s %9s %9s %9s %6s\n", "class", "precision", "recall", "f1", "n")
	for _, name := range r.Classes {
		pc := r.PerClass[name]
		fmt.Printf("%-10s %9.4f %9.4f %9.4f %6d\n", name, pc.Precision, pc.Recall, pc.F1, pc.N)
	}
	fmt.Printf("\nconfusion (rows: true, columns: predicted)\n%-10s", "")
	for _, name := range r.Classes {
		fmt.Printf(" %7s", name)
	}
	fmt.Println()
	for i, name := range r.Classes {
		fmt.Printf("%-10s", name)
		for _, v := range r.Confusion[i] {
			fmt.Printf(" %7d", v)
		}
		fmt.Println()
	}
	fmt.Printf("\nfaces found %d, centre-crop fallbacks %d, rejected %d\n", r.FacesFound, r.Fallbacks, len(r.Rejected))
	for _, rej := range r.Rejected {
		fmt.Printf("  %s: %s\n", rej.File, rej.Error)
	}
}
