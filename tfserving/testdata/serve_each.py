"""Loads each SavedModel directory given with tf.saved_model.load and runs its serving_default
signature on the images. usage: serve_each.py IMAGES_F32 HEIGHT WIDTH CHANNELS DIR...
Prints one JSON line: {dir: probabilities (flat)}."""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import tensorflow as tf

raw, h, w, c, *dirs = sys.argv[1:]
x = tf.constant(np.fromfile(raw, dtype="<f4").reshape(-1, int(h), int(w), int(c)))
print(json.dumps({d: tf.saved_model.load(d).signatures["serving_default"](images=x)["probabilities"].numpy().reshape(-1).tolist()
                  for d in dirs}))
