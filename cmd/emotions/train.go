package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/emotions-dev/emotions/classify"
	"github.com/emotions-dev/emotions/internal/termui"
	"github.com/emotions-dev/emotions/plots"
	"github.com/emotions-dev/emotions/preprocess"
	"github.com/emotions-dev/emotions/recipe"
	"github.com/emotions-dev/emotions/tfgraph"
	"github.com/emotions-dev/emotions/train"
)

func trainCommand() *cli.Command {
	d := recipe.DefaultConfig()
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
			&cli.BoolFlag{Name: "no-shuffle", Usage: "arrays (.npz data): the rows in file order every epoch (Keras' shuffle=False)"},
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
			&cli.StringFlag{Name: "backup-every", Value: "1", Usage: "write last/ (the resume state) every N epochs (a number) or every period (a duration: 10m); it is also written at the end and at once on Ctrl-C"},
			&cli.StringFlag{Name: "test", Usage: "class folders (`DIR`) to evaluate best/ on at the end, in the same process (printed as emotions evaluate does and recorded in summary.json)"},
			&cli.IntFlag{Name: "replicas", Usage: "train as `N` towers, one per device, each on 1/N of every batch (Keras' MirroredStrategy; the model needs new-model --replicas N); 0 = every GPU the session sees when the model has towers for them, else 1"},
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
	start := time.Now()
	model, err := openModel(c, spec.model)
	if err != nil {
		return err
	}
	defer model.Close()
	loadModel := time.Since(start)
	if model.Generic() {
		return runTrainArrays(c, model, spec, resume, loadModel)
	}
	var soft *recipe.SoftTargets // read before the hours of preprocessing and training
	if spec.cfg.SoftTargets != "" {
		if soft, err = recipe.ReadSoftTargets(spec.cfg.SoftTargets, model.Meta.Classes); err != nil {
			return err
		}
	}
	cl, err := classify.New(model, preprocessOptions(c, model.Meta))
	if err != nil {
		return err
	}
	start = time.Now()
	trainSet, validSet, err := loadTrainingData(c, cl, spec, resume)
	if err != nil {
		return err
	}
	preprocessing := time.Since(start)
	targets, err := softTargetRows(soft, spec.train, trainSet)
	if err != nil {
		return err
	}
	in := preprocess.InputOf(model.Meta)
	data := spec.cfg.Data()
	data.Targets = targets
	src, err := recipe.NewDatasetSource(trainSet, in, len(model.Meta.Classes), data)
	if err != nil {
		return err
	}
	valid, err := recipe.DatasetValidation(validSet, in, len(model.Meta.Classes))
	if err != nil {
		return err
	}
	logOut := os.Stdout
	if c.Bool("json") {
		logOut = os.Stderr
	}
	opts, err := spec.cfg.FitOptions(spec.out, resume != nil, logOut)
	if err != nil {
		return usageError("%v", err)
	}
	replicas, err := trainReplicas(c, model)
	if err != nil {
		return err
	}
	opts = append(opts, train.WithReplicas(replicas))
	settings := recipe.RecordDataPaths(spec.out, map[string]string{"train": spec.train, "valid": spec.valid})
	settings["model"], settings["train_images"], settings["valid_images"] = spec.model, len(trainSet.Labels), len(validSet.Labels)
	var history []train.EpochRecord
	if resume != nil {
		settings["model"] = resume.Settings["model"] // the model the run started from, not its last/
		history = resume.History
		opts = append(opts, train.WithResume(resume))
	}
	curves := plots.History(spec.out, history)
	defer curves.Close() // an interrupted or failed run still gets the plots of its epochs
	opts = append(opts, train.WithSettings(settings), train.WithCallbacks(curves))
	if bar := termui.EpochBar(os.Stderr, spec.cfg.Epochs); bar != nil {
		opts = append(opts, train.WithCallbacks(bar))
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var servingWarm chan error
	if spec.test != "" { // the test runs serve: TensorFlow optimises it beside the first step
		servingWarm = make(chan error, 1)
		go func() { servingWarm <- model.WarmUp("serve") }()
	}
	summary, err := train.Fit(ctx, model, src, valid, opts...)
	if servingWarm != nil {
		if werr := <-servingWarm; werr != nil && err == nil {
			err = werr
		}
	}
	if errors.Is(err, train.ErrInterrupted) {
		return interrupted(spec.out)
	}
	if err != nil {
		return err
	}
	summary.Timing.LoadModelS, summary.Timing.PreprocessS = loadModel.Seconds(), preprocessing.Seconds()
	run := recipe.Summary{Summary: summary}
	if spec.test != "" {
		if run.Test, err = testBest(c, model, cl, summary, spec.test, filepath.Join(spec.out, confusionFile)); err != nil {
			return err
		}
	}
	if err := train.WriteSummary(spec.out, run); err != nil {
		return err
	}
	if c.Bool("json") {
		return printJSON(run)
	}
	how := summary.StopReason
	if !strings.HasPrefix(how, "completed") {
		how = fmt.Sprintf("%s, after %d epochs", how, summary.EpochsRun)
	}
	fmt.Printf("%s; best epoch %d", how, summary.BestEpoch)
	if summary.BestValLoss != nil && summary.BestValAccuracy != nil {
		fmt.Printf(" (val_loss %.4f, val_accuracy %.4f)", *summary.BestValLoss, *summary.BestValAccuracy)
	}
	fmt.Printf("\nbest model: %s\nplots: %s, %s\n", summary.Best, filepath.Join(spec.out, plots.LossFile), filepath.Join(spec.out, plots.AccuracyFile))
	if t := run.Test; t != nil {
		fmt.Printf("test: accuracy %.4f (95%% CI %.4f-%.4f) on %d images (%s); confusion matrix: %s (%s)\n", t.Accuracy,
			t.AccuracyCI95[0], t.AccuracyCI95[1], t.N, spec.test, filepath.Join(spec.out, confusionFile), plots.ConfusionPanels)
	}
	return nil
}

// loadTrainingData preprocesses the training and validation folders and checks a resumed
// run still has its data.
func loadTrainingData(c *cli.Context, cl *classify.Classifier, spec trainPaths, resume *train.State) (*preprocess.Dataset, *preprocess.Dataset, error) {
	classes := cl.Classes
	trainSet, err := loadDataset(c, cl.Prep, spec.train, classes, "train", false)
	if err != nil {
		return nil, nil, err
	}
	validSet, err := loadDataset(c, cl.Prep, spec.valid, classes, "valid", spec.cfg.ValidSubset)
	if errors.Is(err, preprocess.ErrClassMissing) {
		return nil, nil, fmt.Errorf("%w (--valid-subset accepts validation folders that cover only some classes)", err)
	}
	if err != nil {
		return nil, nil, err
	}
	if len(validSet.Labels) == 0 {
		return nil, nil, fmt.Errorf("%s: no usable validation image of any of the classes %s", spec.valid, strings.Join(classes, ", "))
	}
	if err := recipe.CheckResumedData(resume, "train", spec.train, len(trainSet.Labels)); err != nil {
		return nil, nil, err
	}
	if err := recipe.CheckResumedData(resume, "valid", spec.valid, len(validSet.Labels)); err != nil {
		return nil, nil, err
	}
	return trainSet, validSet, nil
}

// testBest evaluates the run's best model on dir in this process: best/'s variables are
// restored into the session the run trained (no second model load), then the test folders
// are preprocessed and scored as `emotions evaluate` does, and the confusion matrix is drawn.
// The report is printed unless --json asks for summary.json alone.
func testBest(c *cli.Context, model *tfgraph.Model, cl *classify.Classifier, s *train.Summary, dir, confusion string) (*classify.Report, error) {
	start := time.Now()
	defer func() { s.Timing.TestS = time.Since(start).Seconds() }()
	if s.Best == "" {
		return nil, fmt.Errorf("--test %s: the run saved no best model to evaluate", dir)
	}
	if err := model.Restore(s.Best); err != nil {
		return nil, fmt.Errorf("--test: %w", err)
	}
	report, err := evaluateDir(c, cl, dir)
	if err != nil {
		return nil, fmt.Errorf("--test: %w", err)
	}
	if err := plots.PlotConfusion(confusion, report); err != nil {
		return nil, err
	}
	if !c.Bool("json") {
		fmt.Printf("\ntest split %s, best model (epoch %d):\n", dir, s.BestEpoch)
		printReport(report)
		fmt.Println()
	}
	return report, nil
}

// confusionFile is where train --test draws the test split's confusion matrix, in the run.
const confusionFile = "confusion.png"

type trainPaths struct {
	train, valid, model, out, test string
	cfg                            recipe.Config
}

// trainSpec reads the flags, or, with --resume, the interrupted run's own settings (flags
// given explicitly still win for --epochs).
func trainSpec(c *cli.Context) (trainPaths, *train.State, error) {
	if dir := c.String("resume"); dir != "" {
		st, err := train.LoadState(dir)
		if err != nil {
			return trainPaths{}, nil, err
		}
		cfg, err := recipe.FromState(st)
		if errors.Is(err, recipe.ErrNoRecipe) {
			return trainPaths{}, nil, usageError("resume %s: the run records no recipe (it was not started by `emotions train`): resume it from the program that started it", dir)
		}
		if err != nil {
			return trainPaths{}, nil, fmt.Errorf("resume %s: %w", dir, err)
		}
		p := trainPaths{out: dir, model: train.LastDir(dir), cfg: cfg, test: c.String("test")}
		given := givenDataPaths(c)
		for _, d := range []struct {
			key string
			to  *string
		}{{"train", &p.train}, {"valid", &p.valid}} {
			if *d.to, err = recipe.ResumeDataPath(dir, d.key, given[d.key], st.Settings); err != nil {
				return p, nil, usageError("%v (--data DIR, or --train and --valid, say where it is)", err)
			}
		}
		if c.IsSet("epochs") {
			p.cfg.Epochs = c.Int("epochs")
		}
		if c.IsSet("backup-every") {
			if p.cfg.Backup, err = parseBackup(c.String("backup-every")); err != nil {
				return p, nil, err
			}
		}
		return p, st, checkTestDir(p.test)
	}
	given := givenDataPaths(c)
	p := trainPaths{model: c.String("model"), out: c.String("out"), train: given["train"], valid: given["valid"], test: c.String("test")}
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
		if isArrayFile(dir) {
			if _, err := os.Stat(dir); err != nil {
				return p, nil, usageError("%v", err)
			}
		} else if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return p, nil, usageError("data directory %s does not exist (DATA needs train/ and valid/ class folders; a model of any inputs takes --train x.npz --valid y.npz)", dir)
		}
	}
	cfg := recipe.DefaultConfig()
	cfg.Epochs, cfg.BatchSize, cfg.StepsPerEpoch = c.Int("epochs"), c.Int("batch-size"), c.Int("steps-per-epoch")
	cfg.Remainder, cfg.Seed, cfg.NoShuffle = c.Bool("remainder"), c.Uint64("seed"), c.Bool("no-shuffle")
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
	var err error
	if cfg.Backup, err = parseBackup(c.String("backup-every")); err != nil {
		return p, nil, err
	}
	if err := cfg.Validate(); err != nil {
		return p, nil, usageError("%v", err)
	}
	p.cfg = cfg
	return p, nil, checkTestDir(p.test)
}

// parseBackup reads --backup-every: a number of epochs or a duration.
func parseBackup(v string) (train.Backup, error) {
	if n, err := strconv.Atoi(v); err == nil && n >= 1 {
		return train.Backup{EveryEpochs: n}, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return train.Backup{Interval: d}, nil
	}
	return train.Backup{}, usageError("--backup-every %q: want a number of epochs (1, 5) or a duration (10m, 1h)", v)
}

// checkTestDir refuses a --test folder that is not there before hours of training.
func checkTestDir(dir string) error {
	if dir == "" {
		return nil
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return usageError("--test %s: no such folder (want one folder per class)", dir)
	}
	return nil
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

// softTargetRows matches soft targets (nil: none) to the training set's files.
func softTargetRows(t *recipe.SoftTargets, root string, trainSet *preprocess.Dataset) ([][]float32, error) {
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

// trainReplicas is --replicas, or by default every GPU the session sees (MirroredStrategy's
// default) when the model has towers for that many; 1 otherwise, said on stderr when GPUs
// go unused.
func trainReplicas(c *cli.Context, m *tfgraph.Model) (int, error) {
	if n := c.Int("replicas"); n != 0 {
		if n < 0 {
			return 0, usageError("--replicas %d: want 1 or more (0: every GPU)", n)
		}
		if n > 1 && !slices.Contains(m.ReplicaCounts(), n) {
			return 0, usageError("--replicas %d: %s has no %d-tower step (it has %v): export it with `emotions new-model --replicas %d`",
				n, m.Dir, n, m.ReplicaCounts(), n)
		}
		return n, nil
	}
	gpus := len(m.GPUs())
	if gpus < 2 {
		return 1, nil
	}
	if slices.Contains(m.ReplicaCounts(), gpus) {
		return gpus, nil
	}
	fmt.Fprintf(os.Stderr, "emotions: the session sees %d GPUs but the model has no %d-tower step (it has %v): training on one; export it with `new-model --replicas %d` to use them all\n",
		gpus, gpus, m.ReplicaCounts(), gpus)
	return 1, nil
}

// interrupted is train's exit after Ctrl-C or SIGTERM: last/ holds the run, and the message
// says how to continue it.
func interrupted(run string) error {
	return cli.Exit(fmt.Sprintf("emotions: interrupted: the run was saved to %s; continue it with `emotions train --resume %s`",
		train.LastDir(run), run), 130)
}
