"""Wraps Keras models of other shapes and output kinds with export.py and compares the
SavedModel's endpoints with Keras itself. usage: check_wrap.py EXPORT_PY WORK
Prints one JSON line (read by savedmodel/export_test.go)."""
import importlib.util
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras
import numpy as np
import tensorflow as tf
from keras import layers

export_py, work = sys.argv[1:3]
spec = importlib.util.spec_from_file_location("export", export_py)
exporter = importlib.util.module_from_spec(spec)
spec.loader.exec_module(exporter)


def export(*args):
    """None when export.py succeeds, else its refusal message."""
    try:
        exporter.main(list(args))
        return None
    except SystemExit as e:
        return str(e)


def save(model, name, loss=None):
    if loss is not None:
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    path = os.path.join(work, name + ".keras")
    model.save(path)
    return path


def small_cnn(shape, units, activation, seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape)
    x = layers.Conv2D(8, 3, activation="relu")(inputs)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(8, 3, activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(units, activation=activation)(x))


def image_shape(signature):
    return [-1 if d is None else int(d) for d in signature.structured_input_signature[1]["images"].shape]


report = {}
rng = np.random.default_rng(0)

# A FER2013-style model: 48x48 grayscale, seven classes, logits, compiled with from_logits=True.
fer = small_cnn((48, 48, 1), 7, None, seed=5)
fer_path = save(fer, "fer", keras.losses.CategoricalCrossentropy(from_logits=True))
fer_classes = "angry,disgust,fear,happy,sad,surprise,neutral"
fer_out = os.path.join(work, "fer")
report["fer_error"] = export("--from", fer_path, "--classes", fer_classes, "--normalization", "mean_std",
                             "--mean", "0.5", "--std", "0.25", "--out", fer_out)
x = (rng.random((6, 48, 48, 1), dtype=np.float32) * 4 - 2)
logits = fer(x, training=False)
# Half the labels are the model's own guess, so `correct` counts something.
y = np.eye(7, dtype=np.float32)[np.concatenate([np.argmax(logits[:3], 1), (np.argmax(logits[3:], 1) + 1) % 7])]
loaded = tf.saved_model.load(fer_out)
serve = loaded.signatures["serve"](images=tf.constant(x))["probabilities"].numpy()
ev = loaded.signatures["evaluate"](images=tf.constant(x), labels=tf.constant(y))
step = loaded.signatures["train_step"](images=tf.constant(x), labels=tf.constant(y), sample_weights=tf.ones([6]))
cce = keras.losses.CategoricalCrossentropy(from_logits=True, reduction="sum")
report["fer"] = dict(
    serve_max_diff=float(np.max(np.abs(serve - tf.nn.softmax(logits).numpy()))),
    serve_row_sums=np.sum(serve, axis=1).tolist(),
    loss_sum=float(ev["loss_sum"]), keras_loss_sum=float(cce(y, logits)),
    correct=float(ev["correct"]), keras_correct=int(np.sum(np.argmax(logits, 1) == np.argmax(y, 1))),
    # The first step's loss is computed before its update: Keras' compiled loss on the same batch.
    train_loss=float(step["loss"]), keras_train_loss=float(fer.compute_loss(x=x, y=y, y_pred=logits)),
    shape=image_shape(loaded.signatures["serve"]),
    train_shape=image_shape(loaded.signatures["train_step"]),
)

# A non-square RGB softmax model (H=96, W=64), not compiled.
wide = small_cnn((96, 64, 3), 3, "softmax", seed=6)
wide_out = os.path.join(work, "wide")
report["wide_error"] = export("--from", save(wide, "wide"), "--classes", "a,b,c", "--out", wide_out)
x = rng.random((4, 96, 64, 3), dtype=np.float32)
y = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
loaded = tf.saved_model.load(wide_out)
probs = wide(x, training=False).numpy()
ev = loaded.signatures["evaluate"](images=tf.constant(x), labels=tf.constant(y))
report["wide"] = dict(
    shape=image_shape(loaded.signatures["serve"]),
    default_shape=image_shape(loaded.signatures["serving_default"]),
    serve_max_diff=float(np.max(np.abs(loaded.signatures["serve"](images=tf.constant(x))["probabilities"].numpy() - probs))),
    loss_sum=float(ev["loss_sum"]),
    keras_loss_sum=float(keras.losses.CategoricalCrossentropy(reduction="sum")(y, probs)),
)

# What export.py refuses, and the override --output resolves.
def refusal(name, model, *args, loss=None):
    report.setdefault("refusals", {})[name] = export(
        "--from", save(model, name, loss), "--out", os.path.join(work, name), *args)


refusal("sigmoid", small_cnn((32, 32, 3), 3, "sigmoid", 1), "--classes", "a,b,c")
refusal("two_channels", small_cnn((32, 32, 2), 3, "softmax", 1), "--classes", "a,b,c")
refusal("any_size", small_cnn((None, None, 3), 3, "softmax", 1), "--classes", "a,b,c")
refusal("softmax_from_logits", small_cnn((32, 32, 3), 3, "softmax", 1), "--classes", "a,b,c",
        loss=keras.losses.CategoricalCrossentropy(from_logits=True))
refusal("output_contradicts", small_cnn((32, 32, 3), 3, "softmax", 1), "--classes", "a,b,c", "--output", "logits")
refusal("class_count", small_cnn((32, 32, 3), 3, "softmax", 1), "--classes", "a,b")
refusal("caffe_gray", small_cnn((32, 32, 1), 3, None, 1), "--classes", "a,b,c", "--normalization", "caffe")
refusal("mean_without_std", small_cnn((32, 32, 1), 3, None, 1), "--classes", "a,b,c", "--normalization", "mean_std", "--mean", "0.5")
refusal("mean_with_rescale", small_cnn((32, 32, 1), 3, None, 1), "--classes", "a,b,c", "--mean", "0.5", "--std", "0.5")
refusal("three_means_gray", small_cnn((32, 32, 1), 3, None, 1), "--classes", "a,b,c", "--normalization", "mean_std",
        "--mean", "0.5,0.5,0.5", "--std", "0.5")
refusal("zero_std", small_cnn((32, 32, 3), 3, None, 1), "--classes", "a,b,c", "--normalization", "mean_std",
        "--mean", "0.5", "--std", "0.2,0,0.2")


def unknown_last_layer():
    keras.utils.set_random_seed(2)
    inputs = keras.Input((32, 32, 3))
    x = layers.GlobalAveragePooling2D()(inputs)
    return keras.Model(inputs, layers.Add()([layers.Dense(3)(x), layers.Dense(3)(x)]))


refusal("unknown_kind", unknown_last_layer(), "--classes", "a,b,c")
refusal("unknown_kind_told", unknown_last_layer(), "--classes", "a,b,c", "--output", "logits")
print(json.dumps(report))
