#!/usr/bin/env python3
"""The Python peer of bench-preprocess: how a Python user would find faces, OpenCV's Haar
cascade (haarcascade_frontalface_default.xml, scaleFactor 1.1, minNeighbors 5, as the predict
peer and most tutorials), over the same files, on all cores (a process per core).

Prints one JSON object: images, found_rate (a face detected), img_per_s (decode + gray +
detect + crop + resize to --size, wall clock), cpu_ms_per_img, opencv version.
"""
import argparse
import glob
import json
import multiprocessing
import os
import time


def work(paths_size):
    import cv2
    cv2.setNumThreads(1)
    paths, size = paths_size
    c0 = time.process_time()
    cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml"))
    found = 0
    for path in paths:
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            continue
        faces = cascade.detectMultiScale(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), scaleFactor=1.1, minNeighbors=5)
        if len(faces):
            found += 1
            x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
        else:
            s = min(img.shape[:2])
            x, y, w, h = (img.shape[1] - s) // 2, (img.shape[0] - s) // 2, s, s
        cv2.resize(img[y:y + h, x:x + w], (size, size), interpolation=cv2.INTER_AREA)
    return found, time.process_time() - c0


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", default="data/faces4")
    p.add_argument("--size", type=int, default=80)
    p.add_argument("--workers", type=int, default=os.cpu_count())
    a = p.parse_args()
    import cv2
    files = sorted(glob.glob(os.path.join(a.data, "*", "*", "*.*"))) or sorted(glob.glob(os.path.join(a.data, "*", "*.*")))
    if not files:
        raise SystemExit("no images under %s" % a.data)
    chunks = [(files[i::a.workers], a.size) for i in range(a.workers)]
    with multiprocessing.Pool(a.workers) as pool:
        pool.map(work, [([], a.size)] * a.workers)  # start-up and imports outside the timing
        t0 = time.perf_counter()
        done = pool.map(work, chunks)
        wall = time.perf_counter() - t0
    found, cpu = sum(d[0] for d in done), sum(d[1] for d in done)
    print(json.dumps({"images": len(files), "found_rate": round(found / len(files), 3),
                      "img_per_s": round(len(files) / wall, 1), "workers": a.workers,
                      "cpu_ms_per_img": round(cpu * 1000 / len(files), 2),
                      "opencv": cv2.__version__}))


if __name__ == "__main__":
    main()
