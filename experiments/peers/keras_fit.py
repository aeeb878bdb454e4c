#!/usr/bin/env python3
"""Keras peer of `emotions train` for bench_train.sh and bench_memory.sh: what a Python user
runs. Builds the same model as `emotions new-model` (savedmodel/export.py's build_model, same
backbone and seed), compiles it with Adam + categorical cross-entropy + accuracy, and runs
model.fit on the tensors `emotions preprocess` wrote. Epoch times exclude nothing Keras does
in fit; the first epoch (graph tracing) is left out of the rate. Prints one JSON object.
"""
import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "savedmodel"))


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--npz", required=True, help="x float32 [n,S,S,3], y int32 (from emotions preprocess)")
    p.add_argument("--backbone", default="inception_resnet_v2")
    p.add_argument("--classes", default="angry,happy,normal,sad")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--valid-npz", help="validate on these tensors after each epoch, as the seed's fit did")
    p.add_argument("--checkpoint", help="ModelCheckpoint(save_best_only) of the whole model to this .keras file, "
                                        "as the seed's fit did (what `emotions train` does into RUN/best)")
    a = p.parse_args()

    import numpy as np
    import keras
    import tensorflow as tf
    import export  # the project's exporter: the very same build_model

    keras.utils.set_random_seed(a.seed)
    data = np.load(a.npz)
    x, y = data["x"], data["y"]
    classes = a.classes.split(",")
    size = x.shape[1]
    args = export.parse_args(["--out", "unused", "--backbone", a.backbone, "--input-size", str(size),
                              "--classes", a.classes, "--seed", str(a.seed)])
    model, _ = export.build_model(args, classes)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=a.learning_rate),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    steps = len(x) // a.batch_size
    # Full batches only, as the seed's fit (steps_per_epoch = n // batch): a last partial batch
    # would retrace the step inside a timed epoch.
    n = steps * a.batch_size
    x, yh = x[:n], keras.utils.to_categorical(y[:n], len(classes))

    times = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t0)

    callbacks = [Timer()]
    validation = None
    if a.valid_npz:
        v = np.load(a.valid_npz)
        validation = (v["x"], keras.utils.to_categorical(v["y"], len(classes)))
    if a.checkpoint:
        callbacks.append(keras.callbacks.ModelCheckpoint(a.checkpoint, monitor="val_loss" if validation else "loss",
                                                         save_best_only=True))
    model.fit(x, yh, batch_size=a.batch_size, epochs=a.epochs, steps_per_epoch=steps, shuffle=True,
              verbose=0, callbacks=callbacks, validation_data=validation)
    timed = times[1:] if len(times) > 1 else times
    print(json.dumps({"images_per_second": steps * a.batch_size * len(timed) / sum(timed),
                      "epoch_seconds": times, "steps_per_epoch": steps, "batch_size": a.batch_size,
                      "backbone": a.backbone, "tensorflow": tf.__version__, "keras": keras.__version__}))


if __name__ == "__main__":
    main()
