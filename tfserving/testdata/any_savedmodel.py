"""Writes SavedModels emotions did not make, as a team brings them, and what TensorFlow itself
answers for fixed inputs (the reference the Go server must equal).

usage: any_savedmodel.py OUT_DIR
  OUT_DIR/keras/      Keras 3 model.export() of a model with two named inputs
                      (x: float32 (8,), ids: int32 (5,)) and two outputs
  OUT_DIR/keras.json  {"inputs": {...}, "outputs": {name: nested list}} of serving_default
"""
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

out = sys.argv[1]
keras.utils.set_random_seed(0)

x = keras.Input((8,), dtype="float32", name="x")
ids = keras.Input((5,), dtype="int32", name="ids")
emb = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(50, 4)(ids))
h = keras.layers.Concatenate()([keras.layers.Dense(6, activation="relu")(x), emb])
probs = keras.layers.Dense(3, activation="softmax", name="probs")(h)
score = keras.layers.Dense(1, name="score")(h)
model = keras.Model({"x": x, "ids": ids}, [probs, score])
model.export(os.path.join(out, "keras"), verbose=False)

rng = np.random.default_rng(0)
inputs = {
    "x": rng.normal(size=(3, 8)).astype("float32"),
    "ids": rng.integers(0, 50, size=(3, 5)).astype("int32"),
}
loaded = tf.saved_model.load(os.path.join(out, "keras"))
res = loaded.signatures["serving_default"](**{k: tf.constant(v) for k, v in inputs.items()})
# serve() is what Keras documents for the export; the signature must agree with it.
direct = loaded.serve({k: tf.constant(v) for k, v in inputs.items()})
assert np.allclose(np.concatenate([np.asarray(t).reshape(3, -1) for t in direct], 1),
                   np.concatenate([res[k].numpy().reshape(3, -1) for k in sorted(res)], 1)), "serve != serving_default"
with open(os.path.join(out, "keras.json"), "w") as f:
    json.dump({"inputs": {k: v.tolist() for k, v in inputs.items()},
               "outputs": {k: v.numpy().tolist() for k, v in res.items()}}, f)

# A tf.Module with a string signature, as tf.saved_model.save writes it.
class Text(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def __call__(self, text):
        return {"length": tf.strings.length(text), "upper": tf.strings.upper(text)}


text = Text()
tf.saved_model.save(text, os.path.join(out, "text"), signatures={"serving_default": text.__call__})
