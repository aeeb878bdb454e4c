"""The Keras side of an example under examples/: its model.py says what the model, its data and
its callbacks are; this script makes them, or runs Keras' own fit on them for the parity test.

usage:
  keras_example.py make MODEL_PY DIR   seeds, builds and compiles the model, saves DIR/model.keras,
                                       writes DIR/train.npz and DIR/valid.npz (arrays named as the
                                       model's inputs and outputs, optional sample_weight)
  keras_example.py fit MODEL_PY DIR    Keras fit of DIR/model.keras on those archives, shuffle off,
                                       with model.py's callbacks and a CSVLogger writing
                                       DIR/keras/history.csv; DIR/keras/fit.json holds the History
                                       and what the callbacks decided

A model.py defines EPOCHS, BATCH_SIZE, build() (a compiled model), data() ({"train": arrays,
"valid": arrays}) and callbacks(run_dir) (Keras callbacks mirroring the Go program's, in order),
and may set CUSTOM_MODULE (a module beside it to import first: registered losses or metrics).
"""
import importlib.util
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def load(model_py):
    sys.path.insert(0, os.path.dirname(os.path.abspath(model_py)))
    spec = importlib.util.spec_from_file_location("example_model", model_py)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    if getattr(mod, "CUSTOM_MODULE", None):
        importlib.import_module(mod.CUSTOM_MODULE)
    return mod


def make(mod, out):
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    model = mod.build()
    os.makedirs(out, exist_ok=True)
    model.save(os.path.join(out, "model.keras"))
    for split, arrays in mod.data().items():
        np.savez(os.path.join(out, f"{split}.npz"), **arrays)


def split(model, arrays):
    """Keras' x, y and sample_weight from arrays named as the model's inputs and outputs."""
    x = {t.name: arrays[t.name] for t in model.inputs}
    outs = model.output_names
    y = {k: arrays[k] for k in outs}
    x = x if len(x) > 1 else next(iter(x.values()))
    y = y if len(y) > 1 else next(iter(y.values()))
    return x, y, arrays.get("sample_weight")


def fit(mod, out):
    import keras
    import numpy as np

    model = keras.saving.load_model(os.path.join(out, "model.keras"))
    data = {s: dict(np.load(os.path.join(out, f"{s}.npz"))) for s in ("train", "valid")}
    x, y, w = split(model, data["train"])
    vx, vy, _ = split(model, data["valid"])
    run = os.path.join(out, "keras")
    os.makedirs(run, exist_ok=True)
    cbs = mod.callbacks(run) + [keras.callbacks.CSVLogger(os.path.join(run, "history.csv"))]
    history = model.fit(x, y, sample_weight=w, validation_data=(vx, vy), epochs=mod.EPOCHS,
                        batch_size=mod.BATCH_SIZE, shuffle=False, verbose=0, callbacks=cbs)
    decisions = {}
    for c in cbs:
        if isinstance(c, keras.callbacks.EarlyStopping):
            decisions["early_stopping_stopped_epoch"] = int(c.stopped_epoch)
            decisions["early_stopping_best"] = float(c.best)
    with open(os.path.join(run, "fit.json"), "w") as f:
        json.dump(dict(history={k: [float(v) for v in vs] for k, vs in history.history.items()},
                       epochs_run=len(history.epoch), **decisions), f)


if __name__ == "__main__":
    what, model_py, out = sys.argv[1:4]
    {"make": make, "fit": fit}[what](load(model_py), out)
