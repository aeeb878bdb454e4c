"""Golden values for tfgraph's parity tests, computed by TensorFlow's own Python API on the same
SavedModel: serve outputs and consecutive train_step losses for a fixed seeded batch.

usage: golden.py MODEL_DIR OUT_DIR [--steps N] [--batch N] [--predict-only]
Writes OUT_DIR/x.bin, OUT_DIR/labels.bin (float32, row-major) and prints JSON."""
import argparse, json, os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import tensorflow as tf

p = argparse.ArgumentParser()
p.add_argument("model"); p.add_argument("out")
p.add_argument("--steps", type=int, default=3); p.add_argument("--batch", type=int, default=8)
p.add_argument("--seed", type=int, default=42)
p.add_argument("--predict-only", action="store_true")
a = p.parse_args()

meta = json.load(open(os.path.join(a.model, "emotions.json")))
# Format 2 names the input's height, width and channels; format 1 only a square RGB side.
h, w = meta.get("input_height", meta.get("input_size")), meta.get("input_width", meta.get("input_size"))
ch, c = meta.get("channels", 3), len(meta["classes"])
rng = np.random.default_rng(a.seed)
x = rng.random((a.batch, h, w, ch), dtype=np.float32)
labels = np.eye(c, dtype=np.float32)[rng.integers(0, c, a.batch)]
if not a.predict_only:
    x.tofile(os.path.join(a.out, "x.bin")); labels.tofile(os.path.join(a.out, "labels.bin"))
else:
    x = np.fromfile(os.path.join(a.out, "x.bin"), dtype=np.float32).reshape(a.batch, h, w, ch)

m = tf.saved_model.load(a.model)
probs = m.signatures["serve"](images=tf.constant(x))["probabilities"].numpy()
res = {"probabilities": probs.reshape(-1).tolist(), "losses": [], "accuracies": []}
if not a.predict_only:
    w = tf.ones([a.batch], tf.float32)
    for _ in range(a.steps):
        o = m.signatures["train_step"](images=tf.constant(x), labels=tf.constant(labels), sample_weights=w)
        res["losses"].append(float(o["loss"].numpy())); res["accuracies"].append(float(o["accuracy"].numpy()))
    res["probabilities_after"] = m.signatures["serve"](images=tf.constant(x))["probabilities"].numpy().reshape(-1).tolist()
json.dump(res, sys.stdout)
