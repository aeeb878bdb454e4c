#!/usr/bin/env python3
"""Python peer of experiments/benchpredict for bench_predict.sh: what a Python user writes to
go from a photo file to a label with the same model: OpenCV decode, Haar-cascade face crop
(largest face, else a centre square), resize to the model's input, the model's normalisation
from emotions.json, then the model's serve signature via tf.saved_model.load(MODEL).
Batch 1: median per-file latency. Batch N: the N files preprocessed in a loop, then one call.
Prints one JSON object.
"""
import argparse
import json
import os
import statistics
import time


def photos(root, n):
    files = []
    for d, _, names in os.walk(root):
        files += [os.path.join(d, f) for f in names if f.lower().endswith((".jpg", ".jpeg", ".png"))]
    files.sort()
    if len(files) < n:
        raise SystemExit(f"{root} holds {len(files)} photos, want {n}")
    return files[:n]


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", required=True)
    p.add_argument("--images", default="data/faces4/test")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()

    import cv2
    import numpy as np
    import tensorflow as tf

    meta = json.load(open(os.path.join(a.model, "emotions.json")))
    size, norm = meta["input_height"], meta["normalization"]  # the benchmark's models are square RGB
    scale, offset = np.float32(norm["scale"]), np.float32(norm["offset"])
    cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml"))
    serve = tf.saved_model.load(a.model).signatures["serve"]

    detect_ms, found = [], []

    def prep(path):
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise SystemExit(f"cannot decode {path}")
        t0 = time.perf_counter()
        faces = cascade.detectMultiScale(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), scaleFactor=1.1, minNeighbors=5)
        detect_ms.append((time.perf_counter() - t0) * 1000)
        found.append(len(faces) > 0)
        if len(faces):
            x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
        else:
            s = min(img.shape[:2])
            x, y, w, h = (img.shape[1] - s) // 2, (img.shape[0] - s) // 2, s, s
        crop = cv2.resize(img[y:y + h, x:x + w], (size, size), interpolation=cv2.INTER_AREA)
        if not norm.get("bgr"):
            crop = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
        return crop.astype(np.float32) * scale + offset

    files = photos(a.images, a.n)
    for f in files[:3]:  # warm-up, as the Go side
        serve(images=tf.constant(prep(f)[None]))
    lat = []
    for f in files:
        t0 = time.perf_counter()
        probs = serve(images=tf.constant(prep(f)[None]))["probabilities"].numpy()
        int(probs.argmax())
        lat.append((time.perf_counter() - t0) * 1000)
    rates = []
    for r in range(a.rounds + 1):  # round 0 warms the batch-size graph
        t0 = time.perf_counter()
        x = np.stack([prep(f) for f in files])
        serve(images=tf.constant(x))["probabilities"].numpy().argmax(axis=1)
        if r:
            rates.append(len(files) / (time.perf_counter() - t0))
    print(json.dumps({"batch1_latency_ms": statistics.median(lat), "batch_images_per_second": statistics.median(rates),
                      "batch_size": len(files), "detect_ms_median": statistics.median(detect_ms),
                      "faces_found_share": sum(found) / len(found), "opencv": cv2.__version__, "tensorflow": tf.__version__}))


if __name__ == "__main__":
    main()
