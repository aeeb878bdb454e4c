package train

import (
	"fmt"
	"strings"
)

// Mode says which direction of a monitored quantity counts as better.
type Mode string

const (
	ModeAuto Mode = "auto"
	ModeMin  Mode = "min"
	ModeMax  Mode = "max"
)

// MetricDirections may be implemented by a Model to report the direction of
// its compiled metrics, the way Keras reads Metric._direction ("up"/"down")
// from model.metrics in mode "auto". A Model that does not implement it gets
// KerasMetricDirections.
type MetricDirections interface {
	// MetricDirection returns ModeMax for "up", ModeMin for "down" and
	// ok=false when the metric is unknown or has no direction.
	MetricDirection(name string) (direction Mode, ok bool)
}

// KerasMetricDirections holds the _direction of the Keras 3.15.1 built-in
// metrics under their default names (plus "acc", the compile-time alias of
// "accuracy"). It stands in for model.metrics, which the Go model lacks.
var KerasMetricDirections = metricDirections(
	[]string{"accuracy", "acc", "auc", "binary_accuracy", "categorical_accuracy",
		"sparse_categorical_accuracy", "top_k_categorical_accuracy",
		"sparse_top_k_categorical_accuracy", "precision", "recall", "f1_score",
		"fbeta_score", "io_u", "binary_io_u", "mean_io_u", "one_hot_io_u",
		"one_hot_mean_io_u", "cosine_similarity", "r2_score",
		"pearson_correlation", "concordance_correlation"},
	[]string{"binary_crossentropy", "categorical_crossentropy",
		"sparse_categorical_crossentropy", "kl_divergence", "poisson", "hinge",
		"squared_hinge", "categorical_hinge", "logcosh", "mean_absolute_error",
		"mean_absolute_percentage_error", "mean_squared_error",
		"mean_squared_logarithmic_error", "root_mean_squared_error"},
)

func metricDirections(up, down []string) map[string]Mode {
	directions := map[string]Mode{}
	for _, name := range up {
		directions[name] = ModeMax
	}
	for _, name := range down {
		directions[name] = ModeMin
	}
	return directions
}

// monitorRule is the comparison shared by every monitor callback.
// Keras 3.15.1 keras/src/callbacks/monitor_callback.py MonitorCallback.
type monitorRule struct {
	monitor  string
	mode     Mode
	minDelta float64 // signed once the direction is known, as Keras does
	// direction is ModeMin (ops.less) or ModeMax (ops.greater); empty until
	// resolved, because Keras delays _set_monitor_op to the first
	// on_epoch_end when the model's metrics are built.
	direction Mode
}

// newMonitorRule mirrors MonitorCallback.__init__: an unknown mode falls back
// to auto with a warning, and min_delta is stored as its absolute value.
func newMonitorRule(callback, monitor string, mode Mode, minDelta float64, warn func(string, ...any)) monitorRule {
	if mode == "" {
		mode = ModeAuto
	}
	if mode != ModeAuto && mode != ModeMin && mode != ModeMax {
		warn("%s mode '%s' is unknown, fallback to auto mode.", callback, mode)
		mode = ModeAuto
	}
	if minDelta < 0 {
		minDelta = -minDelta
	}
	return monitorRule{monitor: monitor, mode: mode, minDelta: minDelta}
}

// resolve ports MonitorCallback._set_monitor_op. It is a no-op once resolved.
func (r *monitorRule) resolve(callback string, m Model) error {
	if r.direction != "" {
		return nil
	}
	direction, err := r.inferDirection(callback, m)
	if err != nil {
		return err
	}
	r.direction = direction
	if direction == ModeMin {
		r.minDelta = -r.minDelta
	}
	return nil
}

func (r *monitorRule) inferDirection(callback string, m Model) (Mode, error) {
	if r.mode == ModeMin || r.mode == ModeMax {
		return r.mode, nil
	}
	metricName := strings.TrimPrefix(r.monitor, "val_")
	var direction Mode
	if metricName == "loss" {
		direction = ModeMin
	}
	// Keras lets a compiled metric with that name override the loss rule.
	if reporter, ok := m.(MetricDirections); ok {
		if d, found := reporter.MetricDirection(metricName); found {
			direction = d
		}
	} else if d, found := KerasMetricDirections[metricName]; found {
		direction = d
	}
	if direction == "" {
		return "", fmt.Errorf("%s callback received monitor=%s, but Keras isn't able to "+
			"automatically determine whether that metric should be maximized or minimized. "+
			"Pass mode='max' or mode='min'", callback, r.monitor)
	}
	return direction, nil
}

// isImprovement ports MonitorCallback._is_improvement. Keras compares with
// ops.less/ops.greater, which turn the Python floats into float32 tensors:
// the subtraction happens in float64, the comparison in float32. NaN never
// improves on anything and nothing improves on a NaN reference.
func (r *monitorRule) isImprovement(value float64, reference *float64) bool {
	if reference == nil {
		return true
	}
	shifted := float32(value - r.minDelta)
	ref := float32(*reference)
	if r.direction == ModeMax {
		return shifted > ref
	}
	return shifted < ref
}

// monitorOr is Keras' default monitor, val_loss, for an empty one (a zero-value config).
func monitorOr(monitor string) string {
	if monitor == "" {
		return "val_loss"
	}
	return monitor
}

// nameOr is a callback's configured name, else its kind.
func nameOr(name, kind string) string {
	if name == "" {
		return kind
	}
	return name
}
