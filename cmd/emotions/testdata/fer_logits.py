"""The end-to-end test's Python side, for a FER2013-style model: 48x48 grayscale in, logits out.

build OUT.keras          write the Keras model (compiled with from_logits=True)
build-wide OUT.keras     a 96x64 (height x width) RGB softmax model, not compiled
keras MODEL.keras RUN_BEST X.npz OUT.json
                         load the Keras model, give it the weights Go trained (RUN_BEST's
                         checkpoint, matched by variables.json's Keras paths) and write
                         softmax(model(x)) for the npz's x: what Keras predicts on the tensors
                         emotions feeds
"""
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras  # noqa: E402
import numpy as np  # noqa: E402


def build(out):
    keras.utils.set_random_seed(3)
    inp = keras.Input((48, 48, 1), name="face")
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inp)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    logits = keras.layers.Dense(4, name="logits")(x)  # no softmax: logits
    model = keras.Model(inp, logits)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    model.save(out)


def build_wide(out):
    keras.utils.set_random_seed(4)
    inp = keras.Input((96, 64, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    keras.Model(inp, keras.layers.Dense(3, activation="softmax")(x)).save(out)


def predict(model_path, best, npz, out):
    import tensorflow as tf

    model = keras.saving.load_model(model_path, compile=False)
    listing = json.load(open(os.path.join(best, "variables.json")))["variables"]
    by_path = {v["path"]: v["key"] for v in listing if v["role"] == "model"}
    reader = tf.train.load_checkpoint(os.path.join(best, "variables", "variables"))
    for var in model.variables:
        var.assign(reader.get_tensor(by_path[var.path]))
    x = np.load(npz)["x"]
    probs = tf.nn.softmax(model(x, training=False)).numpy()
    json.dump({"probabilities": probs.tolist(), "files": np.load(npz)["files"].tolist()}, open(out, "w"))


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build(sys.argv[2])
    elif sys.argv[1] == "build-wide":
        build_wide(sys.argv[2])
    else:
        predict(*sys.argv[2:6])
