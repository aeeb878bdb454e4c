# What TensorFlow itself makes of an `emotions export` version directory.
# usage: check_export.py TRAINING_MODEL EXPORT_DIR IMAGES_F32
# Prints one JSON line: saved_model_cli's and tf.saved_model.load's probabilities for the
# images (raw little-endian float32, N x 80 x 80 x 3), the signatures, and the checkpoints' number counts.
import json, os, subprocess, sys

import numpy as np
import tensorflow as tf

model, export, raw = sys.argv[1:4]
size = 80
x = np.fromfile(raw, dtype="<f4").reshape(-1, size, size, 3)
npy = raw + ".npy"
np.save(npy, x)
cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
show = subprocess.run([cli, "show", "--dir", export, "--all"], check=True, capture_output=True, text=True).stdout
outdir = os.path.join(os.path.dirname(npy), "cli-out")
subprocess.run([cli, "run", "--dir", export, "--tag_set", "serve", "--signature_def", "serving_default",
                "--inputs", f"images={npy}", "--outdir", outdir, "--overwrite"],
               check=True, capture_output=True, text=True)
cli_probs = np.load(os.path.join(outdir, "probabilities.npy"))

loaded = tf.saved_model.load(export)
load_probs = loaded.signatures["serving_default"](images=tf.constant(x))["probabilities"].numpy()


def numbers(d):
    r = tf.train.load_checkpoint(os.path.join(d, "variables", "variables"))
    return sum(int(np.prod(s)) for k, s in r.get_variable_to_shape_map().items() if "OBJECT_GRAPH" not in k)


print(json.dumps({
    "cli_probabilities": cli_probs.reshape(-1).tolist(),
    "load_probabilities": load_probs.reshape(-1).tolist(),
    "signatures": sorted(loaded.signatures.keys()),
    "export_numbers": numbers(export),
    "training_numbers": numbers(model),
    "show": show,
}))
