// Package recipe trains the image classifier as the CLI does, on top of train's loop: the
// study's recipe (Config: epochs, batch size, the seed's callbacks, class and person weights,
// label smoothing, augmentation), class-folder datasets fed as training batches
// (DatasetSource, DatasetValidation), soft targets from a CSV, and what a run directory
// records of its data so that a stopped run finds it again. A program training any other
// model uses train directly, with its own Source or train.ArraySource.
package recipe

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/emotions-dev/emotions/preprocess"
	"github.com/emotions-dev/emotions/train"
)

// Config is a whole training recipe as the CLI runs it: the data side (DataConfig) and the
// loop side (epochs, learning rate, the seed's callbacks, checkpoints). DefaultConfig is the
// seed's. Data gives the DatasetSource's settings and FitOptions Fit's options; it is recorded
// in summary.json and in the resume state (train.WithRecipe) so that a resumed run runs the
// same recipe (FromState).
type Config struct {
	Epochs        int `json:"epochs"`
	BatchSize     int `json:"batch_size"`
	StepsPerEpoch int `json:"steps_per_epoch"` // 0: n // batch_size, as the seed's fit did
	// Remainder makes each epoch one pass over the data whose last batch is partial, instead
	// of full batches drawn from an endless stream (Keras' flow_from_directory).
	Remainder bool   `json:"remainder"`
	Seed      uint64 `json:"seed"`
	// NoShuffle keeps arrays in their order every epoch (Keras' shuffle=False; ArraySource).
	NoShuffle      bool                `json:"no_shuffle,omitempty"`
	Augment        *preprocess.Augment `json:"augment,omitempty"`
	ClassWeights   string              `json:"class_weights"` // "" or "balanced"
	PersonWeights  bool                `json:"person_weights,omitempty"`
	LabelSmoothing float64             `json:"label_smoothing"` // as Keras' CategoricalCrossentropy(label_smoothing)
	LearningRate   float64             `json:"learning_rate"`   // 0: keep the model's
	// SoftTargets is the CSV the run's soft targets came from (ReadSoftTargets), recorded
	// so --resume reads it again.
	SoftTargets string `json:"soft_targets,omitempty"`
	// ValidSubset lets the validation folders cover only some of the model's classes: a
	// model pre-trained on more classes than the task (a teacher's full output) validated
	// on the classes that matter. Validation metrics are then over those classes only.
	ValidSubset bool           `json:"valid_subset,omitempty"`
	Callbacks   CallbackConfig `json:"callbacks"`
	Backup      train.Backup   `json:"backup"`
}

// CallbackConfig selects and configures the Keras callbacks of the recipe.
type CallbackConfig struct {
	Monitor string     `json:"monitor"` // for all three, as the seed did
	Mode    train.Mode `json:"mode"`

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
// patience 5, min_lr 1e-4); 50 epochs; batch 64; last/ saved every epoch. Other callback
// arguments keep Keras' defaults.
func DefaultConfig() Config {
	return Config{
		Epochs: 50, BatchSize: 64,
		Callbacks: CallbackConfig{
			Monitor: "val_loss", Mode: train.ModeAuto,
			EarlyStopping: true, Patience: 10,
			ReduceLR: true, ReduceLRFactor: 0.2, ReduceLRPatience: 5, ReduceLRMinDelta: 1e-4, MinLR: 1e-4,
			SaveBestOnly: true,
		},
		Backup: train.Backup{EveryEpochs: 1},
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
	return c.Backup.Validate()
}

// Data is the recipe's data side, for NewDatasetSource (soft target rows are the caller's).
func (c Config) Data() DataConfig {
	return DataConfig{
		BatchSize: c.BatchSize, StepsPerEpoch: c.StepsPerEpoch, Remainder: c.Remainder, Seed: c.Seed,
		Augment: c.Augment, ClassWeights: c.ClassWeights, PersonWeights: c.PersonWeights, LabelSmoothing: c.LabelSmoothing,
	}
}

// FitOptions are Fit's options for the recipe, writing into the run directory run: the seed's
// callbacks in the seed's order (EarlyStopping, ModelCheckpoint into best/,
// ReduceLROnPlateau), a CSVLogger (appending when resuming), the epochs, learning rate,
// backup policy, and the recipe itself recorded. log receives Keras' verbose messages.
func (c Config) FitOptions(run string, resuming bool, log io.Writer) ([]train.Option, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	l := train.Layout(run)
	cc := c.Callbacks
	opts := []train.Option{train.WithRunDir(run), train.WithEpochs(c.Epochs), train.WithBackup(c.Backup), train.WithRecipe(c), train.WithLog(log),
		train.WithValidationBatchSize(c.BatchSize)}
	if c.LearningRate > 0 {
		opts = append(opts, train.WithLearningRate(c.LearningRate))
	}
	verbose := 0 // the callbacks' messages go to log, and nowhere without one
	if log != nil {
		verbose = 1
	}
	var cbs []train.Callback
	if cc.EarlyStopping {
		cfg := train.DefaultEarlyStoppingConfig()
		cfg.Monitor, cfg.Mode, cfg.Patience, cfg.MinDelta = cc.Monitor, cc.Mode, cc.Patience, cc.MinDelta
		cfg.Baseline, cfg.RestoreBestWeights, cfg.StartFromEpoch = cc.Baseline, cc.RestoreBestWeights, cc.StartFromEpoch
		cfg.ScratchDir, cfg.Out, cfg.Verbose = l.EarlyStoppingScratch(), log, verbose
		e, err := train.NewEarlyStopping(cfg)
		if err != nil {
			return nil, err
		}
		cbs = append(cbs, e)
	}
	// The run directory is a path, not a template: only a user's own ModelCheckpoint filepath
	// is formatted, as Keras formats its filepath argument.
	ckCfg := train.DefaultModelCheckpointConfig(train.EscapeFilepath(l.Best()))
	ckCfg.Monitor, ckCfg.Mode, ckCfg.SaveBestOnly, ckCfg.Out = cc.Monitor, cc.Mode, cc.SaveBestOnly, log
	ckpt, err := train.NewModelCheckpoint(ckCfg)
	if err != nil {
		return nil, err
	}
	cbs = append(cbs, ckpt)
	if cc.ReduceLR {
		cfg := train.DefaultReduceLROnPlateauConfig()
		cfg.Monitor, cfg.Mode, cfg.Factor, cfg.Patience = cc.Monitor, cc.Mode, cc.ReduceLRFactor, cc.ReduceLRPatience
		cfg.MinDelta, cfg.Cooldown, cfg.MinLR, cfg.Out, cfg.Verbose = cc.ReduceLRMinDelta, cc.ReduceLRCooldown, cc.MinLR, log, verbose
		rl, err := train.NewReduceLROnPlateau(cfg)
		if err != nil {
			return nil, err
		}
		cbs = append(cbs, rl)
	}
	csvLog, err := train.NewCSVLogger(train.CSVLoggerConfig{Filename: l.CSV(), Separator: ",", Append: resuming})
	if err != nil {
		return nil, err
	}
	cbs = append(cbs, csvLog)
	return append(opts, train.WithCallbacks(cbs...)), nil
}

// ErrNoRecipe is returned by FromState for a run that was not started from a recipe.
var ErrNoRecipe = errors.New("the run records no recipe")

// FromState is the recipe a stopped run was started with (FitOptions records it).
func FromState(st *train.State) (Config, error) {
	if st == nil || len(st.Recipe) == 0 {
		return Config{}, ErrNoRecipe
	}
	var c Config
	if err := json.Unmarshal(st.Recipe, &c); err != nil {
		return Config{}, fmt.Errorf("the run's recipe: %w", err)
	}
	return c, nil
}
