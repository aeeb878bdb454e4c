"""Exports three compiled Keras models with export.py --generic and runs the SavedModel's own
signatures (reset_metrics, train_step, evaluate) through two epochs of fixed batches, beside
Keras fit on a copy loaded from the same .keras file (same weights, same optimizer), shuffle off,
with validation data. Prints one JSON line: for each model, every History value of Keras and of
the export (an epoch's value is what the signature returned on its last batch after a reset, as
fit's logs are), and the metadata; then the refusal message of a model with two problems.

usage: check_generic.py EXPORT_PY WORKDIR
"""
import importlib.util
import json
import os
import sys
import textwrap

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

export_py, work = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location("export", export_py)
export = importlib.util.module_from_spec(spec)
spec.loader.exec_module(export)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402

EPOCHS, BATCH = 2, 8
rng = np.random.default_rng(7)


def tabular():
    keras.utils.set_random_seed(1)
    x = keras.Input((8,), name="features")
    h = layers.Dense(16, activation="relu")(x)
    model = keras.Model(x, layers.Dense(1, name="price")(h))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", metrics=["mae"], jit_compile=False)
    data = lambda n: ({"features": rng.normal(size=(n, 8)).astype("float32")},  # noqa: E731
                      {"price": rng.normal(size=(n, 1)).astype("float32")})
    # Sample weights on this one: the loss and MAE weighted as fit weighs them.
    return model, data(24), data(16), rng.uniform(0.2, 2.0, size=24).astype("float32")


def text():
    # Keras' AUC needs a target per prediction: with a sparse 3-class target fit itself fails
    # (segment_ids and data differ), so AUC goes on a second, binary output, as in the issue's
    # sparse CE + BCE model.
    keras.utils.set_random_seed(2)
    x = keras.Input((20,), dtype="int32", name="tokens")
    h = layers.Embedding(50, 8)(x)
    h = layers.GlobalAveragePooling1D()(h)
    topic = layers.Dense(3, activation="softmax", name="topic")(h)
    positive = layers.Dense(1, activation="sigmoid", name="positive")(h)
    model = keras.Model(x, [topic, positive])
    model.compile(optimizer=keras.optimizers.Adam(0.05),
                  loss=["sparse_categorical_crossentropy", "binary_crossentropy"],
                  metrics=[["accuracy"], ["accuracy", keras.metrics.AUC(name="auc")]], jit_compile=False)
    data = lambda n: ({"tokens": rng.integers(0, 50, size=(n, 20)).astype("int32")},  # noqa: E731
                      {"topic": rng.integers(0, 3, size=(n,)).astype("int32"),
                       "positive": rng.integers(0, 2, size=(n, 1)).astype("float32")})
    return model, data(24), data(16), None


def two_by_two():
    keras.utils.set_random_seed(3)
    image = keras.Input((32, 32, 3), name="image")
    meta = keras.Input((4,), name="meta")
    h = layers.Conv2D(4, 3, strides=2, activation="relu")(image)
    h = layers.GlobalAveragePooling2D()(h)
    h = layers.Concatenate()([h, layers.Dense(4, activation="relu")(meta)])
    label = layers.Dense(3, activation="softmax", name="label")(h)
    score = layers.Dense(1, name="score")(h)
    model = keras.Model({"image": image, "meta": meta}, {"label": label, "score": score})
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss={"label": "categorical_crossentropy", "score": "mse"},
                  loss_weights={"label": 1.0, "score": 0.5},
                  metrics={"label": ["accuracy"], "score": ["mae"]}, jit_compile=False)

    def data(n):
        return ({"image": rng.uniform(size=(n, 32, 32, 3)).astype("float32"),
                 "meta": rng.normal(size=(n, 4)).astype("float32")},
                {"label": np.eye(3, dtype="float32")[rng.integers(0, 3, size=n)],
                 "score": rng.normal(size=(n, 1)).astype("float32")})
    return model, data(24), data(16), None


def plain(d, struct):
    """A single non-dict input or output is given to Keras as an array, several as a list."""
    if isinstance(struct, dict):
        return d
    return list(d.values()) if isinstance(struct, (list, tuple)) else list(d.values())[0]


def batches(arrays, n):
    for i in range(0, n, BATCH):
        yield {k: v[i:i + BATCH] for k, v in arrays.items()}


def run_export(name, build):
    model, (x, y), (vx, vy), weights = build()
    path = os.path.join(work, f"{name}.keras")
    model.save(path)
    out = os.path.join(work, name)
    export.main(["--from", path, "--generic", "--custom-module", "generic_custom_objects", "--out", out])
    meta = json.load(open(os.path.join(out, "emotions.json")))

    # Keras: fit on a copy loaded from the same file.
    keras_model = keras.saving.load_model(path)
    ins, outs, _ = export.generic_structure(model)
    x, y, vx, vy = plain(x, ins), plain(y, outs), plain(vx, ins), plain(vy, outs)
    history = keras_model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0,
                              sample_weight=weights, validation_data=(vx, vy)).history
    history.pop("learning_rate", None)

    # The export, driven as Go will drive it.
    def named(d, specs):
        if isinstance(d, dict):
            return d
        return dict(zip([s["name"] for s in specs], d if isinstance(d, list) else [d]))
    x, y, vx, vy = named(x, meta["inputs"]), named(y, meta["targets"]), named(vx, meta["inputs"]), named(vy, meta["targets"])
    sm = tf.saved_model.load(out)
    train, evaluate, reset = (sm.signatures[s] for s in ("train_step", "evaluate", "reset_metrics"))
    n, vn = len(next(iter(x.values()))), len(next(iter(vx.values())))
    w = weights if weights is not None else np.ones(n, "float32")
    ours = {}
    for _ in range(EPOCHS):
        reset()
        for b in batches({**x, **y, "sample_weights": w}, n):
            logs = train(**{k: tf.constant(v) for k, v in b.items()})
        for k, v in logs.items():
            ours.setdefault(k, []).append(float(v.numpy()))
        reset()
        for b in batches({**vx, **vy, "sample_weights": np.ones(vn, "float32")}, vn):
            logs = evaluate(**{k: tf.constant(v) for k, v in b.items()})
        for k, v in logs.items():
            ours.setdefault("val_" + k, []).append(float(v.numpy()))
    served = sm.signatures["serving_default"](**{k: tf.constant(v[:4]) for k, v in vx.items()})
    predicted = keras_model.predict(plain(vx, ins), verbose=0)
    if not isinstance(predicted, dict):
        predicted = named(predicted, meta["outputs"])
    serve_diff = 0.0
    for k, v in served.items():
        # keras_model was trained by fit as the export was by train_step: same weights after.
        serve_diff = max(serve_diff, float(np.max(np.abs(v.numpy() - predicted[k][:4]))))
    return dict(keras={k: [float(x) for x in v] for k, v in history.items()}, ours=ours, meta=meta,
                serve_keys=sorted(served), serve_diff=serve_diff,
                signature_inputs=sorted(sm.signatures["train_step"].structured_input_signature[1]))


# A team's own module of registered objects, given to the export with --custom-module.
with open(os.path.join(work, "generic_custom_objects.py"), "w") as f:
    f.write(textwrap.dedent('''
        import keras
        import numpy as np

        @keras.saving.register_keras_serializable(package="team")
        def numpy_loss(y_true, y_pred):
            return np.mean(np.asarray(y_true) - np.asarray(y_pred))

        @keras.saving.register_keras_serializable(package="team")
        class OwnStep(keras.Model):
            def train_step(self, data):
                return super().train_step(data)

        @keras.saving.register_keras_serializable(package="team")
        class ToFloat(keras.layers.Layer):
            def call(self, t):
                return keras.ops.cast(t, "float32")

        @keras.saving.register_keras_serializable(package="team")
        class TeamRegressor(keras.Model):
            def __init__(self, **kwargs):
                super().__init__(**kwargs)
                self.hidden = keras.layers.Dense(16, activation="relu")
                self.head = keras.layers.Dense(1)

            def call(self, x):
                return self.head(self.hidden(x))
    '''))
sys.path.insert(0, work)
os.chdir(work)
import generic_custom_objects as m  # noqa: E402


def sequential():
    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input((8,), name="row"), layers.Dense(16, activation="relu"),
                              layers.Dense(1, name="value")])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss=keras.losses.Huber(delta=0.5),
                  metrics=[keras.metrics.RootMeanSquaredError(name="rmse")], jit_compile=False)
    data = lambda n: ({"row": rng.normal(size=(n, 8)).astype("float32")},  # noqa: E731
                      {"value": rng.normal(size=(n, 1)).astype("float32")})
    return model, data(24), data(16), None


def subclassed():
    keras.utils.set_random_seed(5)
    model = m.TeamRegressor()
    model(np.zeros((2, 8), "float32"))  # built by a call, as a team would
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", metrics=["mae"], jit_compile=False)
    data = lambda n: ({"inputs": rng.normal(size=(n, 8)).astype("float32")},  # noqa: E731
                      {"output_0": rng.normal(size=(n, 1)).astype("float32")})
    return model, data(24), data(16), None


def dtypes():
    """One input of each other dtype: string (through a StringLookup table, a resource the
    SavedModel must track), bool, float64, int64, float16."""
    keras.utils.set_random_seed(6)
    word = keras.Input((), dtype="string", name="word")
    flag = keras.Input((1,), dtype="bool", name="flag")
    wide = keras.Input((3,), dtype="float64", name="wide")
    ids = keras.Input((2,), dtype="int64", name="ids")
    half = keras.Input((2,), dtype="float16", name="half")
    h = layers.Concatenate()([layers.StringLookup(vocabulary=["a", "b", "c"], output_mode="one_hot")(word),
                              *(m.ToFloat()(t) for t in (flag, wide, ids, half))])
    model = keras.Model([word, flag, wide, ids, half], layers.Dense(1, activation="sigmoid", name="yes")(h))
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy",
                  metrics=["accuracy", keras.metrics.Precision(name="precision")], jit_compile=False)

    def data(n):
        return ({"word": rng.choice(np.array(["a", "b", "c", "zz"], dtype=object), size=n),
                 "flag": rng.integers(0, 2, size=(n, 1)).astype(bool),
                 "wide": rng.normal(size=(n, 3)), "ids": rng.integers(0, 5, size=(n, 2)).astype("int64"),
                 "half": rng.normal(size=(n, 2)).astype("float16")},
                {"yes": rng.integers(0, 2, size=(n, 1)).astype("float32")})
    return model, data(24), data(16), None


def refusal():
    """A model with two problems: it overrides train_step, and its registered custom loss runs
    NumPy on the tensors (it cannot be traced)."""
    x = keras.Input((4,), name="x")
    model = m.OwnStep(x, layers.Dense(1, name="y")(x))
    model.compile(optimizer="adam", loss=m.numpy_loss)
    path = os.path.join(work, "refused.keras")
    model.save(path)
    try:
        export.main(["--from", path, "--generic", "--custom-module", "generic_custom_objects",
                     "--out", os.path.join(work, "refused")])
    except SystemExit as err:
        return dict(message=str(err), wrote=os.path.exists(os.path.join(work, "refused")))
    return dict(message=None, wrote=True)


def sparse_auc():
    """AUC on a sparse 3-class target: Keras fit fails on it (2 labels against 6 scores); the
    export must refuse it, naming the metric, rather than accept what cannot train. And a
    learning-rate schedule, which Go's ReduceLROnPlateau cannot drive."""
    x = keras.Input((4,), name="x")
    model = keras.Model(x, layers.Dense(3, activation="softmax", name="klass")(x))
    schedule = keras.optimizers.schedules.ExponentialDecay(0.01, decay_steps=10, decay_rate=0.9)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy",
                  metrics=[keras.metrics.AUC(name="auc")])
    path = os.path.join(work, "sparse_auc.keras")
    model.save(path)
    try:
        export.main(["--from", path, "--generic", "--out", os.path.join(work, "sparse_auc")])
    except SystemExit as err:
        return dict(message=str(err), wrote=os.path.exists(os.path.join(work, "sparse_auc")))
    return dict(message=None, wrote=True)


result = {name: run_export(name, build) for name, build in
          (("tabular", tabular), ("text", text), ("two_by_two", two_by_two), ("sequential", sequential),
           ("subclassed", subclassed), ("dtypes", dtypes))}
result["refusal"] = refusal()
result["sparse_auc"] = sparse_auc()
print(json.dumps(result))
