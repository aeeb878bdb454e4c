package train

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"time"
)

// Option configures Fit.
type Option func(*fitOptions) error

type fitOptions struct {
	epochs       int
	learningRate float64
	callbacks    Callbacks
	runDir       string
	backup       Backup
	resume       *State
	log          io.Writer
	validBatch   int
	settings     map[string]any
	recipe       json.RawMessage
	replicas     int
}

func defaultFitOptions() fitOptions {
	return fitOptions{epochs: 1, validBatch: 64, backup: Backup{EveryEpochs: 1}}
}

// WithEpochs sets the number of epochs to train (with WithResume: the new total). Default 1,
// as Keras' fit.
func WithEpochs(n int) Option {
	return func(o *fitOptions) error {
		if n < 1 {
			return fmt.Errorf("epochs %d: want >= 1", n)
		}
		o.epochs = n
		return nil
	}
}

// WithLearningRate sets the optimizer's learning rate before the first step (not when
// resuming: the run's own rate, maybe reduced by ReduceLROnPlateau, is in its state).
func WithLearningRate(lr float64) Option {
	return func(o *fitOptions) error {
		if !(lr > 0) || math.IsInf(lr, 0) {
			return fmt.Errorf("learning rate %g: want a positive number", lr)
		}
		o.learningRate = lr
		return nil
	}
}

// WithCallbacks adds callbacks, called in the order given (after those added before).
func WithCallbacks(cbs ...Callback) Option {
	return func(o *fitOptions) error {
		for _, c := range cbs {
			if c == nil {
				return fmt.Errorf("nil callback")
			}
		}
		o.callbacks = append(o.callbacks, cbs...)
		return nil
	}
}

// WithEarlyStopping adds Keras' EarlyStopping.
func WithEarlyStopping(cfg EarlyStoppingConfig) Option {
	return withNew(NewEarlyStopping, cfg)
}

// WithModelCheckpoint adds Keras' ModelCheckpoint (a complete SavedModel at cfg.Filepath).
func WithModelCheckpoint(cfg ModelCheckpointConfig) Option {
	return withNew(NewModelCheckpoint, cfg)
}

// WithReduceLROnPlateau adds Keras' ReduceLROnPlateau.
func WithReduceLROnPlateau(cfg ReduceLROnPlateauConfig) Option {
	return withNew(NewReduceLROnPlateau, cfg)
}

// withNew adds the callback newCallback makes of cfg, or fails with its error.
func withNew[Cfg any, C Callback](newCallback func(Cfg) (C, error), cfg Cfg) Option {
	return func(o *fitOptions) error {
		c, err := newCallback(cfg)
		if err != nil {
			return err
		}
		o.callbacks = append(o.callbacks, c)
		return nil
	}
}

// WithRunDir makes Fit keep a run directory (see Layout): RUN/last, the resume state with its
// variables, written by the backup policy, and history.json and summary.json. Without it
// nothing is written but what the callbacks write, and a run cannot be resumed.
func WithRunDir(dir string) Option {
	return func(o *fitOptions) error {
		if dir == "" {
			return fmt.Errorf("empty run directory")
		}
		o.runDir = dir
		return nil
	}
}

// WithBackup sets when RUN/last is written (default: every epoch).
func WithBackup(b Backup) Option {
	return func(o *fitOptions) error {
		if err := b.Validate(); err != nil {
			return err
		}
		o.backup = b
		return nil
	}
}

// WithResume continues the run st was saved from (LoadState): the model must be loaded from
// that run's last/ directory, the callbacks must be the ones the run had (their states are
// restored by name), and the Source must implement Seeker.
func WithResume(st *State) Option {
	return func(o *fitOptions) error {
		if st == nil {
			return fmt.Errorf("resume from a nil state")
		}
		o.resume = st
		return nil
	}
}

// WithLog sends Keras' verbose=2 epoch lines there ("Epoch 3/50" and the logs).
func WithLog(w io.Writer) Option {
	return func(o *fitOptions) error { o.log = w; return nil }
}

// WithValidationBatchSize sets how many validation images go through one session run
// (default 64).
func WithValidationBatchSize(n int) Option {
	return func(o *fitOptions) error {
		if n < 1 {
			return fmt.Errorf("validation batch size %d: want >= 1", n)
		}
		o.validBatch = n
		return nil
	}
}

// WithSettings records facts about the run (data folders, image counts) in summary.json and
// in the resume state, where LoadState gives them back.
func WithSettings(s map[string]any) Option {
	return func(o *fitOptions) error {
		if o.settings == nil {
			o.settings = map[string]any{}
		}
		maps.Copy(o.settings, s)
		return nil
	}
}

// WithRecipe records the recipe the options came from (any value encoding/json encodes; the
// recipe package's Config.FitOptions adds its own) in summary.json and in the resume state
// (State.Recipe), so that a resumed run can be started with the same recipe.
func WithRecipe(recipe any) Option {
	return func(o *fitOptions) error {
		b, err := json.Marshal(recipe)
		if err != nil {
			return fmt.Errorf("recipe: %w", err)
		}
		o.recipe = b
		return nil
	}
}

// WithReplicas trains with n towers, one per device, each on 1/n of every batch, the
// gradients averaged and applied once, as Keras fit under MirroredStrategy (see
// tfgraph.Model.SetReplicas: the model needs `new-model --replicas n`). Validation runs the
// towers too, each with its own BatchNorm statistics, as Keras' evaluate does. Default: the
// replica count the model was set to (1 for a freshly loaded one).
func WithReplicas(n int) Option {
	return func(o *fitOptions) error {
		if n < 1 {
			return fmt.Errorf("replicas %d: want >= 1", n)
		}
		o.replicas = n
		return nil
	}
}

// Backup is when Fit writes the resume state (RUN/last), as Keras' BackupAndRestore's
// save_freq: after every EveryEpochs epochs, or when Interval has passed since the last
// backup, whichever comes first (both zero: every epoch). Fit also writes it when it ends
// (so a finished run can be extended) and at once when interrupted. The write runs in the
// background from a snapshot of the variables; the loop waits only for the snapshot.
type Backup struct {
	EveryEpochs int           `json:"every_epochs,omitempty"`
	Interval    time.Duration `json:"interval,omitempty"`
}

// Validate reports a negative setting.
func (b Backup) Validate() error {
	if b.EveryEpochs < 0 || b.Interval < 0 {
		return fmt.Errorf("backup every %d epochs / %v: want >= 0", b.EveryEpochs, b.Interval)
	}
	return nil
}

// due reports whether an epoch end, epochs epochs and elapsed time after the last backup,
// should write one.
func (b Backup) due(epochs int, elapsed time.Duration) bool {
	if b.EveryEpochs == 0 && b.Interval == 0 {
		return true
	}
	return (b.EveryEpochs > 0 && epochs >= b.EveryEpochs) || (b.Interval > 0 && elapsed >= b.Interval)
}
