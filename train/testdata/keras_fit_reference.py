"""Keras `fit` on the model savedmodel/export.py builds, as the reference Go's training is
compared with: the same builder and compile (export.build_compiled, so the same initial weights,
dtype policy and optimizer), the arrays the Go test wrote, no shuffling. Prints History as JSON.

usage: keras_fit_reference.py DATA_DIR EPOCHS BATCH_SIZE [--replicas N] -- EXPORT_ARGS...
--replicas N: fit under tf.distribute.MirroredStrategy over N logical CPU devices (the CPU
split as Go's --cpu-devices N splits it), the model built in the strategy's scope.
DATA_DIR holds x_train.f32, y_train.f32, x_valid.f32, y_valid.f32 (little-endian float32,
row-major) and shape.json {"n_train", "n_valid", "height", "width", "channels", "classes"}.
"""
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "savedmodel"))

import export  # noqa: E402


def main(argv):
    split = argv.index("--")
    data, epochs, batch = argv[0], int(argv[1]), int(argv[2])
    replicas = int(argv[argv.index("--replicas") + 1]) if "--replicas" in argv[:split] else 1
    args = export.parse_args(["--out", "unused"] + argv[split + 1:])

    import contextlib

    import keras
    import numpy as np
    import tensorflow as tf

    scope = contextlib.nullcontext()
    if replicas > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
        scope = tf.distribute.MirroredStrategy([f"/cpu:{r}" for r in range(replicas)]).scope()

    with open(os.path.join(data, "shape.json")) as f:
        shape = json.load(f)

    def read(name, n, *dims):
        return np.fromfile(os.path.join(data, name), dtype="<f4").reshape(n, *dims)

    image = (shape["height"], shape["width"], shape["channels"])
    x, y = read("x_train.f32", shape["n_train"], *image), read("y_train.f32", shape["n_train"], shape["classes"])
    xv, yv = read("x_valid.f32", shape["n_valid"], *image), read("y_valid.f32", shape["n_valid"], shape["classes"])

    keras.utils.set_random_seed(args.seed)
    with scope:
        model, _ = export.build_compiled(args, export.parse_classes(args.classes))
    history = model.fit(x, y, batch_size=batch, epochs=epochs, shuffle=False,
                        validation_data=(xv, yv), verbose=0)
    logs = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    logs["loss_scale"] = float(np.asarray(model.optimizer.dynamic_scale)) if hasattr(model.optimizer, "dynamic_scale") else None
    json.dump(logs, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
