// Package train is the training loop: Fit runs a model's train_step signature over batches a
// Source gives, validates after every epoch, and calls callbacks, Keras 3.15.1's among them
// (EarlyStopping, ModelCheckpoint, ReduceLROnPlateau, CSVLogger), ported decision for
// decision. A run directory keeps the resume state, written in the background while training
// goes on, so a stopped run continues where it was (WithResume). Fit takes the Trainable
// interface (*tfgraph.Model implements it) and batches from a Source: ArraySource for named
// arrays, or a program's own (the recipe package's DatasetSource feeds class folders).
//
// The package draws nothing and plots nothing: callbacks do that (the CLI's progress bar and
// plots are callbacks of its own).
package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/emotions-dev/emotions/tfgraph"
)

// ErrInterrupted is returned when the context ended the run; with a run directory, its
// last/ then holds the state to resume from.
var ErrInterrupted = errors.New("interrupted: the run was saved to its last/ directory; WithResume continues it")

// ErrNonFinite is returned when a step's loss is NaN or Inf.
var ErrNonFinite = errors.New("non-finite loss")

// errFinished ends the epoch loop without an error (the epochs ran out or a callback stopped).
var errFinished = errors.New("finished")

// Fit trains m on the batches of src, evaluating valid after every epoch, until the epochs
// run out, a callback stops it, ctx is cancelled (then RUN/last is saved, with a run
// directory, and ErrInterrupted returned) or a loss goes non-finite (ErrNonFinite; last/
// keeps the previous epoch). It always returns the summary of what ran; with a run directory
// it also leaves history.json and summary.json.
func Fit(ctx context.Context, m Trainable, src Source, valid ValidationData, opts ...Option) (*Summary, error) {
	start := time.Now()
	f, err := newFit(m, src, valid, opts)
	if err != nil {
		return nil, err
	}
	defer f.stopPrefetch()
	if err = f.begin(ctx); err != nil && !errors.Is(err, errFinished) {
		// Nothing ran: the run directory (a stopped run's summary, say) is left as it was.
		f.ckpt.close()
		return nil, err
	}
	for err == nil {
		err = f.runEpoch(ctx)
	}
	return f.finish(err, start)
}

// fit is one call of Fit: its options, the state that a resume restores, and the summary
// being filled.
type fit struct {
	fitOptions
	m       Trainable
	src     Source
	valid   ValidationData
	ckpt    *checkpointer
	model   sessionModel
	st      *State
	steps   int
	summary *Summary

	values, classes int // per image, per label row
	// generic: the model takes named arrays and its signatures return Keras' own logs
	// (savedmodel.Metadata.Generic).
	generic bool

	batches      chan fetched
	cancelFetch  context.CancelFunc
	warmed       chan error // the warm-up's outcome (begin starts it)
	imagesSeen   int
	trainSeconds float64
	lastBackup   time.Time
	sinceBackup  int
}

type fetched struct {
	b   Batch
	err error
}

// newFit checks everything that would fail later, before any step.
func newFit(m Trainable, src Source, valid ValidationData, opts []Option) (*fit, error) {
	o := defaultFitOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	switch {
	case m == nil, m == (*tfgraph.Model)(nil):
		return nil, errors.New("fit: no model")
	case src == nil:
		return nil, errors.New("fit: no training source")
	case valid == nil:
		return nil, errors.New("fit: no validation data")
	}
	steps := src.StepsPerEpoch()
	if steps < 1 {
		return nil, fmt.Errorf("fit: the source has %d steps per epoch", steps)
	}
	if o.runDir != "" {
		if err := CheckWritable(o.runDir); err != nil {
			return nil, err
		}
	}
	if _, err := o.callbacks.MarshalState(); err != nil { // names must be unique before hours of training
		return nil, err
	}
	if o.replicas > 0 {
		if err := m.SetReplicas(o.replicas); err != nil {
			return nil, fmt.Errorf("fit: %w", err)
		}
	}
	meta := m.Metadata()
	if meta.Generic() {
		for _, l := range meta.Logs {
			if len(l.Shape) != 0 {
				return nil, fmt.Errorf("fit: the model logs %s of shape %v: only scalar logs are supported "+
					"(an F1Score or FBetaScore needs average= set to a mode that gives one number)", l.Name, l.Shape)
			}
		}
	}
	f := &fit{fitOptions: o, m: m, src: src, valid: valid, ckpt: newCheckpointer(m), steps: steps,
		values: meta.InputHeight * meta.InputWidth * meta.Channels, classes: len(meta.Classes), generic: meta.Generic()}
	f.model = sessionModel{m: m, ckpt: f.ckpt}
	f.summary = &Summary{Recipe: o.recipe, Extra: o.settings, Versions: versions(m)}
	return f, nil
}

// begin sets up a new run or restores a stopped one, runs OnTrainBegin and starts feeding.
func (f *fit) begin(ctx context.Context) error {
	opt, err := f.m.State()
	if err != nil {
		return err
	}
	if st := f.resume; st != nil {
		if err := f.checkResume(st, opt.Iterations); err != nil {
			return err
		}
		f.st = st
		if f.settings != nil {
			st.Settings = f.settings // where the data is now: a resumed run may have found it moved
		}
		if f.recipe != nil {
			st.Recipe = f.recipe
		}
		if err := f.callbacks.UnmarshalState(st.Callbacks); err != nil {
			return fmt.Errorf("resume: %w", err)
		}
	} else {
		f.st = &State{Recipe: f.recipe, Settings: f.settings, StartIterations: &opt.Iterations}
		if f.learningRate > 0 {
			if _, err := f.m.SetLearningRate(f.learningRate); err != nil {
				return fmt.Errorf("set learning rate: %w", err)
			}
		}
	}
	if err := f.callbacks.OnTrainBegin(f.model); err != nil {
		return err
	}
	f.lastBackup = time.Now()
	if f.st.Epoch >= f.epochs {
		return errFinished
	}
	// The first validation and the first checkpoint would each wait seconds for TensorFlow to
	// optimise their graphs: do that now, beside the first train step's own optimisation.
	f.warmed = make(chan error, 1)
	go func() { f.warmed <- f.m.WarmUp("evaluate", "snapshot") }()
	return f.startPrefetch(ctx)
}

// checkResume refuses a resume that would silently train something else than the stopped run.
func (f *fit) checkResume(st *State, iterations int64) error {
	if st.StartIterations != nil && *st.StartIterations+int64(st.GlobalStep) != iterations {
		return fmt.Errorf("resume: the model's optimizer has run %d steps, the stopped run was at %d: load the model from the run's last/ directory",
			iterations, *st.StartIterations+int64(st.GlobalStep))
	}
	if st.Step > 0 || st.Epoch > 0 {
		seeker, ok := f.src.(Seeker)
		if !ok {
			return fmt.Errorf("resume at epoch %d step %d: %w", st.Epoch+1, st.Step, ErrNotSeekable)
		}
		if err := seeker.Seek(st.Epoch, st.Step); err != nil {
			return fmt.Errorf("resume: position the source at epoch %d step %d: %w", st.Epoch+1, st.Step, err)
		}
	}
	return nil
}

// startPrefetch reads the source on a goroutine of its own, one batch ahead of the session.
func (f *fit) startPrefetch(ctx context.Context) error {
	fctx, cancel := context.WithCancel(ctx)
	f.cancelFetch = cancel
	f.batches = make(chan fetched, 1)
	go func() {
		defer close(f.batches)
		for fctx.Err() == nil {
			b, err := f.src.Next(fctx)
			if err == nil {
				err = f.check(b)
			}
			select {
			case f.batches <- fetched{b, err}:
			case <-fctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return nil
}

// stopPrefetch ends the feeding goroutine and lets it return.
func (f *fit) stopPrefetch() {
	if f.cancelFetch == nil {
		return
	}
	f.cancelFetch()
	for range f.batches {
	}
	f.cancelFetch = nil
}

// runEpoch trains the rest of the current epoch, validates, and runs the epoch's end.
func (f *fit) runEpoch(ctx context.Context) error {
	start := time.Now()
	if err := f.trainSteps(ctx); err != nil {
		return err
	}
	logs, err := f.validate(ctx)
	if err != nil {
		return fmt.Errorf("epoch %d: %w", f.st.Epoch+1, err)
	}
	recorded := len(f.st.History)
	err = f.endEpoch(ctx, logs)
	if len(f.st.History) > recorded {
		f.st.History[recorded].WallSeconds = time.Since(start).Seconds()
	}
	if err == nil {
		err = f.writeHistory()
	}
	return err
}

// trainSteps runs the epoch's remaining steps; it returns ErrInterrupted when ctx ends
// before the epoch does.
func (f *fit) trainSteps(ctx context.Context) error {
	st := f.st
	epochStart := time.Now()
	defer func() {
		d := time.Since(epochStart).Seconds()
		st.Seconds += d
		f.trainSeconds += d
	}()
	for st.Step < f.steps {
		if ctx.Err() != nil {
			return ErrInterrupted
		}
		next, ok := <-f.batches
		if !ok {
			return ErrInterrupted // the feeder stopped: ctx ended
		}
		if next.err != nil {
			if ctx.Err() != nil {
				return ErrInterrupted
			}
			return fmt.Errorf("epoch %d step %d: training source: %w", st.Epoch+1, st.Step+1, next.err)
		}
		b := next.b
		f.ckpt.changed() // before the step: the snapshot goes as soon as its writes are done
		if f.generic && st.Step == 0 {
			// Keras' fit resets every metric at an epoch's start; mid-epoch (a resumed run)
			// the metric state came back with the variables.
			if err := f.m.ResetMetrics(); err != nil {
				return fmt.Errorf("epoch %d: %w", st.Epoch+1, err)
			}
		}
		t0 := time.Now()
		res, err := f.trainStep(b)
		stepTime := time.Since(t0).Seconds()
		if f.summary.Timing.Steps == 0 {
			f.summary.Timing.FirstStepS = stepTime
		}
		f.summary.Timing.TrainStepS += stepTime
		f.summary.Timing.Steps++
		weightSum := b.weightSum()
		if r, ok := f.src.(Releaser); ok {
			r.Release(b)
		}
		if err != nil {
			return fmt.Errorf("epoch %d step %d: %w", st.Epoch+1, st.Step+1, err)
		}
		if math.IsNaN(res.Loss) || math.IsInf(res.Loss, 0) {
			return fmt.Errorf("epoch %d step %d: %w (%v): the last saved state is kept", st.Epoch+1, st.Step+1, ErrNonFinite, res.Loss)
		}
		step := StepLogs{Epoch: st.Epoch, Step: st.Step, Steps: f.steps}
		if f.generic {
			st.Progress.Logs = res.logs // running results: the epoch's so far
			step.Logs = copyLogs(res.logs)
		} else {
			st.Progress.add(res.StepResult, b.N, weightSum)
		}
		st.Step, st.GlobalStep = st.Step+1, st.GlobalStep+1
		f.imagesSeen += b.N
		step.Loss, step.Accuracy = st.Progress.Means()
		if err := f.callbacks.OnStepEnd(step); err != nil {
			return err
		}
	}
	return nil
}

// validate evaluates the validation data and returns the epoch's logs.
func (f *fit) validate(ctx context.Context) (EpochLogs, error) {
	start := time.Now()
	defer func() { f.summary.Timing.ValidationS += time.Since(start).Seconds() }()
	if err := f.waitWarmUp(); err != nil {
		return nil, err
	}
	if f.generic {
		return f.validateArrays(ctx)
	}
	var lossSum, correct float64
	n := 0
	for b, err := range f.valid.Batches(ctx, f.validBatch) {
		if err != nil {
			return nil, fmt.Errorf("validation data: %w", err)
		}
		if err := b.check(f.values, f.classes); err != nil {
			return nil, fmt.Errorf("validation data: %w", err)
		}
		r, err := f.m.Evaluate(b.Images, b.Labels, b.N)
		if err != nil {
			return nil, fmt.Errorf("validation: %w", err)
		}
		lossSum, correct, n = lossSum+r.LossSum, correct+r.Correct, n+b.N
	}
	if n == 0 {
		return nil, errors.New("validation: the validation data is empty")
	}
	opt, err := f.m.State()
	if err != nil {
		return nil, err
	}
	loss, acc := f.st.Progress.Means()
	return EpochLogs{"loss": loss, "accuracy": acc, "val_loss": lossSum / float64(n),
		"val_accuracy": correct / float64(n), "learning_rate": opt.LearningRate}, nil
}

// validateArrays is validate for a generic model: Keras' evaluate over the validation data
// (metrics reset, test_step per batch, the last batch's running results), its logs prefixed
// val_ after the epoch's training logs, as fit builds them.
func (f *fit) validateArrays(ctx context.Context) (EpochLogs, error) {
	last, err := EvaluateArrays(ctx, f.m, f.valid, f.validBatch)
	if err != nil {
		return nil, fmt.Errorf("validation: %w", err)
	}
	logs := EpochLogs{}
	for k, v := range f.st.Progress.Logs {
		logs[k] = v
	}
	for k, v := range last {
		logs["val_"+k] = v
	}
	return logs, nil
}

// stepResult is one train step's outcome: the image model's loss and accuracy, or a generic
// model's logs (Loss is then logs["loss"]).
type stepResult struct {
	tfgraph.StepResult
	logs tfgraph.Logs
}

func (f *fit) trainStep(b Batch) (stepResult, error) {
	if !f.generic {
		r, err := f.m.TrainStep(b.Images, b.Labels, b.Weights, b.N)
		return stepResult{StepResult: r}, err
	}
	logs, err := f.m.TrainArrays(arrayBatch(b))
	if err != nil {
		return stepResult{}, err
	}
	return stepResult{StepResult: tfgraph.StepResult{Loss: logs["loss"], Accuracy: logs["accuracy"]}, logs: logs}, nil
}

// check reports a batch that does not fit the model (the arrays' dtypes and shapes are
// checked by tfgraph, before anything reaches TensorFlow).
func (f *fit) check(b Batch) error {
	if f.generic {
		return b.checkArrays()
	}
	return b.check(f.values, f.classes)
}

// endEpoch runs the callbacks, records the epoch, backs up per the policy, and says whether
// the run goes on (nil), ends (errFinished) or was interrupted.
func (f *fit) endEpoch(ctx context.Context, logs EpochLogs) error {
	st := f.st
	blockedBefore := f.ckpt.blocking
	defer func() {
		f.summary.Timing.CheckpointBlockingPerEpochS = append(f.summary.Timing.CheckpointBlockingPerEpochS,
			(f.ckpt.blocking - blockedBefore).Seconds())
	}()
	stopRequested, err := f.callbacks.OnEpochEnd(st.Epoch, logs, f.model)
	if err != nil {
		return err
	}
	st.History = append(st.History, EpochRecord{Epoch: st.Epoch + 1, Logs: copyLogs(logs), Seconds: st.Seconds})
	f.printEpoch()
	st.Epoch, st.Step, st.Progress, st.Seconds = st.Epoch+1, 0, EpochProgress{}, 0
	f.sinceBackup++
	if stopper := f.callbacks.StopTraining(); stopper != nil || stopRequested {
		f.summary.StopReason = stopReason(stopper)
		return errFinished
	}
	if st.Epoch >= f.epochs {
		return errFinished // finish writes the final backup
	}
	if ctx.Err() != nil {
		return ErrInterrupted // finish saves at once
	}
	if f.backup.due(f.sinceBackup, time.Since(f.lastBackup)) {
		return f.saveLast(false) // volatile: finish makes it durable, or writes a newer one
	}
	return nil
}

func stopReason(stopper Callback) string {
	if r, ok := stopper.(interface{ StopReason() string }); ok {
		return r.StopReason()
	}
	if stopper != nil {
		return "stopped by callback " + stopper.Name()
	}
	return "stopped by a callback"
}

// waitWarmUp waits for the warm-up begin started (once; later calls return at once).
func (f *fit) waitWarmUp() error {
	if f.warmed == nil {
		return nil
	}
	err := <-f.warmed
	f.warmed = nil
	return err
}

// finish ends the run: the final backup (also when interrupted), OnTrainEnd, every write
// finished, history and summary written.
func (f *fit) finish(runErr error, start time.Time) (*Summary, error) {
	f.stopPrefetch()
	if err := f.waitWarmUp(); err != nil && runErr == nil {
		runErr = err
	}
	if errors.Is(runErr, errFinished) {
		runErr = nil
	}
	s := f.summary
	switch {
	case errors.Is(runErr, ErrInterrupted):
		s.StopReason = "interrupted"
	case runErr != nil:
		s.StopReason = "error: " + runErr.Error()
	case s.StopReason == "":
		s.StopReason = fmt.Sprintf("completed %d epochs", f.epochs)
	}
	if runErr == nil || errors.Is(runErr, ErrInterrupted) {
		// Save where a resume continues from (a finished run too, so it can be extended).
		// Not after a non-finite loss: the weights may be NaN, and last/ keeps the previous
		// state.
		if err := f.saveLast(true); err != nil && runErr == nil {
			runErr = err
		}
	}
	if err := f.ckpt.wait(); err != nil && runErr == nil { // best/ and last/ complete on return
		runErr = err
	}
	if runErr == nil {
		if err := f.callbacks.OnTrainEnd(f.model); err != nil {
			runErr = err
		}
		if err := f.ckpt.wait(); err != nil && runErr == nil {
			runErr = err
		}
	}
	if err := f.writeHistory(); err != nil && runErr == nil {
		runErr = err
	}
	if err := f.ckpt.close(); err != nil && runErr == nil {
		runErr = err
	}
	s.fill(f.st.History, f.checkpointCallback())
	s.WallSeconds = time.Since(start).Seconds()
	s.Timing.FitS = s.WallSeconds
	s.Timing.CheckpointBlockingS = f.ckpt.blocking.Seconds()
	if f.trainSeconds > 0 {
		s.ImagesPerSecond = float64(f.imagesSeen) / f.trainSeconds
	}
	if f.runDir != "" {
		if err := WriteSummary(f.runDir, s); err != nil && runErr == nil {
			runErr = err
		}
	}
	return s, runErr
}

// checkpointCallback is the run's first ModelCheckpoint: the summary's best epoch is its.
func (f *fit) checkpointCallback() *ModelCheckpoint {
	for _, c := range f.callbacks {
		if ck, ok := c.(*ModelCheckpoint); ok {
			return ck
		}
	}
	return nil
}

// saveLast writes RUN/last: the session's variables and the resume state, in one atomic
// step, in the background.
func (f *fit) saveLast(durable bool) error {
	if f.runDir == "" {
		return nil
	}
	states, err := f.callbacks.MarshalState()
	if err != nil {
		return err
	}
	f.st.Callbacks = states
	b, err := json.MarshalIndent(f.st, "", " ")
	if err != nil {
		return fmt.Errorf("encode resume state: %w", err)
	}
	if err := f.ckpt.save(Layout(f.runDir).Last(), map[string][]byte{stateFile: b}, durable); err != nil {
		return fmt.Errorf("save %s: %w", Layout(f.runDir).Last(), err)
	}
	f.lastBackup, f.sinceBackup = time.Now(), 0
	return nil
}

// writeHistory queues history.json behind the checkpoint writes: nothing on disk waits for it.
func (f *fit) writeHistory() error {
	if f.runDir == "" {
		return nil
	}
	b, err := json.MarshalIndent(f.st.History, "", " ")
	if err != nil {
		return fmt.Errorf("encode history: %w", err)
	}
	f.ckpt.writeFile(Layout(f.runDir).History(), append(b, '\n'))
	return nil
}

// printEpoch writes Keras' verbose=2 epoch line: every log, training ones first, then val_,
// then the learning rate, each group in name order ("loss" first).
func (f *fit) printEpoch() {
	if f.log == nil {
		return
	}
	rec := f.st.History[len(f.st.History)-1]
	line := fmt.Sprintf("Epoch %d/%d\n%d/%d - %.0fs", rec.Epoch, f.epochs, f.steps, f.steps, rec.Seconds)
	for _, k := range logOrder(rec.Logs) {
		format := " - %s: %.4f"
		if k == "learning_rate" {
			format = " - %s: %.4g"
		}
		line += fmt.Sprintf(format, k, rec.Logs[k])
	}
	fmt.Fprintln(f.log, line)
}

// logOrder sorts log names for display: loss, the training metrics, val_loss, the val_
// metrics, learning_rate.
func logOrder(l EpochLogs) []string {
	rank := func(k string) int {
		switch {
		case k == "loss":
			return 0
		case k == "val_loss":
			return 2
		case k == "learning_rate":
			return 4
		case strings.HasPrefix(k, "val_"):
			return 3
		}
		return 1
	}
	names := slices.Collect(maps.Keys(l))
	slices.SortFunc(names, func(a, b string) int {
		if c := rank(a) - rank(b); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return names
}

// copyLogs copies every log, those callbacks added included (History keeps them all, as
// Keras' History does).
func copyLogs[M ~map[string]float64](l M) EpochLogs {
	out := make(EpochLogs, len(l))
	for k, v := range l {
		out[k] = v
	}
	return out
}
