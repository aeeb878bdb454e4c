package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/emotions-dev/emotions/internal/atomicfs"
	"github.com/emotions-dev/emotions/preprocess"
	"github.com/emotions-dev/emotions/tfgraph"
)

// Config is the training recipe. Defaults (DefaultConfig) are the seed's: 50 epochs of
// batch 64, steps_per_epoch = n // 64 over an endless reshuffled stream.
type Config struct {
	Epochs        int `json:"epochs"`
	BatchSize     int `json:"batch_size"`
	StepsPerEpoch int `json:"steps_per_epoch"` // 0: n // batch_size, as the seed's fit did
	// Remainder makes each epoch one pass over the data whose last batch is partial, instead
	// of full batches drawn from an endless stream (Keras' flow_from_directory).
	Remainder    bool                `json:"remainder"`
	Seed         uint64              `json:"seed"`
	Augment      *preprocess.Augment `json:"augment,omitempty"`
	ClassWeights string              `json:"class_weights"` // "" or "balanced"
	// PersonWeights makes every person within a class weigh the same, however many photos
	// of them there are (the person from the file name: preprocess.PersonOf), so that 9
	// people with 16 photos each do not outweigh 10 people with one.
	PersonWeights  bool    `json:"person_weights,omitempty"`
	LabelSmoothing float64 `json:"label_smoothing"` // as Keras' CategoricalCrossentropy(label_smoothing)
	LearningRate   float64 `json:"learning_rate"`   // 0: keep the model's
	// SoftTargets is the CSV the run's soft targets came from (ReadSoftTargets), recorded
	// so --resume reads it again; Run.Targets holds them.
	SoftTargets string `json:"soft_targets,omitempty"`
	// ValidSubset lets the validation folders cover only some of the model's classes: a
	// model pre-trained on more classes than the task (a teacher's full output) validated
	// on the classes that matter. Validation metrics are then over those classes only.
	ValidSubset bool           `json:"valid_subset,omitempty"`
	Callbacks   CallbackConfig `json:"callbacks"`
}

// CallbackConfig selects and configures the Keras callbacks the loop runs.
type CallbackConfig struct {
	Monitor string `json:"monitor"` // for all three, as the seed did
	Mode    Mode   `json:"mode"`

	EarlyStopping      bool     `json:"early_stopping"`
	Patience           int      `json:"patience"`
	MinDelta           float64  `json:"min_delta"`
	Baseline           *float64 `json:"baseline,omitempty"`
	RestoreBestWeights bool     `json:"restore_best_weights"`
	StartFromEpoch     int      `json:"start_from_epoch"`

	ReduceLR         bool    `json:"reduce_lr"`
	ReduceLRFactor   float64 `json:"reduce_lr_factor"`
	ReduceLRPatience int     `json:"reduce_lr_patience"`
	ReduceLRMinDelta float64 `json:"reduce_lr_min_delta"`
	ReduceLRCooldown int     `json:"reduce_lr_cooldown"`
	MinLR            float64 `json:"min_lr"`

	SaveBestOnly bool `json:"save_best_only"`
}

// DefaultConfig is the seed's recipe: EarlyStopping(val_loss, patience 10),
// ModelCheckpoint(val_loss, save_best_only), ReduceLROnPlateau(val_loss, factor 0.2,
// patience 5, min_lr 1e-4); 50 epochs; batch 64. Other callback arguments keep Keras' defaults.
func DefaultConfig() Config {
	return Config{
		Epochs: 50, BatchSize: 64,
		Callbacks: CallbackConfig{
			Monitor: "val_loss", Mode: ModeAuto,
			EarlyStopping: true, Patience: 10,
			ReduceLR: true, ReduceLRFactor: 0.2, ReduceLRPatience: 5, ReduceLRMinDelta: 1e-4, MinLR: 1e-4,
			SaveBestOnly: true,
		},
	}
}

// Validate reports the first unusable setting.
func (c Config) Validate() error {
	switch {
	case c.Epochs < 1:
		return fmt.Errorf("epochs %d: want >= 1", c.Epochs)
	case c.BatchSize < 1:
		return fmt.Errorf("batch size %d: want >= 1", c.BatchSize)
	case c.StepsPerEpoch < 0:
		return fmt.Errorf("steps per epoch %d: want >= 0", c.StepsPerEpoch)
	case c.ClassWeights != "" && c.ClassWeights != "balanced":
		return fmt.Errorf("class weights %q: want balanced or nothing", c.ClassWeights)
	case c.LabelSmoothing < 0 || c.LabelSmoothing >= 1:
		return fmt.Errorf("label smoothing %g: want 0 <= s < 1", c.LabelSmoothing)
	case c.LearningRate < 0 || math.IsNaN(c.LearningRate) || math.IsInf(c.LearningRate, 0):
		return fmt.Errorf("learning rate %g: want a positive number", c.LearningRate)
	}
	return nil
}

// Run is one training run: a model, its data, the recipe and where it all goes.
type Run struct {
	Model *tfgraph.Model
	Train *preprocess.Dataset
	Valid *preprocess.Dataset
	// Targets, if not nil, holds a distribution over the classes for each training
	// example (parallel to Train.Labels; nil rows keep the one-hot label): see SoftTargets.
	Targets [][]float32
	Config  Config
	Out     string // the run directory
	// Settings are extra facts recorded in summary.json and the resume state (data paths...).
	Settings map[string]any
	// Log receives Keras verbose=2 style epoch lines; Progress the per-epoch progress bar
	// (nil: none).
	Log      io.Writer
	Progress io.Writer
	// AfterStep, if set, is called after every train step with the 0-based epoch and the
	// number of steps done in it (tests use it to interrupt at a precise point).
	AfterStep func(epoch, step int)
}

// ErrInterrupted is returned when a signal stopped the run after saving RUN/last.
var ErrInterrupted = errors.New("interrupted: the run was saved to RUN/last; continue it with --resume")

// ErrNonFinite is returned when a step's loss is NaN or Inf.
var ErrNonFinite = errors.New("non-finite loss")

// epochLogKeys are the Keras logs the callbacks and history.csv see, in Keras' names.
var epochLogKeys = []string{"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}

// Execute trains until the epochs run out, a callback stops it, ctx is cancelled (then
// RUN/last is saved and ErrInterrupted returned) or a loss goes non-finite. It always leaves
// history, plots and summary.json for what ran. resume, if non-nil, continues a saved run.
func (r *Run) Execute(ctx context.Context, resume *State) (*Summary, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	start := time.Now()
	paths := runPaths(r.Out)
	st := resume
	if st == nil {
		st = &State{Config: r.Config, Settings: r.Settings}
		if r.Config.LearningRate > 0 {
			if _, err := r.Model.SetLearningRate(r.Config.LearningRate); err != nil {
				return nil, fmt.Errorf("set learning rate: %w", err)
			}
		}
	}
	if resume != nil && r.Settings != nil {
		st.Settings = r.Settings // where the data is now: a resumed run may have found it moved
	}
	cbs, ckpt, early, err := buildCallbacks(r.Config, paths, resume != nil, r.Log)
	if err != nil {
		return nil, err
	}
	if resume != nil {
		if err := cbs.UnmarshalState(resume.Callbacks); err != nil {
			return nil, fmt.Errorf("resume: %w", err)
		}
	}
	model := sessionModel{m: r.Model, st: st, latest: &savedCopy{}}
	if err := cbs.OnTrainBegin(model); err != nil {
		return nil, err
	}

	feeder := newFeeder(r.Train, r.Targets, r.Config, r.Model.Meta.Normalization, len(r.Model.Meta.Classes))
	valid := newEvalSet(r.Valid, r.Model.Meta.Normalization, len(r.Model.Meta.Classes), r.Config.BatchSize)
	steps := feeder.stepsPerEpoch()
	summary := &Summary{Settings: r.Config, Extra: r.Settings, Versions: versions(r.Model)}
	var runErr error
	imagesSeen, trainSeconds := 0, 0.0

	for st.Epoch < r.Config.Epochs {
		epochStart := time.Now()
		bar := newEpochBar(r.Progress, st.Epoch, r.Config.Epochs, steps)
		batches := feeder.epoch(ctx, st.Stream, st.Step, steps, st.GlobalStep)
		for b := range batches {
			res, err := r.Model.TrainStep(b.x, b.labels, b.weights, b.n)
			if err != nil {
				runErr = fmt.Errorf("epoch %d step %d: %w", st.Epoch+1, st.Step+1, err)
				break
			}
			if math.IsNaN(res.Loss) || math.IsInf(res.Loss, 0) {
				runErr = fmt.Errorf("epoch %d step %d: %w (%v): the best model so far is kept in %s",
					st.Epoch+1, st.Step+1, ErrNonFinite, res.Loss, paths.best)
				break
			}
			st.Partial.add(res, b.n, b.weightSum)
			st.Stream, st.Step, st.GlobalStep = b.streamAfter, st.Step+1, st.GlobalStep+1
			imagesSeen += b.n
			bar.step(st.Partial)
			if r.AfterStep != nil {
				r.AfterStep(st.Epoch, st.Step)
			}
			if ctx.Err() != nil {
				break
			}
		}
		feeder.drain(batches)
		bar.finish()
		st.Seconds += time.Since(epochStart).Seconds()
		trainSeconds += time.Since(epochStart).Seconds()
		if runErr != nil {
			break
		}
		if ctx.Err() != nil && st.Step < steps {
			runErr = ErrInterrupted
			break
		}

		logs, err := r.epochLogs(st, valid)
		if err != nil {
			runErr = fmt.Errorf("epoch %d: %w", st.Epoch+1, err)
			break
		}
		if err := cbs.OnEpochEnd(st.Epoch, logs, model); err != nil {
			runErr = err
			break
		}
		st.History = append(st.History, EpochRecord{Epoch: st.Epoch + 1, Logs: copyLogs(logs), Seconds: st.Seconds})
		r.printEpoch(st, steps)
		st.Epoch, st.Step, st.Partial, st.Seconds = st.Epoch+1, 0, partialEpoch{}, 0
		if cbs.StopTraining() {
			summary.StopReason = fmt.Sprintf("early stopping: %s did not improve for %d epochs", r.Config.Callbacks.Monitor, r.Config.Callbacks.Patience)
			break
		}
		if err := r.saveLast(paths, st, cbs, model); err != nil {
			runErr = err
			break
		}
		if err := writeHistory(paths, st.History); err != nil {
			runErr = err
			break
		}
		if ctx.Err() != nil {
			runErr = ErrInterrupted
			break
		}
	}

	switch {
	case errors.Is(runErr, ErrInterrupted):
		summary.StopReason = "interrupted"
	case runErr != nil:
		summary.StopReason = "error: " + runErr.Error()
	case summary.StopReason == "":
		summary.StopReason = fmt.Sprintf("completed %d epochs", r.Config.Epochs)
	}
	if runErr == nil || errors.Is(runErr, ErrInterrupted) {
		// Save where a resume continues from (a finished run too, so --epochs can extend it).
		// Not after a non-finite loss: the weights may be NaN, and last/ keeps the previous
		// epoch's state.
		if err := r.saveLast(paths, st, cbs, model); err != nil && runErr == nil {
			runErr = err
		}
	}
	if runErr == nil {
		if err := cbs.OnTrainEnd(model); err != nil {
			runErr = err
		}
	}
	if err := writeHistory(paths, st.History); err != nil && runErr == nil {
		runErr = err
	}
	summary.fill(st.History, ckpt, early, r.Config.Callbacks.Monitor)
	summary.WallSeconds = time.Since(start).Seconds()
	if trainSeconds > 0 {
		summary.ImagesPerSecond = float64(imagesSeen) / trainSeconds
	}
	summary.Best = paths.best
	if err := writeSummary(paths, summary); err != nil && runErr == nil {
		runErr = err
	}
	return summary, runErr
}

// check refuses, before any training, what would fail later.
func (r *Run) check() error {
	if err := r.Config.Validate(); err != nil {
		return err
	}
	if r.Train == nil || r.Valid == nil {
		return errors.New("training needs a train and a validation set")
	}
	classes := r.Model.Meta.Classes
	for _, d := range []*preprocess.Dataset{r.Train, r.Valid} {
		if len(d.Classes) != len(classes) {
			return fmt.Errorf("data has classes %v, the model %v", d.Classes, classes)
		}
		for i := range classes {
			if d.Classes[i] != classes[i] {
				return fmt.Errorf("data has classes %v, the model %v", d.Classes, classes)
			}
		}
	}
	if len(r.Train.Labels) == 0 {
		return errors.New("the training set is empty")
	}
	if len(r.Valid.Labels) == 0 {
		return errors.New("the validation set is empty")
	}
	if r.Targets != nil && len(r.Targets) != len(r.Train.Labels) {
		return fmt.Errorf("%d soft targets for %d training images", len(r.Targets), len(r.Train.Labels))
	}
	for i, t := range r.Targets {
		if t != nil && len(t) != len(r.Model.Meta.Classes) {
			return fmt.Errorf("%s: soft target of %d classes, the model has %d", r.Train.Files[i], len(t), len(r.Model.Meta.Classes))
		}
	}
	if !r.Config.Remainder && r.Config.StepsPerEpoch == 0 && len(r.Train.Labels) < r.Config.BatchSize {
		return fmt.Errorf("%d training images make no full batch of %d: lower --batch-size or use --remainder",
			len(r.Train.Labels), r.Config.BatchSize)
	}
	return CheckWritable(r.Out)
}

// CheckWritable makes sure the run directory can be written, before hours of training.
func CheckWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("run directory %s: %w", dir, err)
	}
	probe, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("run directory %s is not writable: %w", dir, err)
	}
	probe.Close()
	return os.Remove(probe.Name())
}

func (r *Run) epochLogs(st *State, valid *evalSet) (EpochLogs, error) {
	vl, va, err := valid.evaluate(r.Model)
	if err != nil {
		return nil, fmt.Errorf("validation: %w", err)
	}
	opt, err := r.Model.State()
	if err != nil {
		return nil, err
	}
	loss, acc := st.Partial.means()
	return EpochLogs{"loss": loss, "accuracy": acc, "val_loss": vl, "val_accuracy": va, "learning_rate": opt.LearningRate}, nil
}

// printEpoch writes Keras' verbose=2 epoch line.
func (r *Run) printEpoch(st *State, steps int) {
	if r.Log == nil {
		return
	}
	rec := st.History[len(st.History)-1]
	fmt.Fprintf(r.Log, "Epoch %d/%d\n%d/%d - %.0fs - loss: %.4f - accuracy: %.4f - val_loss: %.4f - val_accuracy: %.4f - learning_rate: %.4g\n",
		rec.Epoch, r.Config.Epochs, steps, steps, rec.Seconds, rec.Logs["loss"], rec.Logs["accuracy"],
		rec.Logs["val_loss"], rec.Logs["val_accuracy"], rec.Logs["learning_rate"])
}

// saveLast writes RUN/last: the session's variables and the resume state, in one atomic step.
// When a callback has just saved these very variables (ModelCheckpoint into best/ on an
// improving epoch, with no step or learning-rate change since), last/ hard-links that copy
// instead of running the saver again: a second full save (640 MB for InceptionResNetV2) costs
// time and memory for nothing.
func (r *Run) saveLast(paths runDir, st *State, cbs Callbacks, model sessionModel) error {
	states, err := cbs.MarshalState()
	if err != nil {
		return err
	}
	st.Callbacks = states
	b, err := json.MarshalIndent(st, "", " ")
	if err != nil {
		return fmt.Errorf("encode resume state: %w", err)
	}
	extra := map[string][]byte{stateFile: b}
	if src, ok := model.latest.holds(st.GlobalStep); ok {
		err = atomicfs.WriteDir(paths.last, func(tmp string) error {
			if err := atomicfs.LinkTree(src, tmp); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(tmp, stateFile), b, 0o644)
		})
	} else {
		err = r.Model.SaveWithFiles(paths.last, extra)
	}
	if err != nil {
		return fmt.Errorf("save %s: %w", paths.last, err)
	}
	return nil
}

func copyLogs(l EpochLogs) EpochLogs {
	out := EpochLogs{}
	for _, k := range epochLogKeys {
		if v, ok := l[k]; ok {
			out[k] = v
		}
	}
	return out
}

// sessionModel lets the callbacks act on the TensorFlow session, and remembers the latest
// complete copy of the session's variables a callback saved.
type sessionModel struct {
	m      *tfgraph.Model
	st     *State // its GlobalStep says which training step a save holds
	latest *savedCopy
}

// savedCopy is a directory holding the session's variables as of a training step.
type savedCopy struct {
	dir  string
	step uint64
	ok   bool
}

// holds returns the copy's directory if it still equals the session at step.
func (c *savedCopy) holds(step uint64) (string, bool) {
	return c.dir, c.ok && c.step == step
}

func (s sessionModel) LearningRate() (float64, error) {
	st, err := s.m.State()
	return st.LearningRate, err
}

func (s sessionModel) SetLearningRate(lr float64) error {
	s.latest.ok = false // the learning rate is a variable: saved copies no longer match
	_, err := s.m.SetLearningRate(lr)
	return err
}

func (s sessionModel) SaveWeights(dir string) error {
	if err := s.m.Save(dir); err != nil {
		return err
	}
	*s.latest = savedCopy{dir: dir, step: s.st.GlobalStep, ok: true}
	return nil
}

func (s sessionModel) RestoreWeights(dir string) error {
	s.latest.ok = false
	return s.m.Restore(dir)
}

// runDir names the files of a run directory.
type runDir struct{ root, best, last, scratch, csv, history, summary, lossPNG, accPNG string }

func runPaths(root string) runDir {
	return runDir{
		root: root, best: filepath.Join(root, "best"), last: filepath.Join(root, "last"),
		scratch: filepath.Join(root, ".early-stopping-best"), csv: filepath.Join(root, "history.csv"),
		history: filepath.Join(root, "history.json"), summary: filepath.Join(root, "summary.json"),
		lossPNG: filepath.Join(root, "loss.png"), accPNG: filepath.Join(root, "accuracy.png"),
	}
}

// buildCallbacks makes the seed's callbacks, in the seed's order, plus the CSV logger.
func buildCallbacks(c Config, p runDir, resuming bool, out io.Writer) (Callbacks, *ModelCheckpoint, *EarlyStopping, error) {
	cc := c.Callbacks
	var cbs Callbacks
	var early *EarlyStopping
	if cc.EarlyStopping {
		cfg := DefaultEarlyStoppingConfig()
		cfg.Monitor, cfg.Mode, cfg.Patience, cfg.MinDelta = cc.Monitor, cc.Mode, cc.Patience, cc.MinDelta
		cfg.Baseline, cfg.RestoreBestWeights, cfg.StartFromEpoch = cc.Baseline, cc.RestoreBestWeights, cc.StartFromEpoch
		cfg.ScratchDir, cfg.Out, cfg.Verbose = p.scratch, out, 1
		e, err := NewEarlyStopping(cfg)
		if err != nil {
			return nil, nil, nil, err
		}
		early = e
		cbs = append(cbs, e)
	}
	ckCfg := DefaultModelCheckpointConfig(p.best)
	ckCfg.Monitor, ckCfg.Mode, ckCfg.SaveBestOnly, ckCfg.Out = cc.Monitor, cc.Mode, cc.SaveBestOnly, out
	ckpt, err := NewModelCheckpoint(ckCfg)
	if err != nil {
		return nil, nil, nil, err
	}
	cbs = append(cbs, ckpt)
	if cc.ReduceLR {
		cfg := DefaultReduceLROnPlateauConfig()
		cfg.Monitor, cfg.Mode, cfg.Factor, cfg.Patience = cc.Monitor, cc.Mode, cc.ReduceLRFactor, cc.ReduceLRPatience
		cfg.MinDelta, cfg.Cooldown, cfg.MinLR, cfg.Out, cfg.Verbose = cc.ReduceLRMinDelta, cc.ReduceLRCooldown, cc.MinLR, out, 1
		rl, err := NewReduceLROnPlateau(cfg)
		if err != nil {
			return nil, nil, nil, err
		}
		cbs = append(cbs, rl)
	}
	csvLog, err := NewCSVLogger(CSVLoggerConfig{Filename: p.csv, Separator: ",", Append: resuming})
	if err != nil {
		return nil, nil, nil, err
	}
	cbs = append(cbs, csvLog)
	return cbs, ckpt, early, nil
}

// batchRNG derives the augmentation randomness of one step from the seed and the step's
// global index, so a resumed run draws exactly what the uninterrupted run drew.
func batchRNG(seed, globalStep uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed^0x9e3779b97f4a7c15, globalStep))
}
