#!/usr/bin/env python3
"""Python peer of bench_study.sh: the seed's study as a Python user runs it, end to end, in one
process, timed phase by phase.

1. preprocessing: OpenCV's Haar cascade crops the faces of train/, valid/ and test/ (the rules of
   haar_faces.py: haarcascade_frontalface_default, scaleFactor 1.1, minNeighbors 5, the largest
   face, else a centre square; INTER_AREA resize to --input-size), then the exporter's pixel
   normalisation (rescale, the seed's 1/255). A plain loop: OpenCV parallelises detectMultiScale
   over its own threads. Nothing is cached between runs.
2. the model: savedmodel/export.py's build_model, the very code `emotions new-model` runs (same
   backbone, seed, Dense 64, Dropout 0.5), compiled with Adam 1e-3, categorical cross-entropy,
   accuracy.
3. fit: batch 64, steps_per_epoch = n // 64 over an endless reshuffled stream (tf.data: shuffle,
   repeat, batch, prefetch; the seed's flow_from_directory was endless too), validation on valid/
   (batch 64) after each epoch, the seed's callbacks: EarlyStopping(val_loss, patience 10),
   ModelCheckpoint(save_best_only, a .keras file), ReduceLROnPlateau(0.2, 5, min_lr 1e-4).
   --no-early-stopping keeps EarlyStopping in the list with patience = --epochs, which cannot
   stop a run of --epochs epochs (the first epoch always improves), so every epoch runs.
4. test: the best checkpoint loaded (keras.saving.load_model) and evaluated on test/.

Timed phases (seconds, time.perf_counter): import_s (numpy, OpenCV, TensorFlow, Keras, the
exporter), preprocess_s, build_s (build + compile), fit_s (the model.fit call), inside fit:
first_step_s, train_step_s (sum over steps of on_train_batch_begin -> on_train_batch_end, first
step included: the train function plus Keras' per-batch Python work between the two hooks, i.e.
the log conversion and the other callbacks' batch hooks), train_function_s (the narrower sum of
calls to model.train_function alone), validation_s (on_test_begin -> on_test_end),
checkpoint_blocking_s (time inside ModelCheckpoint.on_epoch_end, per epoch too), and test_s
(load the best checkpoint + evaluate). Prints one JSON object as its last line.
"""
import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "savedmodel"))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.path.join(ROOT, "data", "faces4"), help="dataset with train/, valid/, test/ class folders")
    p.add_argument("--out", required=True, help="directory for the checkpoint (created; must not hold one)")
    p.add_argument("--backbone", default="inception_resnet_v2")
    p.add_argument("--classes", default="angry,happy,normal,sad")
    p.add_argument("--input-size", type=int, default=80)
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--patience", type=int, default=10, help="EarlyStopping patience (the seed's 10)")
    p.add_argument("--no-early-stopping", action="store_true",
                   help="run every epoch: EarlyStopping kept with patience = --epochs, which cannot stop the run")
    a = p.parse_args()

    t = time.perf_counter()
    import cv2
    import keras
    import numpy as np
    import tensorflow as tf

    import export  # the project's exporter: the same build_model and normalisations as `emotions new-model`
    phases = {"import_s": time.perf_counter() - t}

    classes = a.classes.split(",")
    export_args = export.parse_args(["--out", "unused", "--backbone", a.backbone, "--input-size", str(a.input_size),
                                     "--classes", a.classes, "--seed", str(a.seed), "--dense", "64", "--dropout", "0.5",
                                     "--learning-rate", str(a.learning_rate)])
    norm = export.NORMALIZATIONS[export_args.normalization]
    scale, offset = np.float32(norm["scale"]), np.float32(norm["offset"])
    checkpoint = os.path.join(a.out, "best.keras")
    os.makedirs(a.out, exist_ok=True)
    if os.path.exists(checkpoint):
        raise SystemExit(f"study_peer: {checkpoint} exists: give a fresh --out")

    # 1. Preprocessing.
    t = time.perf_counter()
    cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml"))
    found = [0]

    def crop(path):
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            return None
        faces = cascade.detectMultiScale(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), scaleFactor=1.1, minNeighbors=5)
        if len(faces):
            found[0] += 1
            x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
        else:
            s = min(img.shape[:2])
            x, y, w, h = (img.shape[1] - s) // 2, (img.shape[0] - s) // 2, s, s
        face = cv2.resize(img[y:y + h, x:x + w], (a.input_size, a.input_size), interpolation=cv2.INTER_AREA)
        if not norm["bgr"]:
            face = cv2.cvtColor(face, cv2.COLOR_BGR2RGB)
        return face.astype(np.float32) * scale + offset

    def load(split):
        xs, ys, unreadable = [], [], 0
        for label, name in enumerate(classes):
            folder = os.path.join(a.data, split, name)
            for f in sorted(os.listdir(folder)):
                face = crop(os.path.join(folder, f))
                if face is None:
                    unreadable += 1
                    continue
                xs.append(face)
                ys.append(label)
        if not xs:
            raise SystemExit(f"study_peer: no readable image under {os.path.join(a.data, split)}")
        return np.stack(xs), keras.utils.to_categorical(np.array(ys), len(classes)).astype(np.float32), unreadable

    (x, y, bad_train), (xv, yv, bad_valid), (xt, yt, bad_test) = load("train"), load("valid"), load("test")
    phases["preprocess_s"] = time.perf_counter() - t
    images = len(x) + len(xv) + len(xt)

    # 2. The model.
    t = time.perf_counter()
    keras.utils.set_random_seed(a.seed)
    model, _ = export.build_model(export_args, classes)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=a.learning_rate),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    phases["build_s"] = time.perf_counter() - t

    # 3. fit.
    steps = len(x) // a.batch_size
    if steps == 0:
        raise SystemExit(f"study_peer: {len(x)} training images make no batch of {a.batch_size}")
    stream = (tf.data.Dataset.from_tensor_slices((x, y))
              .shuffle(len(x), seed=a.seed, reshuffle_each_iteration=True)
              .repeat()
              .batch(a.batch_size, drop_remainder=True)
              .prefetch(tf.data.AUTOTUNE))

    step_times, validation_times, checkpoint_times = [], [], []

    class StepBegin(keras.callbacks.Callback):
        # First in the callback list, so the interval opens before any other batch hook.
        def on_train_batch_begin(self, batch, logs=None):
            self.t = time.perf_counter()

    class StepEnd(keras.callbacks.Callback):
        # Last among the user's callbacks, so the interval closes after theirs. Defining a
        # batch-end hook makes Keras call batch-end hooks synchronously, as it already does for
        # ModelCheckpoint (it has one too): this timing changes nothing in how fit runs.
        def __init__(self, begin):
            super().__init__()
            self.begin = begin

        def on_train_batch_end(self, batch, logs=None):
            step_times.append(time.perf_counter() - self.begin.t)

        def on_test_begin(self, logs=None):
            self.v = time.perf_counter()

        def on_test_end(self, logs=None):
            validation_times.append(time.perf_counter() - self.v)

    class TimedCheckpoint(keras.callbacks.ModelCheckpoint):
        def on_epoch_end(self, epoch, logs=None):
            t0 = time.perf_counter()
            super().on_epoch_end(epoch, logs)
            checkpoint_times.append(time.perf_counter() - t0)

    # The train function alone, without the callbacks' batch hooks: fit reuses the function
    # made here (make_train_function returns an existing one).
    function_times = []
    model.make_train_function()
    train_function = model.train_function

    def timed_train_function(iterator):
        t0 = time.perf_counter()
        logs = train_function(iterator)
        function_times.append(time.perf_counter() - t0)
        return logs

    model.train_function = timed_train_function

    begin = StepBegin()
    patience = a.epochs if a.no_early_stopping else a.patience
    callbacks = [begin,
                 keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience),
                 TimedCheckpoint(checkpoint, monitor="val_loss", save_best_only=True),
                 keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.2, patience=5, min_lr=1e-4),
                 StepEnd(begin)]
    t = time.perf_counter()
    history = model.fit(stream, epochs=a.epochs, steps_per_epoch=steps, validation_data=(xv, yv),
                        validation_batch_size=a.batch_size, callbacks=callbacks, verbose=0,
                        shuffle=False)  # the stream reshuffles itself
    phases["fit_s"] = time.perf_counter() - t
    if len(function_times) != len(step_times):
        raise SystemExit(f"study_peer: fit ran {len(step_times)} steps but the timed train function "
                         f"{len(function_times)} times: Keras replaced model.train_function")

    # 4. Test: the best checkpoint, as the seed evaluated it.
    t = time.perf_counter()
    best = keras.saving.load_model(checkpoint)
    test = best.evaluate(xt, yt, batch_size=a.batch_size, verbose=0, return_dict=True)
    phases["test_s"] = time.perf_counter() - t

    epochs_run = len(history.history["loss"])
    steady = sum(step_times[1:])
    figures = dict(phases)
    figures.update({
        "first_step_s": step_times[0],
        "train_step_s": sum(step_times),
        "train_function_s": sum(function_times),
        "steps": len(step_times),
        "validation_s": sum(validation_times),
        "checkpoint_blocking_s": sum(checkpoint_times),
        "checkpoint_blocking_per_epoch_s": [round(c, 3) for c in checkpoint_times],
        "images_per_s": (len(step_times) - 1) * a.batch_size / steady if steady > 0 else None,
        "epochs_run": epochs_run,
        "steps_per_epoch": steps,
        "batch_size": a.batch_size,
        "train_images": len(x), "valid_images": len(xv), "test_images": len(xt),
        "unreadable_images": bad_train + bad_valid + bad_test,
        "faces_found_share": round(found[0] / images, 4),
        "best_val_loss": min(history.history["val_loss"]),
        "test": {"accuracy": float(test["accuracy"]), "loss": float(test["loss"]), "n": len(xt)},
        "backbone": a.backbone, "seed": a.seed, "early_stopping_patience": patience,
        "opencv": cv2.__version__, "tensorflow": tf.__version__, "keras": keras.__version__,
    })
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
