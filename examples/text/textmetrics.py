"""The text example's own metric, registered so that Keras (and emotions' exporter, given
--custom-module textmetrics) can load the saved model."""
import keras
from keras import ops


@keras.saving.register_keras_serializable(package="examples")
class SparseAUC(keras.metrics.AUC):
    """ROC AUC of class 1 of a 2-unit softmax, scored against sparse 0/1 labels: Keras' AUC
    needs one target per score, which sparse labels are not."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.reshape(ops.cast(y_true, "float32"), (-1, 1))
        return super().update_state(y_true, y_pred[:, 1:2], sample_weight)
