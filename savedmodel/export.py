#!/usr/bin/env python3
"""The project's only Python: build (or wrap) a Keras image classifier, or wrap any compiled
Keras model (--generic), and export it as a SavedModel whose signatures let Go predict, train
one step, evaluate and set the learning rate.

Layout written to --out (atomically: a temp dir renamed into place):

    OUT/saved_model.pb, OUT/variables/     the training model (weights + optimizer state)
    OUT/emotions.json                       metadata Go reads (input shape, output kind, classes,
                                            normalisation; format 2)
    OUT/variables.json                      checkpoint key -> Keras variable path, shape, role
    OUT/serving-graph/graph.pb              the serving-only SavedModel proto (serve endpoint)
    OUT/serving-graph/object_graph.pb       its checkpoint's object graph
    OUT/serving-graph/key_map.json          serving checkpoint key -> training checkpoint key

serving-graph/ holds no weights and no file named saved_model.pb: nothing can load it as a
model, so a copy of it beside trained weights (tfgraph's Save links it into every run directory)
never serves the weights the model was created with. `emotions export` writes graph.pb as
saved_model.pb beside a checkpoint of the trained weights saved under the serving keys with
object_graph.pb.

Why no ExportArchive.track(model): track() makes a second tf.Variable for every Keras variable
(Keras' _export_to_saved_model_graph); the endpoints then train one copy while a reload restores
the other, stale one. Endpoints alone capture exactly the variables they use.

--from model.keras --generic [--custom-module NAME]: any compiled Keras 3 model (functional,
Sequential, or subclassed once built), exported with its own inputs, outputs, losses and metrics
(format 3). NAME is imported first (from the current directory or PYTHONPATH): the module where
the team registers its losses, metrics and layers with keras.saving.register_keras_serializable.
Same layout as above (variables.json gives metric state the role "metric"); the signatures:

    serve / serving_default   the model's inputs by name -> its outputs by name
    train_step                inputs..., targets..., sample_weights -> the logs of Keras' train_step
    evaluate                  inputs..., targets..., sample_weights -> the logs of Keras' test_step
    reset_metrics             () -> {metrics: int64, how many metric objects were reset}
    set_learning_rate         learning_rate (float32 scalar) -> {learning_rate, iterations}
    get_state                 () -> {learning_rate, iterations}

- Inputs are named as the model names them (the Input layers; "inputs" for a subclassed model,
  as model.export() names it), of any rank, dtype float16/32/64, int32/64, bool or string, the
  first dimension the batch. Outputs are named by their dict key, else by the layer producing
  them (output_0, output_1, ... for a subclassed model). serve differs from model.export() only
  there: model.export() names a list's outputs output_0, output_1, ...
- Targets are named as their outputs (the keys of Keras' y dict): float32 of the output's shape;
  for a sparse loss (sparse_categorical_crossentropy) int32 of the output's shape without its
  last dimension (class indices). sample_weights is float32 [batch], one weight per row for
  every output; feed ones for an unweighted batch (Keras gives the same numbers as with no
  sample_weight: the weighted sums are then the plain ones and the denominators do not change).
- train_step and evaluate run Keras' own train_step and test_step (model.train_step(data) traced
  in the signature), so their numbers are Keras' by construction: the loss (the loss_weights sum
  of the compiled losses plus the regularisation losses; Keras' loss tracker weighted by batch
  size), each output's loss when there are several (<output>_loss), and every compiled metric
  under Keras' log name (accuracy, auc, label_accuracy, score_mae, ...). Their values are the
  metrics' running results: metric state (Keras metric variables, in the checkpoint) accumulates
  over calls until reset_metrics. So an epoch as fit runs it is: reset_metrics, train_step per
  batch (the last batch's logs are the epoch's logs); then reset_metrics, evaluate per validation
  batch (the last batch's logs, prefixed val_, are the val logs). evaluate does not train.
- emotions.json (format 3, kind "generic") holds the contract Go reads: inputs, outputs and
  targets (each {name, dtype, shape}, -1 where dynamic), sample_weights, losses (per output:
  loss, from_logits, weight), logs (name and shape of each train_step/evaluate output, in the
  order Keras logs them), monitor (per log name, the direction Keras 3.15's `auto` mode picks for
  it and its val_ twin: "min" for loss and for a metric whose _direction is not "up", "max" for
  one whose is, "" where Keras cannot tell and refuses auto mode, as for per-output losses and
  a multi-output model's prefixed metric names), signatures, serving, optimizer, learning_rate.
- Refused, every problem listed in one run (exit status 1): a model not compiled (with the
  warning Keras gave when its compile config could not be restored), one overriding train_step
  or test_step, an output without a compiled loss, a learning-rate schedule, an input dtype not
  listed above or a fixed batch dimension, a name shared by two tensors or taken by
  sample_weights/learning_rate, a cross-entropy on a 1-unit output or on probabilities from a
  linear layer, and any compiled loss or metric that cannot be traced on its output and target
  (each named with its output and the error), e.g. NumPy inside a custom loss, AUC on sparse labels.
- Not (yet) for --generic: XLA and replica variants, mixed-precision options, --weights; a
  subclassed model with several inputs; an output with no loss.

--cache DIR keeps a copy of each export keyed by everything that determines it (this script,
every argument, the content of --from/--weights files, the TensorFlow/Keras/NumPy/Python
versions): an identical export is then a hard-linked copy of the cached one.
"""
import argparse
import contextlib
import gc
import hashlib
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

FORMAT = 2
# The classifier's last layer: its variables (probabilities/kernel, /bias) have one column per
# class, so copying them between models goes by class name (copy_from_emotions_model).
OUTPUT_LAYER = "probabilities"
BACKBONES = ("inception_resnet_v2", "vgg16", "resnet50", "resnet101", "tiny")
MIXED_POLICIES = ("none", "mixed_float16", "mixed_bfloat16")
SERVING_DIR = "serving-graph"
# Go (savedmodel.Validate) accepts this range of input heights and widths.
MIN_SIDE, MAX_SIDE = 8, 4096

# Pixel normalisations, as x = p*scale + offset per channel (p in 0..255), matching
# keras.applications' preprocess_input modes; "rescale" is the seed's ImageDataGenerator(1/255).
# mean_std is built from --mean/--std (normalization()).
NORMALIZATIONS = {
    "rescale": dict(bgr=False, scale=[1 / 255.0] * 3, offset=[0.0] * 3),
    "tf": dict(bgr=False, scale=[2 / 255.0] * 3, offset=[-1.0] * 3),
    "caffe": dict(bgr=True, scale=[1.0] * 3, offset=[-103.939, -116.779, -123.68]),
    "torch": dict(
        bgr=False,
        scale=[1 / (255.0 * s) for s in (0.229, 0.224, 0.225)],
        offset=[-m / s for m, s in zip((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))],
    ),
}
# Modes whose three channels differ: meaningless for a one-channel (grayscale) model.
PER_CHANNEL_MODES = ("caffe", "torch")
BACKBONE_NORMALIZATION = {
    "inception_resnet_v2": "tf",
    "vgg16": "caffe",
    "resnet50": "caffe",
    "resnet101": "caffe",
    "tiny": "rescale",
}

def progress(msg):
    print(f"[export] {msg}", file=sys.stderr, flush=True)


class Phase:
    """Reports how long a step took (the breakdown `new-model` prints)."""

    def __init__(self, what):
        self.what = what

    def __enter__(self):
        self.t = time.perf_counter()
        return self

    def __exit__(self, kind, *_):
        if kind is None:
            progress(f"{self.what}: {time.perf_counter() - self.t:.1f} s")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="model directory to create (must not exist)")
    p.add_argument("--backbone", default="inception_resnet_v2", choices=BACKBONES)
    p.add_argument("--weights", default="none",
                   help="none | imagenet (Keras download, needs network) | path to .h5/.keras "
                        "backbone weights | an emotions model directory (matching variables are copied)")
    p.add_argument("--from", dest="from_model", default=None,
                   help="wrap an existing Keras 3 classifier (.keras) instead of building one: one "
                        "(H, W, 1|3) image input, a (C) softmax or logits output")
    p.add_argument("--output", default="auto", choices=["auto", "probabilities", "logits"],
                   help="what a --from model's output is: auto = from its last layer's activation "
                        "(softmax: probabilities, linear: logits) and its compiled loss's from_logits")
    p.add_argument("--input-size", type=int, default=80, help="square input size of a built model")
    p.add_argument("--classes", default="angry,happy,normal,sad")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--dense", type=int, default=64, help="units of the Dense(relu) head layer")
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--crop", default="face", choices=["face", "center", "none"],
                   help="how photos become inputs: face (a crop around the detected face), center (the "
                        "largest centred crop of the input's aspect ratio), none (the whole photo resized)")
    p.add_argument("--normalization", default="rescale", choices=sorted(NORMALIZATIONS) + ["mean_std", "backbone"],
                   help="pixel normalisation; rescale ([0,1]) is the seed's; tf [-1,1]; caffe, torch as "
                        "keras.applications; mean_std: (p/255 - mean)/std with --mean/--std; backbone = "
                        "the backbone's own keras.applications preprocess_input")
    p.add_argument("--mean", default=None, help="mean_std: 1 or 3 comma-separated means in [0,1] pixel units")
    p.add_argument("--std", default=None, help="mean_std: 1 or 3 comma-separated standard deviations in [0,1] pixel units")
    p.add_argument("--xla", default="auto", choices=["auto", "on", "off"],
                   help="export the XLA-compiled train_step_xla too: auto = when this machine has a GPU "
                        "(Keras' jit_compile='auto' decides the same way, at compile time), on, off")
    p.add_argument("--no-xla", action="store_true", help="same as --xla off")
    p.add_argument("--mixed-precision", default="none", choices=MIXED_POLICIES,
                   help="Keras dtype policy of a built model: mixed_float16 (float16 compute, loss "
                        "scaling by Keras' LossScaleOptimizer) or mixed_bfloat16; variables and the "
                        "output stay float32. A --from model keeps the policy it was saved with")
    p.add_argument("--loss-scale-growth-steps", type=int, default=2000,
                   help="mixed_float16: steps with finite gradients after which the loss scale doubles "
                        "(Keras' LossScaleOptimizer dynamic_growth_steps)")
    p.add_argument("--replicas", default="auto",
                   help="also export train_step_replicas_N, evaluate_replicas_N and sync_replicas_N: "
                        "the step as N towers (one per device, each on 1/N of the batch, gradients "
                        "summed and applied once), as Keras fit under MirroredStrategy; auto = the "
                        "GPUs this machine has when more than one; 1: none")
    p.add_argument("--generic", action="store_true",
                   help="with --from: export any compiled Keras model with its own inputs, outputs, losses "
                        "and metrics (format 3, see the top of this file) instead of an image classifier")
    p.add_argument("--custom-module", default="",
                   help="--generic: a Python module to import first (from the current directory or "
                        "PYTHONPATH) that registers the model's custom objects with "
                        "keras.saving.register_keras_serializable")
    p.add_argument("--serving-writer", default="auto", choices=["auto", "fork", "inline"],
                   help="who writes serving-graph/: a forked copy of this process, beside the training "
                        "SavedModel (fork; auto: where 2 or more cores are ours and the model is a built "
                        "backbone other than tiny or a --from file of 16 MB or more), or this process "
                        "after it (inline). The files are equivalent either way")
    p.add_argument("--cache", default="", help="directory of cached exports (empty: no cache)")
    p.add_argument("--no-cache", action="store_true", help="neither use nor fill --cache")
    return p.parse_args(argv)


def parse_floats(flag, text):
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise SystemExit(f"export: {flag} {text!r}: need 1 or 3 comma-separated numbers")
    if len(values) not in (1, 3) or not all(math.isfinite(v) for v in values):
        raise SystemExit(f"export: {flag} {text!r}: need 1 or 3 comma-separated finite numbers")
    return values


def normalization(args, backbone, channels):
    """emotions.json's normalization: x = p*scale[c] + offset[c] for an 8-bit pixel p; a
    one-channel model's pixel is the BT.601 luma of the RGB pixel and uses scale[0]/offset[0]
    (all three are written equal)."""
    name = args.normalization
    if name == "backbone":
        name = BACKBONE_NORMALIZATION.get(backbone, "rescale")
    if name != "mean_std":
        if args.mean is not None or args.std is not None:
            raise SystemExit(f"export: --mean/--std go with --normalization mean_std, not {name}")
        if channels == 1 and name in PER_CHANNEL_MODES:
            raise SystemExit(f"export: --normalization {name} has a value per colour channel; this model takes "
                             "one (grayscale) channel: use rescale, tf, or mean_std with one --mean and --std")
        return dict(mode=name, **NORMALIZATIONS[name])
    if args.mean is None or args.std is None:
        raise SystemExit("export: --normalization mean_std needs --mean and --std (e.g. --mean 0.5 --std 0.5)")
    mean, std = parse_floats("--mean", args.mean), parse_floats("--std", args.std)
    if channels == 1 and (len(mean) != 1 or len(std) != 1):
        raise SystemExit("export: a one-channel (grayscale) model takes one --mean and one --std value")
    if any(s <= 0 for s in std):
        raise SystemExit(f"export: --std {args.std}: standard deviations must be positive")
    mean, std = (mean * 3 if len(mean) == 1 else mean), (std * 3 if len(std) == 1 else std)
    return dict(mode="mean_std", bgr=False, scale=[1 / (255.0 * s) for s in std],
                offset=[-m / s for m, s in zip(mean, std)])


def build_tiny(inputs, seed):
    """A small CNN with the same kinds of layers as the real backbones (conv, BatchNorm,
    residual add), so tests exercise BatchNorm statistics and Dropout state in seconds."""
    import keras
    from keras import layers

    init = keras.initializers.HeNormal(seed=seed)
    x = layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False, kernel_initializer=init)(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    y = layers.Conv2D(16, 3, padding="same", use_bias=False, kernel_initializer=init)(x)
    y = layers.BatchNormalization()(y)
    x = layers.Activation("relu")(layers.Add()([x, y]))
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, kernel_initializer=init)(x)
    x = layers.BatchNormalization()(x)
    return layers.Activation("relu", name="tiny_out")(x)


def build_backbone(name, size, weights):
    import keras

    kw = dict(include_top=False, input_shape=(size, size, 3), weights=weights)
    if name == "inception_resnet_v2":
        return keras.applications.InceptionResNetV2(**kw)
    if name == "vgg16":
        return keras.applications.VGG16(**kw)
    if name == "resnet50":
        return keras.applications.ResNet50(**kw)
    if name == "resnet101":
        return keras.applications.ResNet101(**kw)
    raise ValueError(f"unknown backbone {name}")


def build_model(args, classes):
    """The seed's model: backbone (no top) + GAP + Dense(64, relu) + Dropout(0.5) + Dense(C)."""
    import keras
    from keras import layers

    size = args.input_size
    inputs = keras.Input((size, size, 3), name="images")
    weights = args.weights
    file_weights = None
    if weights not in ("none", "imagenet"):
        file_weights, weights = weights, None
    elif weights == "none":
        weights = None
    if args.backbone == "tiny":
        if weights == "imagenet":
            raise SystemExit("export: the tiny backbone has no ImageNet weights")
        features = build_tiny(inputs, args.seed)
        backbone = None
    else:
        backbone = build_backbone(args.backbone, size, weights)
        features = backbone(inputs)
    x = layers.GlobalAveragePooling2D()(features)
    x = layers.Dense(args.dense, activation="relu", kernel_initializer=keras.initializers.GlorotUniform(args.seed))(x)
    x = layers.Dropout(args.dropout, seed=args.seed)(x)
    # Under a mixed policy the softmax runs in float32, as Keras' mixed-precision guide asks
    # (float16 softmax and cross-entropy lose the small probabilities); its variables are
    # float32 under every policy, so the checkpoint layout does not change.
    outputs = layers.Dense(len(classes), activation="softmax", name=OUTPUT_LAYER,
                           dtype="float32" if args.mixed_precision != "none" else None,
                           kernel_initializer=keras.initializers.GlorotUniform(args.seed + 1))(x)
    model = keras.Model(inputs, outputs, name=f"emotions_{args.backbone}")
    if file_weights and not os.path.isdir(file_weights):
        # A Keras weights file of the backbone alone (.h5 / .weights.h5 / .keras).
        target = backbone if backbone is not None else model
        progress(f"loading backbone weights from {file_weights}")
        target.load_weights(file_weights)
    return model, file_weights if file_weights and os.path.isdir(file_weights) else None


def build_compiled(args, classes):
    """build_model compiled as the seed's recipe compiles it, under --mixed-precision's policy:
    what the export traces, and what a test fits with Keras to compare Go's training with."""
    import keras

    if args.mixed_precision != "none":
        keras.mixed_precision.set_global_policy(args.mixed_precision)
    model, copy_src = build_model(args, classes)
    optimizer = keras.optimizers.Adam(learning_rate=args.learning_rate)
    if args.mixed_precision == "mixed_float16":
        # What compile wraps it in under mixed_float16 (same name, so the same variable
        # paths), with the growth interval the command line asked for.
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer, dynamic_growth_steps=args.loss_scale_growth_steps,
                                                        name="loss_scale_optimizer")
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"], jit_compile=False)
    return model, copy_src


def copy_from_emotions_model(model, src_dir, classes):
    """Initialise from another emotions model (e.g. pre-trained on other classes): every variable
    whose Keras path and shape match is copied. The output layer is matched by class name, not
    position: a class the source model has keeps its learnt output unit (wherever it sits in the
    new order), a new class starts fresh. So a model pre-trained on a teacher's six classes and
    narrowed to four starts out predicting those four as it did, instead of from a random layer."""
    import numpy as np
    import tensorflow as tf

    listing = json.load(open(os.path.join(src_dir, "variables.json")))
    src_classes = json.load(open(os.path.join(src_dir, "emotions.json"))).get("classes") or []
    reader = tf.train.load_checkpoint(os.path.join(src_dir, "variables", "variables"))
    by_path = {v["path"]: v for v in listing["variables"] if v["role"] == "model"}
    copied = skipped = 0
    kept = [c for c in classes if c in src_classes]
    for var in model.variables:
        src = by_path.get(var.path)
        if src is None:
            skipped += 1
            continue
        shape = list(src["shape"])
        if var.path.startswith(OUTPUT_LAYER + "/") and src_classes and shape[-1] == len(src_classes) \
                and shape[:-1] == list(var.shape[:-1]):
            if not kept:
                skipped += 1
                continue
            value = np.asarray(reader.get_tensor(src["key"]))
            fresh = np.array(var.numpy())
            for j, c in enumerate(classes):
                if c in src_classes:
                    fresh[..., j] = value[..., src_classes.index(c)]
            var.assign(fresh)
            copied += 1
            continue
        if shape != list(var.shape):  # read only what is copied: a mismatched backbone costs nothing
            skipped += 1
            continue
        var.assign(np.asarray(reader.get_tensor(src["key"])))
        copied += 1
    if copied == 0:
        raise SystemExit(f"export: no variable of {src_dir} matches this model (different backbone?)")
    progress(f"copied {copied} variables from {src_dir}; {skipped} left as initialised; "
             f"output units kept for {','.join(kept) or 'no class'} of {','.join(src_classes)}")


def parse_classes(text):
    classes = [c for c in text.split(",") if c]
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise SystemExit(f"export: --classes needs at least two distinct names, got {text!r}")
    return classes


def last_activation(model):
    """The activation of the layer that produces the output: softmax, linear, another name, or
    None when that layer has no activation of its own (e.g. a custom layer)."""
    import keras

    layer = model.outputs[0]._keras_history[0]
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    fn = getattr(layer, "activation", None)
    if fn is None:
        return None
    return getattr(fn, "__name__", type(fn).__name__)


def loss_from_logits(loss):
    """What a compiled loss says of the output: True (from_logits=True), False (a cross-entropy
    on probabilities), None (no loss, or one that does not say)."""
    import keras

    if loss is None:
        return None
    if isinstance(loss, str):
        return False if loss in ("categorical_crossentropy", "CategoricalCrossentropy") else None
    if isinstance(loss, keras.losses.Loss):
        from_logits = loss.get_config().get("from_logits")
        return None if from_logits is None else bool(from_logits)
    return False if loss is keras.losses.categorical_crossentropy else None


def output_kind(path, model, wanted):
    """probabilities or logits, from the last activation, the compiled loss and --output; any
    contradiction between them is refused rather than guessed (the loss would be wrong)."""
    activation = last_activation(model)
    if activation not in (None, "softmax", "linear"):
        raise SystemExit(f"export: {path}: the output layer's activation is {activation}: need softmax "
                         "(probabilities) or none/linear (logits) over one-hot classes")
    evidence = {}
    if activation is not None:
        evidence["its last layer's activation"] = "probabilities" if activation == "softmax" else "logits"
    from_logits = loss_from_logits(getattr(model, "loss", None))
    if from_logits is not None:
        evidence[f"its compiled loss (from_logits={from_logits})"] = "logits" if from_logits else "probabilities"
    if wanted != "auto":
        evidence["--output"] = wanted
    kinds = set(evidence.values())
    if len(kinds) > 1:
        said = "; ".join(f"{k} says {v}" for k, v in evidence.items())
        raise SystemExit(f"export: {path}: contradictory output kind ({said}): make the model's last "
                         "activation and its loss agree (softmax with from_logits=False, or a linear "
                         "output with from_logits=True), or save it uncompiled")
    if not kinds:
        raise SystemExit(f"export: {path}: cannot tell whether the output is probabilities or logits "
                         "(its last layer has no activation and it is not compiled with a "
                         "cross-entropy): pass --output probabilities or --output logits")
    return kinds.pop()


def load_wrapped(path, classes_arg, wanted_output):
    """Wrap a team's own Keras 3 classifier: one image input (N,H,W,1|3), one (N,C) output of
    probabilities (softmax) or logits. Returns the model, (H, W, C), the classes and the output kind."""
    import keras

    model = keras.saving.load_model(path, compile=True)
    if len(model.inputs) != 1:
        raise SystemExit(f"export: {path}: need one image input, the model has {len(model.inputs)}")
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or any(d is None for d in shape[1:]) or shape[3] not in (1, 3):
        raise SystemExit(f"export: {path}: input shape {shape}: need (None, H, W, 1) or (None, H, W, 3), "
                         "a fixed-size grayscale or RGB image")
    height, width, channels = shape[1:]
    if not (MIN_SIDE <= height <= MAX_SIDE and MIN_SIDE <= width <= MAX_SIDE):
        raise SystemExit(f"export: {path}: input shape {shape}: height and width must be {MIN_SIDE}..{MAX_SIDE}")
    out = tuple(model.outputs[0].shape)
    if len(model.outputs) != 1 or len(out) != 2 or out[1] is None:
        raise SystemExit(f"export: {path}: need one (None, C) output, got {[tuple(o.shape) for o in model.outputs]}")
    if out[1] < 2:
        raise SystemExit(f"export: {path}: the output has {out[1]} unit(s): need one per class, at least 2")
    classes = parse_classes(classes_arg)
    if len(classes) != out[1]:
        raise SystemExit(f"export: {path}: the model has {out[1]} outputs but --classes names {len(classes)}: "
                         "name every class, in output order")
    return model, (height, width, channels), classes, output_kind(path, model, wanted_output)


def compiled_parts(model, lr, from_logits):
    """The model's own optimizer and loss if it was compiled, else the seed's Adam and a
    categorical cross-entropy on what the model outputs."""
    import keras

    optimizer = getattr(model, "optimizer", None)
    loss = getattr(model, "loss", None)
    if optimizer is None:
        optimizer = keras.optimizers.Adam(learning_rate=lr)
    if loss is None:
        loss = keras.losses.CategoricalCrossentropy(from_logits=from_logits)
    if isinstance(loss, (list, dict)):
        raise SystemExit("export: models with several losses are not supported")
    loss_fn = keras.losses.get(loss)
    if "sparse" in getattr(loss_fn, "name", getattr(loss_fn, "__name__", "")):
        raise SystemExit("export: the model is compiled with a sparse loss; emotions trains on one-hot "
                         "(or soft) targets: recompile with categorical_crossentropy")
    if not isinstance(loss_fn, keras.losses.Loss):
        from keras.src.losses.losses import LossFunctionWrapper  # not re-exported in keras.losses

        loss_fn = LossFunctionWrapper(loss_fn, reduction="sum_over_batch_size")
    # A LossScaleOptimizer (Keras wraps the optimizer in one when compiling under
    # mixed_float16) delegates the learning rate to the optimizer it wraps.
    if not isinstance(getattr(optimizer, "inner_optimizer", optimizer)._learning_rate, keras.Variable):
        raise SystemExit("export: the model's optimizer uses a learning-rate schedule; Go sets the "
                         "learning rate itself (ReduceLROnPlateau): recompile with a float learning rate")
    return optimizer, loss_fn


def tensorflow_has_no_gpu_build():
    """True when only tensorflow-cpu is installed: then no GPU can be seen, known without
    importing TensorFlow (which the cache lookup avoids)."""
    from importlib import metadata

    def installed(dist):
        try:
            metadata.version(dist)
            return True
        except metadata.PackageNotFoundError:
            return False

    return installed("tensorflow-cpu") and not installed("tensorflow")


def want_xla(args):
    """The XLA variant is only worth its cost where it is used: on CPU, XLA measured 2x slower
    here and the extra function in the graph raised a training session's peak memory by ~1 GB
    (InceptionResNetV2: 4.5 -> 3.4 GB without it), so by default it is exported only on a
    machine that has a GPU, as Keras resolves jit_compile="auto" on the compiling machine."""
    if args.no_xla or args.xla == "off":
        return False
    if args.xla == "on":
        return True
    if tensorflow_has_no_gpu_build():
        return False
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def replica_signatures(replicas):
    """The signature names of the N-tower step (none for one replica)."""
    if replicas < 2:
        return []
    return [f"{n}_replicas_{replicas}" for n in ("train_step", "evaluate", "sync")]


def replica_locals(model, replicas):
    """What MirroredStrategy keeps one copy of per replica and updates locally: Keras creates
    BatchNormalization's moving_mean/moving_variance and the Dropout seed state with
    aggregation "none", and an assign in replica context then updates only that replica's
    copy (measured with Keras 3.15.1 / TF 2.18: after one step on 2 devices the two copies of
    a moving_mean differ; the weights do not). Reads (evaluate) use the replica's own copy;
    saving and get_weights use replica 0's; a restore sets every copy to the saved value.

    So replica 0 is the model's own variable and replicas 1..N-1 get a shadow tf.Variable each
    (named replica_R/PATH): a tower traces with its shadows swapped in (on_replica).
    Returns (the model's per-replica variables, [shadow map per replica 1..N-1])."""
    import tensorflow as tf

    local = [v for v in model.variables if not v.trainable and v.aggregation == "none"]
    shadows = []
    with tf.init_scope():
        for r in range(1, replicas):
            shadows.append({id(v): tf.Variable(v._value.numpy(), trainable=False, name=f"replica_{r}/{v.path}")
                            for v in local})
    return local, shadows


@contextlib.contextmanager
def on_replica(local, shadow):
    """Traces the model with the shadow copies of local (None: the model's own) in place of
    its variables, so the ops traced read and update that replica's copy."""
    saved = [v._value for v in local]
    try:
        if shadow is not None:
            for v in local:
                v._value = shadow[id(v)]
        yield
    finally:
        for v, value in zip(local, saved):
            v._value = value


def want_replicas(args):
    """--replicas as a number: auto is the GPU count of this machine (1 without GPUs), as
    MirroredStrategy() takes every GPU it sees."""
    if args.replicas != "auto":
        try:
            n = int(args.replicas)
        except ValueError:
            raise SystemExit(f"export: --replicas {args.replicas!r}: want auto or a number")
        if n < 1:
            raise SystemExit(f"export: --replicas {n}: want 1 or more")
        return n
    if tensorflow_has_no_gpu_build():
        return 1
    import tensorflow as tf

    return max(1, len(tf.config.list_physical_devices("GPU")))


def make_endpoints(model, optimizer, loss_fn, shape, n_classes, logits, local=(), shadows=()):
    """The signatures' functions; with shadows (replica_locals) the N-tower ones too."""
    import keras
    import tensorflow as tf

    images = tf.TensorSpec([None, *shape], tf.float32, name="images")
    labels = tf.TensorSpec([None, n_classes], tf.float32, name="labels")
    weights = tf.TensorSpec([None], tf.float32, name="sample_weights")
    lr_spec = tf.TensorSpec([], tf.float32, name="learning_rate")

    # serve and evaluate share one inference pass, traced once (IRv2: ~1.5 s) and stored once.
    @tf.function(input_signature=[images], autograph=False)
    def infer(images):
        return model(images, training=False)

    def serve(images):
        out = infer(images)
        return {"probabilities": tf.nn.softmax(out, axis=-1) if logits else out}

    def train_step(images, labels, sample_weights):
        # As Keras 3 fit's train_step: loss = compiled loss (sum_over_batch_size of the
        # weighted per-sample losses) + the model's regularisation losses; the accuracy metric
        # is weighted by the same sample weights. argmax is the same on logits and probabilities.
        with tf.GradientTape() as tape:
            out = model(images, training=True)
            loss = loss_fn(labels, out, sample_weight=sample_weights)
            if model.losses:
                loss = loss + tf.add_n(model.losses)
            # The loss scale of a LossScaleOptimizer (mixed_float16), the identity otherwise;
            # its apply_gradients unscales, skips a step whose gradients are not finite and
            # adapts the scale, as in Keras' own train_step.
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        hit = tf.cast(tf.equal(tf.argmax(out, 1), tf.argmax(labels, 1)), tf.float32)
        accuracy = tf.math.divide_no_nan(tf.reduce_sum(hit * sample_weights), tf.reduce_sum(sample_weights))
        return {"loss": loss, "accuracy": accuracy}

    def evaluate(images, labels):
        # Sums, so Go aggregates any number of batches exactly (Keras' evaluate averages
        # per-sample losses over all samples). Cross-entropy of the probabilities, computed from
        # the logits for a logits model.
        out = infer(images)
        per_sample = keras.losses.categorical_crossentropy(labels, out, from_logits=logits)
        hit = tf.cast(tf.equal(tf.argmax(out, 1), tf.argmax(labels, 1)), tf.float32)
        return {"loss_sum": tf.reduce_sum(per_sample), "correct": tf.reduce_sum(hit)}

    set_learning_rate, get_state = learning_rate_endpoints(optimizer)

    # The N-tower step. Towers are placed with "/device:*:R": no device type, so the placer
    # picks the R-th device of the best type the session has (GPU:R on a GPU machine, CPU:R
    # with --cpu-devices N), and a session with fewer devices still runs it (functions are
    # placed softly: measured, a 1-CPU session runs every tower on CPU:0). Nothing that is
    # restored or served names a device.
    replicas = len(shadows) + 1

    def towers(*tensors):
        """Splits the batch as tf.distribute does (replica R gets n//N, +1 while R < n%N) and
        yields (replica, its slices) with the replica's device and variable copies in scope."""
        n = tf.shape(tensors[0])[0]
        sizes = [n // replicas + tf.cast(r < n % replicas, tf.int32) for r in range(replicas)]
        parts = [tf.split(t, sizes) for t in tensors]
        for r in range(replicas):
            with tf.device(f"/device:*:{r}"), on_replica(local, shadows[r - 1] if r else None):
                yield r, [p[r] for p in parts]

    def train_step_replicas(images, labels, sample_weights):
        # As Keras 3 fit under MirroredStrategy: each replica's loss is divided by the number
        # of replicas (scale_loss_for_distribution; loss_fn cannot see a strategy here, so it
        # is done explicitly), the gradients summed over replicas and applied once. The logged
        # loss is the replicas' unscaled losses weighted by their batch sizes (Keras' loss
        # tracker), the accuracy over the whole batch.
        grads, losses, hits, sizes = None, [], [], []
        for _, (x, y, w) in towers(images, labels, sample_weights):
            with tf.GradientTape() as tape:
                out = model(x, training=True)
                loss = loss_fn(y, out, sample_weight=w)
                if model.losses:
                    loss = loss + tf.add_n(model.losses)
                scaled = optimizer.scale_loss(loss * (1.0 / replicas))
            g = tape.gradient(scaled, model.trainable_variables)
            grads = g if grads is None else [a + b for a, b in zip(grads, g)]
            size = tf.cast(tf.shape(x)[0], tf.float32)
            losses.append(loss * size)
            sizes.append(size)
            hits.append(tf.cast(tf.equal(tf.argmax(out, 1), tf.argmax(y, 1)), tf.float32) * w)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        accuracy = tf.math.divide_no_nan(tf.reduce_sum(tf.concat(hits, 0)), tf.reduce_sum(sample_weights))
        return {"loss": tf.add_n(losses) / tf.add_n(sizes), "accuracy": accuracy}

    def evaluate_replicas(images, labels):
        # Keras' evaluate under MirroredStrategy: each replica on its share of the batch, with
        # its own BatchNorm statistics.
        loss_sum, correct = [], []
        for _, (x, y) in towers(images, labels):
            out = model(x, training=False)
            loss_sum.append(tf.reduce_sum(keras.losses.categorical_crossentropy(y, out, from_logits=logits)))
            correct.append(tf.reduce_sum(tf.cast(tf.equal(tf.argmax(out, 1), tf.argmax(y, 1)), tf.float32)))
        return {"loss_sum": tf.add_n(loss_sum), "correct": tf.add_n(correct)}

    def sync_replicas():
        # What restoring a checkpoint does to a MirroredVariable: every replica's copy takes
        # the saved (replica 0's) value. Go runs it when a run starts or resumes.
        for shadow in shadows:
            for v in local:
                shadow[id(v)].assign(v._value)
        return {"replicas": tf.constant(replicas, tf.int64)}

    # autograph off: the bodies have no Python control flow on tensors, and converting Keras'
    # call chain costs tracing time for nothing.
    def function(fn, signature, **kw):
        return tf.function(fn, input_signature=signature, autograph=False, **kw)

    fns = {}
    if replicas > 1:
        names = replica_signatures(replicas)
        fns[names[0]] = function(train_step_replicas, [images, labels, weights])
        fns[names[1]] = function(evaluate_replicas, [images, labels])
        fns[names[2]] = function(sync_replicas, [])
    return fns | dict(
        get_state=function(get_state, []),
        serve=function(serve, [images]),
        train_step=function(train_step, [images, labels, weights]),
        train_step_xla=function(train_step, [images, labels, weights], jit_compile=True),
        evaluate=function(evaluate, [images, labels]),
        set_learning_rate=function(set_learning_rate, [lr_spec]),
    )


def save_options():
    import tensorflow as tf

    return tf.saved_model.SaveOptions()


def prepare_archive(fns, names, resources=()):
    """An ExportArchive of the endpoints names (the first becomes serving_default), each traced
    once, and its signatures. The traces are made inside a SavedModel save context: tf.function
    keys its trace cache on the save context's variable policy, so a trace made outside it (as
    ExportArchive.add_endpoint does) is traced again by tf.saved_model.save: twice the tracing
    (InceptionResNetV2's train_step alone takes ~8 s). resources: non-variable resources the
    endpoints capture (lookup tables), which the archive tracks only for a track()ed model."""
    import keras
    from tensorflow.python.saved_model import save_context

    archive = keras.export.ExportArchive()
    with save_context.save_context(save_options()):
        for name in names:
            archive.add_endpoint(name, fns[name])
        archive._filter_and_track_resources()  # sets _tf_trackable._all_variables: the checkpoint keys
        archive._tf_trackable._misc_assets.extend(resources)
        signatures = {name: archive._get_concrete_fn(name) for name in names}
    signatures.setdefault("serving_default", signatures[names[0]])
    return archive, signatures


def write_training_model(path, fns, names, resources=()):
    """The training SavedModel: every endpoint, the weights and the optimizer state."""
    import tensorflow as tf

    archive, signatures = prepare_archive(fns, names, resources)
    tf.saved_model.save(archive._tf_trackable, path, signatures=signatures, options=save_options())
    return archive


def write_serving_graph(path, fns, resources=()):
    """serving-graph/: the serve-only SavedModel proto (graph.pb) and the object graph its
    checkpoint needs (object_graph.pb), without a checkpoint: `emotions export` writes one of
    the trained weights. This is what tf.saved_model.save writes, minus the variables."""
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.framework import ops
    from tensorflow.python.saved_model import builder_impl, constants
    from tensorflow.python.saved_model import save as tf_save

    archive, signatures = prepare_archive(fns, ["serve"], resources)
    proto = saved_model_pb2.SavedModel(saved_model_schema_version=constants.SAVED_MODEL_SCHEMA_VERSION)
    _, exported_graph, saver, asset_info, _, _ = tf_save._build_meta_graph(
        archive._tf_trackable, signatures, save_options(), proto.meta_graphs.add())
    # What TrackableSaver.save would store under _CHECKPOINTABLE_OBJECT_GRAPH.
    object_graph = saver._gather_serialized_tensors(None)[3]
    os.makedirs(path)
    with open(os.path.join(path, "graph.pb"), "wb") as f:
        f.write(proto.SerializeToString(deterministic=True))
    with open(os.path.join(path, "object_graph.pb"), "wb") as f:
        f.write(object_graph.SerializeToString(deterministic=True))
    builder_impl.copy_assets_to_destination_dir(asset_info.asset_filename_map, path)
    ops.dismantle_graph(exported_graph)
    return archive


def variable_listing(archive, model, optimizer, shadows=(), metric_variables=()):
    """Checkpoint key of each variable the archive saved, with its Keras path and role
    (replica: a replica's copy of a model variable, see replica_locals; metric: the state of a
    compiled metric or loss tracker, --generic)."""
    roles = {}
    for v in metric_variables:
        roles[id(v.value)] = (v.path, "metric", False)
    for r, shadow in enumerate(shadows, start=1):
        for v in model.variables:
            if id(v) in shadow:
                roles[id(shadow[id(v)])] = (f"replica_{r}/{v.path}", "replica", False)
    for v in model.variables:
        roles[id(v.value)] = (v.path, "model", v.trainable)
    for v in optimizer.variables:
        roles.setdefault(id(v.value), (v.path, "optimizer", False))
    out = []
    for i, tv in enumerate(archive._tf_trackable._all_variables):
        path, role, trainable = roles.get(id(tv), (tv.name, "other", tv.trainable))
        out.append(dict(key=f"_all_variables/{i}/.ATTRIBUTES/VARIABLE_VALUE", path=path, role=role,
                        trainable=bool(trainable), shape=list(tv.shape), dtype=tv.dtype.name, id=id(tv)))
    return out


# ---- the generic export (--generic) -----------------------------------------------------------

GENERIC_FORMAT = 3
GENERIC_SIGNATURES = ("serve", "train_step", "evaluate", "reset_metrics", "set_learning_rate", "get_state")
INPUT_DTYPES = ("float16", "float32", "float64", "int32", "int64", "bool", "string")
# Signature arguments of our own: no model input or output may take these names.
RESERVED_NAMES = ("sample_weights", "learning_rate")
CROSS_ENTROPIES = ("categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy",
                   "categorical_focal_crossentropy", "binary_focal_crossentropy")


def snake(name):
    """A Keras loss's class or function name as its snake_case function name."""
    import re

    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower() if name[:1].isupper() else name


def loss_identity(loss):
    """(snake_case name, from_logits or None) of a compiled loss as given to compile (a string,
    a Loss or a function)."""
    if isinstance(loss, str):
        return snake(loss), (False if snake(loss) in CROSS_ENTROPIES else None)
    config = {}
    try:
        config = loss.get_config() or {}
    except Exception:  # a plain function, or a Loss whose config cannot be read: no from_logits
        pass
    fn = getattr(loss, "fn", None)  # LossFunctionWrapper: the function it wraps
    name = getattr(fn, "__name__", None) or snake(type(loss).__name__ if hasattr(loss, "get_config") else getattr(loss, "__name__", str(loss)))
    from_logits = config.get("from_logits")
    if from_logits is None and snake(name) in CROSS_ENTROPIES:
        from_logits = False
    return snake(name), from_logits


def tensor_activation(tensor):
    """The activation name of the layer producing a functional output ('linear', 'softmax', ...),
    or None when the layer has none of its own."""
    import keras

    history = getattr(tensor, "_keras_history", None)  # none on a subclassed model's traced output
    if history is None:
        return None
    layer = history[0]
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    fn = getattr(layer, "activation", None)
    return None if fn is None else getattr(fn, "__name__", type(fn).__name__)


def load_generic(path, custom_module):
    """The compiled Keras model at path, after importing custom_module (where a team registers
    its own losses, metrics and layers); the warnings Keras gave while loading come with it:
    a model whose compile config cannot be restored loads uncompiled with only a warning."""
    import importlib
    import warnings

    import keras

    if custom_module:
        sys.path.insert(0, os.getcwd())
        try:
            importlib.import_module(custom_module)
        except Exception as err:
            raise SystemExit(f"export: --custom-module {custom_module}: cannot import it: {err}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = keras.saving.load_model(path, compile=True)
        except Exception as err:
            raise SystemExit(f"export: {path}: Keras cannot load it: {err} (a custom loss, metric or layer "
                             "must be registered with keras.saving.register_keras_serializable in the module "
                             "--custom-module names)")
    return model, [str(w.message) for w in caught]


def generic_structure(model):
    """(inputs, outputs, output names): the model's input and output structures as KerasTensors
    (a tensor, a list or a dict, as the model takes and returns them) and its output names in
    flattened order; None for a subclassed model that was never built.

    A functional model (a Sequential one keeps a functional graph) has them; an output's name is
    its dict key, else the name of the layer producing it. A built subclassed model has one input
    of the shape it was built with, named "inputs" as model.export() names it, and its outputs
    are traced symbolically, named output_0, output_1, ... (or their dict keys)."""
    import keras
    from keras import tree

    graph = getattr(model, "_functional", None) or model
    if hasattr(graph, "_inputs_struct") and hasattr(graph, "_outputs_struct"):
        ins, outs = graph._inputs_struct, graph._outputs_struct
        if isinstance(outs, dict):
            return ins, outs, sorted(outs)
        return ins, outs, [t._keras_history[0].name for t in tree.flatten(outs)]
    shapes = getattr(model, "_build_shapes_dict", None) or {}
    if not model.built or len(shapes) != 1:
        return None
    # Built by a call on a batch, the shape holds that batch's size: the batch is dynamic.
    shape = (None, *tuple(next(iter(shapes.values())))[1:])
    ins = keras.KerasTensor(shape, dtype=model.input_dtype, name="inputs")
    from keras.src import backend  # what Keras' own _symbolic_build traces with; not re-exported

    outs = backend.compute_output_spec(model, ins, training=False)
    if isinstance(outs, dict):
        return ins, outs, sorted(outs)
    return ins, outs, [f"output_{i}" for i in range(len(tree.flatten(outs)))]


def per_output_losses(model, names):
    """The loss compiled for each output (as given to compile), or None where there is none."""
    user = model._compile_loss._user_loss if model._compile_loss is not None else None
    if isinstance(user, dict):
        return [user.get(n) for n in names]
    if isinstance(user, (list, tuple)):
        return list(user) if len(user) == len(names) else [None] * len(names)
    return [user] * len(names) if len(names) == 1 else [None] * len(names)


def spec_of(name, shape, dtype):
    return dict(name=name, dtype=dtype, shape=[-1 if d is None else int(d) for d in shape])


def check_generic(model, args, load_warnings):
    """Every reason the model cannot be exported (all of them, so one run lists every problem),
    and the signature's tensors: (problems, inputs, outputs, targets, losses), each tensor a
    dict(name, dtype, shape) with -1 for the batch (and any other dynamic) dimension."""
    import keras
    from keras import tree

    problems = []
    for flag, value, default in (("--output", args.output, "auto"), ("--mixed-precision", args.mixed_precision, "none"),
                                 ("--xla", args.xla, "auto")):
        if value != default:
            problems.append(f"{flag} {value}: not for --generic (the model is exported as it was compiled)")
    if args.replicas not in ("auto", "1"):
        problems.append(f"--replicas {args.replicas}: --generic exports one replica")
    if args.weights != "none":
        problems.append("--weights: not for --generic (the .keras file holds the weights)")
    for method in ("train_step", "test_step"):
        if getattr(type(model), method) is not getattr(keras.Model, method):
            problems.append(f"{type(model).__name__} overrides {method}: the export runs Keras' own {method}, "
                            "so the numbers would not be the model's")
    if not getattr(model, "compiled", False) or getattr(model, "optimizer", None) is None:
        why = f" (Keras said while loading: {' | '.join(load_warnings)})" if load_warnings else ""
        problems.append(f"the model is not compiled{why}: compile it with its optimizer, losses and metrics "
                        "before saving")
        return problems, [], [], [], []
    lr = getattr(getattr(model.optimizer, "inner_optimizer", model.optimizer), "_learning_rate", None)
    if not isinstance(lr, keras.Variable):
        problems.append(f"optimizer {model.optimizer.name} uses a learning-rate schedule: Go sets the learning "
                        "rate itself (ReduceLROnPlateau): recompile with a float learning rate")
    try:
        structure = generic_structure(model)
    except Exception as err:
        problems.append(f"{type(model).__name__}: cannot trace its call on its build shape: "
                        f"{type(err).__name__}: {first_line(err)}")
        return problems, [], [], [], []
    if structure is None:
        problems.append(f"{type(model).__name__} is a subclassed model that was never built (or was built "
                        "with several inputs): call it on a batch, or build it, before saving")
        return problems, [], [], [], []
    ins, outs, names = structure

    in_specs = []
    for t in tree.flatten(ins):
        spec = spec_of(t.name, t.shape, keras.backend.standardize_dtype(t.dtype))
        if spec["dtype"] not in INPUT_DTYPES:
            problems.append(f"input {t.name}: dtype {spec['dtype']}: need one of {', '.join(INPUT_DTYPES)}")
        if not t.shape or t.shape[0] is not None:
            problems.append(f"input {t.name}: shape {tuple(t.shape)}: the first (batch) dimension must be dynamic (None)")
        in_specs.append(spec)

    out_specs, target_specs, losses = [], [], []
    for name, t, loss in zip(names, tree.flatten(outs), per_output_losses(model, names)):
        dtype = keras.backend.standardize_dtype(t.dtype)
        out_specs.append(spec_of(name, t.shape, dtype))
        if loss is None:
            problems.append(f"output {name}: no compiled loss: compile a loss for every output "
                            "(loss=[...] or loss={name: ...})")
            continue
        loss_name, from_logits = loss_identity(loss)
        units = t.shape[-1] if t.shape else None
        if loss_name in ("categorical_crossentropy", "sparse_categorical_crossentropy",
                         "categorical_focal_crossentropy") and units == 1:
            problems.append(f"output {name}: loss {loss_name} on a 1-unit output sees one class (a softmax "
                            "over it is always 1): use binary_crossentropy, or one unit per class")
        if from_logits is False and loss_name in CROSS_ENTROPIES and tensor_activation(t) == "linear":
            problems.append(f"output {name}: loss {loss_name} takes probabilities (from_logits=False) but the "
                            f"layer {t._keras_history[0].name} has a linear activation: compile with "
                            "from_logits=True or end in softmax/sigmoid")
        sparse = loss_name.startswith("sparse_")
        target_specs.append(spec_of(name, t.shape[:-1] if sparse else t.shape, "int32" if sparse else "float32"))
        losses.append(dict(output=name, loss=loss_name, from_logits=from_logits))
    for spec in in_specs + out_specs:
        if spec["name"] in RESERVED_NAMES:
            problems.append(f"tensor {spec['name']}: the name is reserved for the signature's own argument: rename it")
    seen = [s["name"] for s in in_specs] + [s["name"] for s in out_specs]
    for n in sorted({n for n in seen if seen.count(n) > 1}):
        problems.append(f"tensor name {n} is used by more than one input/output: names must be unique")
    return problems, in_specs, out_specs, target_specs, losses


def build_generic(model, in_specs, target_specs):
    """Builds the compiled loss, the compiled metrics and the optimizer as fit would on a first
    batch of these specs (Keras' _symbolic_build: shapes only, no value changes)."""
    import keras
    from keras import tree

    def sym(s):
        return keras.KerasTensor([None if d < 0 else d for d in s["shape"]], s["dtype"])

    ins, outs, _ = generic_structure(model)
    x = tree.pack_sequence_as(ins, [sym(s) for s in in_specs])
    y = pack_targets(outs, [sym(s) for s in target_specs])
    model._symbolic_build(data_batch=(x, y, keras.KerasTensor([None], "float32")))


def pack_targets(struct, flat):
    """Targets in the structure of the model's outputs (what compile's losses are keyed by)."""
    if isinstance(struct, dict):
        return dict(zip(sorted(struct), flat))
    if isinstance(struct, (list, tuple)):
        return list(flat)
    return flat[0]


def loss_output(entry, names):
    """The output name a built CompileLoss entry applies to, from its path in the outputs' structure
    (its name is the output's only where Keras knows output names: not for a Sequential model)."""
    if not entry.path:
        return names[0] if len(names) == 1 else None
    key = entry.path[-1]
    return names[key] if isinstance(key, int) and key < len(names) else key


def check_traceable(model, out_specs, target_specs, problems):
    """Traces each compiled loss and metric alone on its output's specs, so one that cannot be
    exported (Python-side code, a shape it does not fit) is named with its output and why.
    Tracing runs no assign: metric state is left as it is. The batch is traced as 2 rows so that
    a target that does not fit its output fails here as it would in fit (e.g. AUC on a sparse
    3-class target: 2 labels against 6 scores), not on the first batch in Go."""
    import tensorflow as tf

    def tspec(s):
        return tf.TensorSpec([2, *(None if d < 0 else d for d in s["shape"][1:])], s["dtype"])

    outputs = {s["name"]: s for s in out_specs}
    targets = {s["name"]: s for s in target_specs}
    weight = tf.TensorSpec([2], tf.float32)
    names = [s["name"] for s in out_specs]
    for entry in model._compile_loss._flat_losses or []:
        name = loss_output(entry, names)
        if name not in targets:
            problems.append(f"loss {entry.loss.name} applies to {entry.name!r}, which is not one output of the model")
            continue
        fn = entry.loss
        try:
            tf.function(lambda y, p, w: fn(y, p, sample_weight=w), autograph=False).get_concrete_function(
                tspec(targets[name]), tspec(outputs[name]), weight)
        except Exception as err:
            problems.append(f"output {name}: loss {fn.name} cannot be exported: {type(err).__name__}: "
                            f"{first_line(err)}")
    cm = model._compile_metrics
    if cm is None:
        return
    for lists in (cm._flat_metrics, cm._flat_weighted_metrics):
        for name, mlist in zip(names, lists or []):
            for m in (mlist.metrics if mlist is not None else []):
                if not isinstance(m, __import__("keras").metrics.Metric):
                    problems.append(f"output {name}: metric {m!r} is not a keras.metrics.Metric")
                    continue
                try:
                    tf.function(lambda y, p, w: m.update_state(y, p, sample_weight=w),
                                autograph=False).get_concrete_function(tspec(targets[name]), tspec(outputs[name]), weight)
                except Exception as err:
                    problems.append(f"output {name}: metric {m.name} cannot be exported: {type(err).__name__}: "
                                    f"{first_line(err)}")


def first_line(err):
    text = str(err).strip()
    return text.splitlines()[0] if text else ""


def untraceable_losses(model, out_specs, target_specs):
    """When Keras cannot build the compiled loss: which output's loss fails to trace alone, and
    why (the compiled losses as given to compile, resolved as Keras resolves them)."""
    import keras
    import tensorflow as tf

    def tspec(s):
        return tf.TensorSpec([None if d < 0 else d for d in s["shape"]], s["dtype"])

    targets = {s["name"]: s for s in target_specs}
    names = [s["name"] for s in out_specs]
    problems = []
    for spec, loss in zip(out_specs, per_output_losses(model, names)):
        if loss is None or spec["name"] not in targets:
            continue
        try:
            fn = keras.losses.get(loss)
            tf.function(lambda y, p: fn(y, p), autograph=False).get_concrete_function(
                tspec(targets[spec["name"]]), tspec(spec))
        except Exception as err:
            problems.append(f"output {spec['name']}: loss {loss_identity(loss)[0]} cannot be exported: "
                            f"{type(err).__name__}: {first_line(err)}")
    return problems


def learning_rate_endpoints(optimizer):
    """set_learning_rate and get_state, shared by both exports."""
    import tensorflow as tf

    def state():
        return {"learning_rate": tf.identity(optimizer.learning_rate), "iterations": tf.cast(optimizer.iterations, tf.int64)}

    def set_learning_rate(learning_rate):
        optimizer.learning_rate.assign(learning_rate)
        return state()

    return set_learning_rate, state


def generic_endpoints(model, in_specs, out_specs, target_specs):
    """The generic signatures' functions: Keras' own train_step and test_step traced on named
    flat arguments (inputs, then targets, then sample_weights)."""
    import tensorflow as tf
    from keras import tree

    def tspec(s):
        return tf.TensorSpec([None if d < 0 else d for d in s["shape"]], s["dtype"], name=s["name"])

    x_specs = [tspec(s) for s in in_specs]
    y_specs = [tspec(s) for s in target_specs]
    w_spec = tf.TensorSpec([None], tf.float32, name="sample_weights")
    n_in, n_out = len(x_specs), len(y_specs)
    out_names = [s["name"] for s in out_specs]
    ins, outs, _ = generic_structure(model)

    def unpack(args):
        x = tree.pack_sequence_as(ins, list(args[:n_in]))
        y = pack_targets(outs, list(args[n_in:n_in + n_out]))
        return x, y, args[n_in + n_out]

    def logs(results):
        return {k: tf.identity(v) for k, v in results.items()}

    def serve(*args):
        out = model(tree.pack_sequence_as(ins, list(args)), training=False)
        if isinstance(out, dict):
            return {k: out[k] for k in out_names}
        return dict(zip(out_names, tree.flatten(out)))

    def train_step(*args):
        return logs(model.train_step(unpack(args)))

    def evaluate(*args):
        return logs(model.test_step(unpack(args)))

    def reset_metrics():
        # What fit does at each epoch's start and evaluate at its own: every metric of
        # model.metrics (the loss trackers included) back to its initial state.
        model.reset_metrics()
        return {"metrics": tf.constant(len(model.metrics), tf.int64)}

    set_learning_rate, get_state = learning_rate_endpoints(model.optimizer)

    def function(fn, signature):
        return tf.function(fn, input_signature=signature, autograph=False)

    step = [*x_specs, *y_specs, w_spec]
    return dict(
        serve=function(serve, x_specs),
        train_step=function(train_step, step),
        evaluate=function(evaluate, step),
        reset_metrics=function(reset_metrics, []),
        set_learning_rate=function(set_learning_rate, [tf.TensorSpec([], tf.float32, name="learning_rate")]),
        get_state=function(get_state, []),
    )


def lookup_resources(model):
    """The model's non-variable resources (the tables of StringLookup, IntegerLookup, ...): a
    SavedModel must track every resource its functions capture."""
    import tensorflow as tf
    from tensorflow.saved_model.experimental import TrackableResource

    return [t for t in tf.train.TrackableView(model).descendants() if isinstance(t, TrackableResource)]


def monitor_modes(model, log_names):
    """For each log name, the direction Keras 3.15's `auto` mode picks for it (and for its val_
    twin): "min" for loss, else the _direction of the compiled metric of that name ("up": max,
    otherwise min); "" where Keras cannot tell (it then refuses auto mode: e.g. per-output losses)."""
    from keras.src.trainers import compile_utils

    found = []
    for m in model.metrics:
        if isinstance(m, (compile_utils.CompileMetrics, compile_utils.MetricsList)):
            found.extend(m.metrics)
    modes = {}
    for name in log_names:
        mode = "min" if name == "loss" else ""
        for m in found:
            if m.name == name and hasattr(m, "_direction"):
                mode = "max" if m._direction == "up" else "min"
        modes[name] = mode
    return modes


def export_generic(args, out, start, serving):
    """--generic: see the module docstring."""
    import keras
    import numpy as np
    import tensorflow as tf

    with Phase("load the model"):
        progress(f"wrapping {args.from_model} (generic)")
        model, load_warnings = load_generic(args.from_model, args.custom_module)
    problems, in_specs, out_specs, target_specs, losses = check_generic(model, args, load_warnings)
    # Built and traced also beside other problems (all in one run), once every tensor is known.
    if in_specs and len(target_specs) == len(out_specs):
        try:
            build_generic(model, in_specs, target_specs)
        except Exception as err:
            named = untraceable_losses(model, out_specs, target_specs)
            problems.extend(named or [f"Keras cannot build the compiled losses and metrics on these inputs and "
                                      f"targets: {type(err).__name__}: {first_line(err)}"])
        else:
            check_traceable(model, out_specs, target_specs, problems)
    if problems:
        raise SystemExit(f"export: {args.from_model}: cannot export it ({len(problems)} problem"
                         f"{'s' if len(problems) > 1 else ''}):\n" + "\n".join(f"  - {p}" for p in problems))

    fns = generic_endpoints(model, in_specs, out_specs, target_specs)
    names = list(GENERIC_SIGNATURES)
    resources = lookup_resources(model)
    metric_vars = [v for m in model.metrics for v in m.variables]

    def list_vars(archive):
        return variable_listing(archive, model, model.optimizer, metric_variables=metric_vars)

    if serving and serving.child:
        serving.finish(fns, resources, list_vars)
    parent = os.path.dirname(out) or "."
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        write_models(tmp, fns, names, resources, list_vars, serving)

        log_names = list(fns["train_step"].get_concrete_function().structured_outputs)
        log_shapes = {k: [int(d) if d is not None else -1 for d in v.shape]
                      for k, v in fns["train_step"].get_concrete_function().structured_outputs.items()}
        by_output = {l["output"]: l for l in losses}
        for entry in model._compile_loss._flat_losses:
            by_output[loss_output(entry, [s["name"] for s in out_specs])]["weight"] = 1.0 if entry.loss_weights is None else float(entry.loss_weights)
        optimizer = model.optimizer
        meta = dict(
            format=GENERIC_FORMAT,
            kind="generic",
            source=os.path.abspath(args.from_model),
            keras_version=keras.__version__,
            tensorflow_version=tf.__version__,
            optimizer=type(optimizer).__name__,
            learning_rate=float(np.asarray(optimizer.learning_rate)),
            signatures={n: n for n in names},
            inputs=in_specs,
            outputs=out_specs,
            targets=target_specs,
            sample_weights=dict(name="sample_weights", dtype="float32", shape=[-1]),
            losses=[by_output[s["name"]] for s in out_specs],
            logs=[dict(name=n, shape=log_shapes[n]) for n in log_names],
            monitor=monitor_modes(model, log_names),
            serving=dict(dir=SERVING_DIR, key_map=f"{SERVING_DIR}/key_map.json",
                         graph=f"{SERVING_DIR}/graph.pb", object_graph=f"{SERVING_DIR}/object_graph.pb"),
            params=int(sum(int(np.prod(v.shape)) for v in model.weights)),
        )
        publish(tmp, out, meta)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    progress(f"wrote {out} ({meta['params']:,} parameters, generic) in {time.perf_counter() - start:.1f} s")
    return meta


def write_models(tmp, fns, names, resources, list_vars, serving):
    """The training SavedModel (names' endpoints) in tmp, its serving graph in tmp/serving-graph
    (from the forked writer when there is one and it succeeded, else written here), and the two
    listings: variables.json and the serving key map. list_vars(archive) is variable_listing
    for this model."""
    with Phase(f"trace and write the training SavedModel ({', '.join(names)})"):
        train_archive = write_training_model(tmp, fns, names, resources)
    listing = list_vars(train_archive)
    serving_dir = os.path.join(tmp, SERVING_DIR)
    joined = serving.collect(serving_dir, listing) if serving else None
    if joined is None:
        with Phase("write the serving graph"):
            serving_archive = write_serving_graph(serving_dir, fns, resources)
        joined = serving_key_map(listing, list_vars(serving_archive), by_path=False)
    key_map, dtypes = joined
    for v in listing:
        del v["id"]
    with open(os.path.join(serving_dir, "key_map.json"), "w") as f:
        json.dump({"dtypes": dtypes, "map": key_map}, f, indent=1)
    with open(os.path.join(tmp, "variables.json"), "w") as f:
        json.dump({"variables": listing}, f, indent=1)


def serving_key_map(listing, serving_listing, by_path):
    """Each serving checkpoint key's training checkpoint key and dtype: the serving variable's
    entry joined with the training listing's by identity (both archives of this process), or,
    for a listing from the forked writer (another process, other objects), by Keras path, role,
    shape and dtype, which must then name exactly one training variable."""
    def ident(v):
        return (v["path"], v["role"], tuple(v["shape"]), v["dtype"]) if by_path else v["id"]

    index = {}
    for v in listing:
        index.setdefault(ident(v), []).append(v)
    key_map, dtypes = {}, {}
    for s in serving_listing:
        match = index.get(ident(s), [])
        if len(match) != 1:
            raise ValueError(f"serving variable {s['path']} ({s['key']}) matches {len(match)} training variables")
        key_map[s["key"]], dtypes[s["key"]] = match[0]["key"], match[0]["dtype"]
    return key_map, dtypes


class ServingWritten(BaseException):
    """The forked writer's way out once its files are written (see ServingWriter.run)."""


class ServingWriter:
    """serving-graph/ written by a forked copy of this process while this one writes the
    training SavedModel. Both are Python tracing and serialising, one core each: written after
    the training SavedModel, the serving graph (serialising serve again and tracing a saver of
    its own) keeps one core busy while the other idles. The fork is made before TensorFlow is
    imported (no threads, no device state to inherit); the copy builds the same model without
    its weights (the graph holds none), traces serve alone, and lists its variables by Keras
    path, which serving_key_map joins with the training checkpoint's keys. Whatever goes wrong
    in the copy, the export writes the serving graph itself, as with --serving-writer inline.
    It costs a second process's memory while it runs (experiments/RESULTS.md, "new-model")."""

    LISTING = "serving-variables.json"

    def __init__(self, work, pid):
        self.work, self.pid, self.child = work, pid, pid == 0

    # --serving-writer auto forks for models whose serving graph takes seconds to write: the
    # copy repeats the import of TensorFlow and the model's build, which a small model's
    # serving graph does not repay on a machine whose other core has work of its own (tests).
    # A --from model is judged by its file's size.
    FROM_FILE_BYTES = 16 << 20

    @classmethod
    def start(cls, args, parent):
        """The writer (None: inline). In the copy, the returned writer's child is True."""
        if args.serving_writer == "inline" or "tensorflow" in sys.modules:
            return None
        if args.serving_writer == "auto" and not cls.pays(args):
            return None
        os.makedirs(parent, exist_ok=True)
        work = tempfile.mkdtemp(prefix=".export-", dir=parent)
        sys.stdout.flush()
        sys.stderr.flush()
        parent_pid = os.getpid()
        pid = os.fork()
        writer = cls(work, pid)
        if writer.child:
            writer._detach(parent_pid)
        return writer

    @classmethod
    def pays(cls, args):
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        if cores < 2:
            return False
        if args.from_model:
            try:
                return os.path.getsize(args.from_model) >= cls.FROM_FILE_BYTES
            except OSError:
                return False
        return args.backbone != "tiny"

    def _detach(self, parent_pid):
        # The caller (Go's exporter) reads this process's stderr to its end: the copy must not
        # hold it open, and what it prints is only for a failure's reason.
        log = os.open(os.path.join(self.work, "log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        try:  # Linux: die with the exporter (killed, or failed before collect)
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
        if os.getppid() != parent_pid:
            os._exit(1)
        if os.environ.get("EMOTIONS_TEST_SERVING_WRITER_FAILS"):  # tests: the fallback
            print("failing as EMOTIONS_TEST_SERVING_WRITER_FAILS asks", file=sys.stderr)
            os._exit(3)
        # The graph does not depend on the device, and the GPUs are the exporter's.
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
        tempfile.tempdir = tempfile.mkdtemp(prefix="emotions-export-serving-")  # autograph's files

    def run(self, export):
        """The copy: export() up to finish(), then exit (0: the files are written)."""
        code = 1
        try:
            export()
            print("the export returned before writing the serving graph", file=sys.stderr)
        except ServingWritten:
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            shutil.rmtree(tempfile.tempdir, ignore_errors=True)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def finish(self, fns, resources, list_vars):
        """The copy, where the exporter writes its models: the serving graph and its listing."""
        archive = write_serving_graph(os.path.join(self.work, SERVING_DIR), fns, resources)
        listing = list_vars(archive)
        for v in listing:
            del v["id"]
        with open(os.path.join(self.work, self.LISTING), "w") as f:
            json.dump(listing, f)
        raise ServingWritten

    def collect(self, dest, listing):
        """Waits for the copy and moves its serving graph to dest; returns the key map and
        dtypes, or None (the reason printed) when it failed."""
        with Phase("wait for the serving graph (written beside it)"):
            _, status = os.waitpid(self.pid, 0)
            self.pid = None
        code = os.waitstatus_to_exitcode(status)
        try:
            if code != 0:
                raise RuntimeError(f"exit status {code}: {self.last_line()}")
            with open(os.path.join(self.work, self.LISTING)) as f:
                joined = serving_key_map(listing, json.load(f), by_path=True)
            os.rename(os.path.join(self.work, SERVING_DIR), dest)
            return joined
        except (OSError, RuntimeError, ValueError, KeyError) as err:
            progress(f"the serving graph's writer failed ({err}): writing it here")
            return None

    def last_line(self):
        try:
            with open(os.path.join(self.work, "log"), errors="replace") as f:
                lines = [l.strip() for l in f if l.strip()]
            return lines[-1] if lines else "no output"
        except OSError as err:
            return str(err)

    def close(self):
        """Stops a copy still running (the export failed or was answered from the cache) and
        removes its files."""
        if self.pid:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            self.pid = None
        shutil.rmtree(self.work, ignore_errors=True)

# ---- the export cache -------------------------------------------------------------------------

CACHE_KEEP = 4  # most recently used entries kept: an InceptionResNetV2 export is ~0.7 GB


def hash_path(h, path):
    """Content of a file, or of every file under a directory (relative names included)."""
    if os.path.isdir(path):
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(root, name)
                h.update(os.path.relpath(full, path).encode() + b"\0")
                hash_path(h, full)
        return
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)


def cache_key(args):
    """Everything the export is a function of: this script, the arguments, the content of
    input files, the library versions, and the XLA decision (it depends on the machine)."""
    from importlib import metadata

    def version(dist):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    fields = {k: v for k, v in sorted(vars(args).items()) if k not in ("out", "cache", "no_cache", "serving_writer")}
    inputs = []
    for k in ("from_model", "weights"):
        if fields[k] and os.path.exists(fields[k]):
            fields[k] = os.path.abspath(fields[k])
            inputs.append(fields[k])
    fields["xla_resolved"] = want_xla(args)
    fields["replicas_resolved"] = want_replicas(args)
    fields["versions"] = {d: version(d) for d in ("tensorflow-cpu", "tensorflow", "keras", "numpy")}
    fields["python"] = sys.version
    h = hashlib.sha256()
    with open(os.path.abspath(__file__), "rb") as f:
        h.update(f.read())
    h.update(json.dumps(fields, sort_keys=True).encode())
    for path in inputs:
        hash_path(h, path)
    return h.hexdigest()[:32]


def link_tree(src, dst):
    """dst as a copy of src whose files are hard links (copies across file systems). JSON files
    are copied: they are small and the ones a person might edit in place."""
    for root, _, files in os.walk(src):
        target = os.path.join(dst, os.path.relpath(root, src))
        os.makedirs(target, exist_ok=True)
        for name in files:
            s, d = os.path.join(root, name), os.path.join(target, name)
            if name.endswith(".json"):
                shutil.copy2(s, d)
                continue
            try:
                os.link(s, d)
            except OSError:
                shutil.copy2(s, d)


def from_cache(cache, key, out):
    entry = os.path.join(cache, key)
    if not os.path.isdir(entry):
        return False
    parent = os.path.dirname(out) or "."
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        link_tree(entry, tmp)
        fsync_tree(tmp)
        os.chmod(tmp, 0o755)
        os.rename(tmp, out)
    except OSError as err:  # e.g. the entry pruned meanwhile: export anew
        shutil.rmtree(tmp, ignore_errors=True)
        progress(f"model cache entry {entry} unusable ({err}); exporting anew")
        return False
    os.utime(entry)
    made = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.stat(os.path.join(entry, "emotions.json")).st_mtime))
    progress(f"identical export found in the model cache: {out} is a hard-linked copy of {entry} "
             f"(made {made}); --no-cache exports anew")
    return True


def to_cache(cache, key, out):
    """Keep a hard-linked copy of out as the cache entry key (atomically), then drop the least
    recently used entries beyond CACHE_KEEP. A cache that cannot be written is only reported."""
    entry = os.path.join(cache, key)
    try:
        os.makedirs(cache, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".entry-", dir=cache)
        link_tree(out, tmp)
        try:
            os.rename(tmp, entry)
        except OSError:  # the same export was cached concurrently
            shutil.rmtree(tmp, ignore_errors=True)
        entries = [os.path.join(cache, e) for e in os.listdir(cache) if not e.startswith(".")]
        entries.sort(key=lambda e: os.stat(e).st_mtime, reverse=True)
        for old in entries[CACHE_KEEP:]:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as err:
        progress(f"could not add the export to the model cache {cache}: {err}")


def publish(tmp, out, meta):
    """Writes emotions.json into the finished export tmp, makes it durable and renames it to
    out: a model directory appears whole or not at all."""
    with open(os.path.join(tmp, "emotions.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    with Phase("fsync"):
        fsync_tree(tmp)
    os.chmod(tmp, 0o755)
    os.rename(tmp, out)


def fsync_tree(root_dir):
    for root, _, files in os.walk(root_dir):
        for name in files:
            with open(os.path.join(root, name), "rb") as fh:
                os.fsync(fh.fileno())


# ---- main -------------------------------------------------------------------------------------


def main(argv):
    start = time.perf_counter()
    args = parse_args(argv)
    out = os.path.abspath(args.out)
    if os.path.exists(out):
        raise SystemExit(f"export: {out} already exists; choose a new --out")
    if args.generic and not args.from_model:
        raise SystemExit("export: --generic wraps a saved model: give it with --from model.keras")
    if args.custom_module and not args.generic:
        raise SystemExit("export: --custom-module goes with --generic")
    if not args.from_model and args.output == "logits":
        raise SystemExit("export: --output logits is for --from models; a built model ends in softmax")
    # A --custom-module is not part of the cache key: such an export is never cached.
    cache = "" if args.no_cache or args.custom_module else args.cache
    # Forked first, while no TensorFlow is loaded (the cache key may load it to count GPUs);
    # a cache hit stops the copy.
    serving = ServingWriter.start(args, os.path.dirname(out) or ".")
    if serving and serving.child:
        if not args.from_model:
            args.weights = "none"  # the graph holds no weights: none to download, read or copy
        serving.run(lambda: export(args, out, start, serving))
    try:
        key = None
        if cache:
            with Phase("cache lookup"):
                key = cache_key(args)
            if from_cache(cache, key, out):
                return
        export(args, out, start, serving)
        if cache:
            to_cache(cache, key, out)
    finally:
        if serving:
            serving.close()


def export(args, out, start, serving):
    """The export proper (the forked serving writer runs it too, up to write_models)."""
    with Phase("import TensorFlow and Keras"):
        import keras
        import numpy as np
        import tensorflow as tf
    keras.utils.set_random_seed(args.seed)
    if args.generic:
        export_generic(args, out, start, serving)
        return
    if args.mixed_precision != "none" and args.from_model:
        raise SystemExit("export: --mixed-precision is for built models; a --from model keeps "
                         "the dtype policy it was saved with")

    copy_src = None
    with Phase("build the model"):
        if args.from_model:
            progress(f"wrapping {args.from_model}")
            model, shape, classes, output = load_wrapped(args.from_model, args.classes, args.output)
            backbone = "custom"
        else:
            classes = parse_classes(args.classes)
            size = args.input_size
            if not MIN_SIDE <= size <= MAX_SIDE:
                raise SystemExit(f"export: --input-size {size}: must be {MIN_SIDE}..{MAX_SIDE}")
            shape, output = (size, size, 3), "probabilities"
            progress(f"building {args.backbone} {size}x{size}, {len(classes)} classes, weights={args.weights}")
            model, copy_src = build_compiled(args, classes)
            backbone = args.backbone
        norm = normalization(args, backbone, shape[2])
        if copy_src:
            copy_from_emotions_model(model, copy_src, classes)
        logits = output == "logits"
        optimizer, loss_fn = compiled_parts(model, args.learning_rate, logits)
        if not (serving and serving.child):  # the serving copy traces serve alone: no slots
            optimizer.build(model.trainable_variables)  # slots must exist before tracing
    replicas = want_replicas(args)
    local, shadows = replica_locals(model, replicas)
    fns = make_endpoints(model, optimizer, loss_fn, shape, len(classes), logits, local, shadows)
    train_names = ["serve", "train_step", "evaluate", "set_learning_rate", "get_state"]
    if want_xla(args):
        train_names.insert(2, "train_step_xla")
    train_names += replica_signatures(replicas)

    def list_vars(archive):
        return variable_listing(archive, model, optimizer, shadows)

    if serving and serving.child:
        serving.finish(fns, (), list_vars)
    parent = os.path.dirname(out) or "."
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        write_models(tmp, fns, train_names, (), list_vars, serving)
        height, width, channels = shape
        meta = dict(
            format=FORMAT,
            backbone=backbone,
            weights=args.weights if not args.from_model else f"from {os.path.basename(args.from_model)}",
            input_height=height,
            input_width=width,
            channels=channels,
            color="grayscale" if channels == 1 else "rgb",
            output=output,
            classes=classes,
            normalization=norm,
            crop=args.crop,
            seed=args.seed,
            optimizer=type(optimizer).__name__,
            learning_rate=float(np.asarray(optimizer.learning_rate)),
            loss=getattr(model, "loss", None) if isinstance(getattr(model, "loss", None), str) else loss_fn.name,
            tensorflow_version=tf.__version__,
            keras_version=keras.__version__,
            source=os.path.abspath(args.from_model) if args.from_model else "",
            signatures={n: n for n in train_names},
            mixed_precision=model.dtype_policy.name if model.dtype_policy.name.startswith("mixed_") else "",
            loss_scale=type(optimizer).__name__ == "LossScaleOptimizer",
            serving=dict(dir=SERVING_DIR, key_map=f"{SERVING_DIR}/key_map.json",
                         graph=f"{SERVING_DIR}/graph.pb", object_graph=f"{SERVING_DIR}/object_graph.pb"),
            params=int(sum(int(np.prod(v.shape)) for v in model.weights)),
        )
        if height == width:  # for a format-1 reader; Go reads input_height/input_width
            meta["input_size"] = height
        publish(tmp, out, meta)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    progress(f"wrote {out} ({meta['params']:,} parameters) in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    # Tracing a large model makes millions of Python objects and few reference cycles: the
    # cyclic collector's passes cost ~10% of the CPU time (InceptionResNetV2: 28.7 -> 26.6 s,
    # 32.8 -> 28.4 s) and change no peak memory (2.40 GB either way).
    gc.disable()
    # TensorFlow's autograph writes each function it converts to a file in the temp directory
    # and removes it at exit, which os._exit below skips: they go in a directory of this
    # process's own, removed here.
    private_tmp = tempfile.mkdtemp(prefix="emotions-export-")
    tempfile.tempdir = private_tmp
    try:
        main(sys.argv[1:])
    finally:
        shutil.rmtree(private_tmp, ignore_errors=True)
    # Everything is written, fsynced and renamed: skip the interpreter's teardown of
    # TensorFlow's graphs and sessions (~4 s of wall time after an InceptionResNetV2 export).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
