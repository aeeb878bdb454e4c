package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/emotions-dev/emotions/preprocess"
	"github.com/emotions-dev/emotions/train"
)

func trainCommand() *cli.Command {
	d := train.DefaultConfig()
	return &cli.Command{
		Name:  "train",
		Usage: "train a model on class folders with the seed's recipe and Keras' callbacks",
		Description: "DATA holds train/ and valid/, each with one folder per class (or give --train and --valid).\n" +
			"The run directory gets best/ (best SavedModel by the monitor), last/ (resumable state), history.csv,\n" +
			"history.json, loss.png, accuracy.png and summary.json. Ctrl-C saves last/ and exits; --resume RUN continues.",
		Flags: append(dataFlags(),
			&cli.StringFlag{Name: "data", Aliases: []string{"d"}, EnvVars: []string{"EMOTIONS_DATA"}, Usage: "dataset directory with train/ and valid/ class folders"},
			&cli.StringFlag{Name: "train", Usage: "training class folders (instead of DATA/train)"},
			&cli.StringFlag{Name: "valid", Usage: "validation class folders (instead of DATA/valid)"},
			modelFlag(false),
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, EnvVars: []string{"EMOTIONS_RUN"}, Usage: "run directory to write"},
			&cli.StringFlag{Name: "resume", Usage: "continue the run in this directory from its last/ state"},
			&cli.IntFlag{Name: "epochs", Value: d.Epochs, Usage: "epochs to train (with --resume: the new total)"},
			&cli.IntFlag{Name: "batch-size", Value: d.BatchSize, Usage: "images per step"},
			&cli.IntFlag{Name: "steps-per-epoch", Usage: "steps per epoch (0 = n // batch, as the seed's fit)"},
			&cli.BoolFlag{Name: "remainder", Usage: "make each epoch one pass over the data with a last partial batch"},
			&cli.Uint64Flag{Name: "seed", Usage: "seed of the batch order and augmentation"},
			&cli.BoolFlag{Name: "augment", Usage: "augment training images (flip, small rotation/shift/zoom, brightness/contrast)"},
			&cli.StringFlag{Name: "class-weights", Usage: "balanced: weight samples by n / (k * n_class), for scarce classes"},
			&cli.BoolFlag{Name: "person-weights", Usage: "within a class, every person weighs the same however many photos they have (person from the file name: Person_Name_0001.jpg)"},
			&cli.StringFlag{Name: "soft-targets", Usage: "CSV of per-file class distributions for training (header: file and the classes; files relative to the training folder), e.g. a teacher's probabilities to distil; unlisted files keep one-hot labels"},
			&cli.BoolFlag{Name: "valid-subset", Usage: "the validation folders may lack some of the model's classes (e.g. a model of a teacher's 7 classes validated on the 4 that matter); validation metrics cover the classes present"},
			&cli.Float64Flag{Name: "label-smoothing", Usage: "label smoothing of the one-hot targets (0..1)"},
			&cli.Float64Flag{Name: "learning-rate", Usage: "initial learning rate (0 = the model's, Adam 1e-3 by default)"},
			&cli.StringFlag{Name: "monitor", Value: d.Callbacks.Monitor, Usage: "quantity the callbacks watch (val_loss, val_accuracy, loss, accuracy)"},
			&cli.StringFlag{Name: "mode", Value: string(d.Callbacks.Mode), Usage: "auto, min or max (Keras' rule)"},
			&cli.IntFlag{Name: "patience", Value: d.Callbacks.Patience, Usage: "EarlyStopping patience in epochs"},
			&cli.Float64Flag{Name: "min-delta", Usage: "EarlyStopping min_delta"},
			&cli.BoolFlag{Name: "restore-best-weights", Usage: "EarlyStopping: end with the best epoch's weights"},
			&cli.IntFlag{Name: "start-from-epoch", Usage: "EarlyStopping: epochs to wait before monitoring"},
			&cli.BoolFlag{Name: "no-early-stopping", Usage: "run every epoch"},
			&cli.Float64Flag{Name: "reduce-lr-factor", Value: d.Callbacks.ReduceLRFactor, Usage: "ReduceLROnPlateau factor"},
			&cli.IntFlag{Name: "reduce-lr-patience", Value: d.Callbacks.ReduceLRPatience, Usage: "ReduceLROnPlateau patience"},
			&cli.IntFlag{Name: "reduce-lr-cooldown", Usage: "ReduceLROnPlateau cooldown"},
			&cli.Float64Flag{Name: "min-lr", Value: d.Callbacks.MinLR, Usage: "ReduceLROnPlateau min_lr"},
			&cli.BoolFlag{Name: "no-reduce-lr", Usage: "keep the learning rate fixed"},
			&cli.BoolFlag{Name: "save-every-epoch", Usage: "ModelCheckpoint without save_best_only (best/ then holds the last epoch)"},
			&cli.BoolFlag{Name: "deterministic", Usage: "ask TensorFlow for deterministic ops (TF_DETERMINISTIC_OPS=1): reproducible, slower"},
			&cli.BoolFlag{Name: "json", Usage: "print summary.json at the end (epoch lines go to stderr)"},
		),
		Action: runTrain,
	}
}

func runTrain(c *cli.Context) error {
	if c.Bool("deterministic") {
		os.Setenv("TF_DETERMINISTIC_OPS", "1")
	}
	spec, resume, err := trainSpec(c)
	if err != nil {
		return err
	}
	if err := train.CheckWritable(spec.out); err != nil {
		return err
	}
	model, err := openModel(c, spec.model)
	if err != nil {
		return err
	}
	defer model.Close()
	var soft *train.SoftTargets // read before the hours of preprocessing and training
	if spec.cfg.SoftTargets != "" {
		if soft, err = train.ReadSoftTargets(spec.cfg.SoftTargets, model.Meta.Classes); err != nil {
			return err
		}
	}
	prep, err := newPreprocessor(c, model.Meta)
	if err != nil {
		return err
	}
	trainSet, err := loadDataset(c, prep, spec.train, model.Meta.Classes, "train", false)
	if err != nil {
		return err
	}
	validSet, err := loadDataset(c, prep, spec.valid, model.Meta.Classes, "valid", spec.cfg.ValidSubset)
	if errors.Is(err, preprocess.ErrClassMissing) {
		return fmt.Errorf("%w (--valid-subset accepts validation folders that cover only some classes)", err)
	}
	if err != nil {
		return err
	}
	if len(validSet.Labels) == 0 {
		return fmt.Errorf("%s: no usable validation image of any of the classes %s", spec.valid, strings.Join(model.Meta.Classes, ", "))
	}
	logOut := os.Stdout
	if c.Bool("json") {
		logOut = os.Stderr
	}
	if err := checkResumedData(resume, "train", spec.train, len(trainSet.Labels)); err != nil {
		return err
	}
	if err := checkResumedData(resume, "valid", spec.valid, len(validSet.Labels)); err != nil {
		return err
	}
	settings := recordedDataPaths(spec.out, map[string]string{"train": spec.train, "valid": spec.valid})
	settings["model"], settings["train_images"], settings["valid_images"] = spec.model, len(trainSet.Labels), len(validSet.Labels)
	if resume != nil {
		settings["model"] = resume.Settings["model"] // the model the run started from, not its last/
	}
	targets, err := softTargetRows(soft, spec.train, trainSet)
	if err != nil {
		return err
	}
	run := &train.Run{
		Model: model, Train: trainSet, Valid: validSet, Targets: targets, Config: spec.cfg, Out: spec.out,
		Settings: settings,
		Log:      logOut, Progress: terminalOrNil(os.Stderr),
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	summary, err := run.Execute(ctx, resume)
	if errors.Is(err, train.ErrInterrupted) {
		return cli.Exit(fmt.Sprintf("emotions: %v (run: %s)", err, spec.out), 130)
	}
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return printJSON(summary)
	}
	how := summary.StopReason
	if !strings.HasPrefix(how, "completed") {
		how = fmt.Sprintf("%s, after %d epochs", how, summary.EpochsRun)
	}
	fmt.Printf("%s; best epoch %d", how, summary.BestEpoch)
	if summary.BestValLoss != nil && summary.BestValAccuracy != nil {
		fmt.Printf(" (val_loss %.4f, val_accuracy %.4f)", *summary.BestValLoss, *summary.BestValAccuracy)
	}
	fmt.Printf("\nbest model: %s\nplots: %s, %s\n", summary.Best, filepath.Join(spec.out, "loss.png"), filepath.Join(spec.out, "accuracy.png"))
	return nil
}

type trainPaths struct {
	train, valid, model, out string
	cfg                      train.Config
}

// trainSpec reads the flags, or, with --resume, the interrupted run's own settings (flags
// given explicitly still win for --epochs).
func trainSpec(c *cli.Context) (trainPaths, *train.State, error) {
	if dir := c.String("resume"); dir != "" {
		st, err := train.LoadState(dir)
		if err != nil {
			return trainPaths{}, nil, err
		}
		p := trainPaths{out: dir, model: train.LastDir(dir), cfg: st.Config}
		given := givenDataPaths(c)
		for _, d := range []struct {
			key string
			to  *string
		}{{"train", &p.train}, {"valid", &p.valid}} {
			if *d.to, err = resumeDataPath(dir, d.key, given[d.key], st.Settings); err != nil {
				return p, nil, err
			}
		}
		if c.IsSet("epochs") {
			p.cfg.Epochs = c.Int("epochs")
			st.Config.Epochs = p.cfg.Epochs
		}
		return p, st, nil
	}
	given := givenDataPaths(c)
	p := trainPaths{model: c.String("model"), out: c.String("out"), train: given["train"], valid: given["valid"]}
	if p.model == "" {
		return p, nil, usageError("train needs --model (a directory from `emotions new-model`)")
	}
	if p.out == "" {
		return p, nil, usageError("train needs --out RUN_DIR")
	}
	if p.train == "" || p.valid == "" {
		return p, nil, usageError("train needs --data DIR (with train/ and valid/) or --train and --valid")
	}
	for _, dir := range []string{p.train, p.valid} {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return p, nil, usageError("data directory %s does not exist (DATA needs train/ and valid/ class folders)", dir)
		}
	}
	cfg := train.DefaultConfig()
	cfg.Epochs, cfg.BatchSize, cfg.StepsPerEpoch = c.Int("epochs"), c.Int("batch-size"), c.Int("steps-per-epoch")
	cfg.Remainder, cfg.Seed = c.Bool("remainder"), c.Uint64("seed")
	if c.Bool("augment") {
		a := preprocess.DefaultAugment()
		cfg.Augment = &a
	}
	cfg.ClassWeights, cfg.LabelSmoothing, cfg.LearningRate = c.String("class-weights"), c.Float64("label-smoothing"), c.Float64("learning-rate")
	cfg.SoftTargets, cfg.ValidSubset, cfg.PersonWeights = c.String("soft-targets"), c.Bool("valid-subset"), c.Bool("person-weights")
	cb := &cfg.Callbacks
	cb.Monitor, cb.Mode = c.String("monitor"), train.Mode(c.String("mode"))
	cb.EarlyStopping, cb.Patience, cb.MinDelta = !c.Bool("no-early-stopping"), c.Int("patience"), c.Float64("min-delta")
	cb.RestoreBestWeights, cb.StartFromEpoch = c.Bool("restore-best-weights"), c.Int("start-from-epoch")
	cb.ReduceLR, cb.ReduceLRFactor, cb.ReduceLRPatience = !c.Bool("no-reduce-lr"), c.Float64("reduce-lr-factor"), c.Int("reduce-lr-patience")
	cb.ReduceLRCooldown, cb.MinLR = c.Int("reduce-lr-cooldown"), c.Float64("min-lr")
	cb.SaveBestOnly = !c.Bool("save-every-epoch")
	if err := cfg.Validate(); err != nil {
		return p, nil, usageError("%v", err)
	}
	p.cfg = cfg
	return p, nil, nil
}

// givenDataPaths are the training and validation folders the flags name: --train and --valid,
// else DATA/train and DATA/valid ("" when neither is given).
func givenDataPaths(c *cli.Context) map[string]string {
	paths := map[string]string{"train": c.String("train"), "valid": c.String("valid")}
	if data := c.String("data"); data != "" {
		for key, p := range paths {
			if p == "" {
				paths[key] = filepath.Join(data, key)
			}
		}
	}
	return paths
}

// recordedDataPaths are what a run records of its data folders for --resume: each as an
// absolute path and relative to the run directory, so a run directory moved together with its
// data (an experiment's directory, a copied workspace) still finds it.
func recordedDataPaths(run string, paths map[string]string) map[string]any {
	rec := map[string]any{}
	absRun, errRun := filepath.Abs(run)
	for key, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			abs = p
		}
		rec[key] = abs
		if errRun == nil && err == nil {
			if rel, err := filepath.Rel(absRun, abs); err == nil {
				rec[key+"_from_run"] = rel
			}
		}
	}
	return rec
}

// resumeDataPath is where an interrupted run's training or validation folder is now: the one
// given with --resume (the data moved on its own), else the recorded absolute path, else the
// recorded path relative to the run directory (both moved together).
func resumeDataPath(run, key, given string, settings map[string]any) (string, error) {
	isDir := func(p string) bool { st, err := os.Stat(p); return err == nil && st.IsDir() }
	if given != "" {
		if !isDir(given) {
			return "", usageError("%s folder %s does not exist", key, given)
		}
		return given, nil
	}
	recorded, _ := settings[key].(string)
	if recorded != "" && isDir(recorded) {
		return recorded, nil
	}
	if rel, _ := settings[key+"_from_run"].(string); rel != "" {
		if p := filepath.Join(run, rel); isDir(p) {
			return p, nil
		}
	}
	if recorded == "" {
		return "", usageError("resume %s: the run does not record its %s folder: give --data (or --train and --valid)", run, key)
	}
	return "", usageError("resume %s: its %s folder %s is gone (moved?): give --data (or --train and --valid) where it is now", run, key, recorded)
}

// checkResumedData refuses a resumed run whose data no longer has the image count it was
// trained on: continuing on other data would make its history and callbacks meaningless.
func checkResumedData(st *train.State, key, dir string, n int) error {
	if st == nil {
		return nil
	}
	recorded, ok := st.Settings[key+"_images"].(float64) // read back from JSON
	if !ok {
		return nil
	}
	if int(recorded) != n {
		return fmt.Errorf("resume: %s folder %s has %d usable images, the run was trained with %d: not the same data", key, dir, n, int(recorded))
	}
	return nil
}

// softTargetRows matches soft targets (nil: none) to the training set's files.
func softTargetRows(t *train.SoftTargets, root string, trainSet *preprocess.Dataset) ([][]float32, error) {
	if t == nil {
		return nil, nil
	}
	rows, matched, err := t.Rows(root, trainSet.Files)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "soft targets: %d of %d training images (%s)", matched, len(rows), t.Path)
	if unmatched := t.Len() - matched; unmatched > 0 {
		fmt.Fprintf(os.Stderr, "; %d rows name no training image (rejected or absent)", unmatched)
	}
	fmt.Fprintln(os.Stderr)
	return rows, nil
}
