#!/usr/bin/env python3
"""The project's only Python: build (or wrap) a Keras image classifier and export it as a
SavedModel whose signatures let Go predict, train one step, evaluate and set the learning rate.

Layout written to --out (atomically: a temp dir renamed into place):

    OUT/saved_model.pb, OUT/variables/     the training model (weights + optimizer state)
    OUT/emotions.json                       metadata Go reads (input size, classes, normalisation)
    OUT/variables.json                      checkpoint key -> Keras variable path, shape, role
    OUT/serving/                            serving-only SavedModel (serve endpoint, no optimizer)
    OUT/serving/key_map.json                serving checkpoint key -> training checkpoint key

Why no ExportArchive.track(model): track() makes a second tf.Variable for every Keras variable
(Keras' _export_to_saved_model_graph); the endpoints then train one copy while a reload restores
the other, stale one. Endpoints alone capture exactly the variables they use.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

# The classifier's last layer: its variables (probabilities/kernel, /bias) have one column per
# class, so copying them between models goes by class name (copy_from_emotions_model).
OUTPUT_LAYER = "probabilities"
BACKBONES = ("inception_resnet_v2", "vgg16", "resnet50", "resnet101", "tiny")

# Pixel normalisations, as x = p*scale + offset per channel (p in 0..255), matching
# keras.applications' preprocess_input modes; "rescale" is the seed's ImageDataGenerator(1/255).
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
BACKBONE_NORMALIZATION = {
    "inception_resnet_v2": "tf",
    "vgg16": "caffe",
    "resnet50": "caffe",
    "resnet101": "caffe",
    "tiny": "rescale",
}


def progress(msg):
    print(f"[export] {msg}", file=sys.stderr, flush=True)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="model directory to create (must not exist)")
    p.add_argument("--backbone", default="inception_resnet_v2", choices=BACKBONES)
    p.add_argument("--weights", default="none",
                   help="none | imagenet (Keras download, needs network) | path to .h5/.keras "
                        "backbone weights | an emotions model directory (matching variables are copied)")
    p.add_argument("--from", dest="from_model", default=None,
                   help="wrap an existing Keras 3 classifier (.keras) instead of building one")
    p.add_argument("--input-size", type=int, default=80)
    p.add_argument("--classes", default="angry,happy,normal,sad")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--dense", type=int, default=64, help="units of the Dense(relu) head layer")
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--normalization", default="rescale", choices=sorted(NORMALIZATIONS) + ["backbone"],
                   help="pixel normalisation; rescale ([0,1]) is the seed's; backbone = the "
                        "backbone's own keras.applications preprocess_input")
    p.add_argument("--xla", default="auto", choices=["auto", "on", "off"],
                   help="export the XLA-compiled train_step_xla too: auto = when this machine has a GPU "
                        "(Keras' jit_compile='auto' decides the same way, at compile time), on, off")
    p.add_argument("--no-xla", action="store_true", help="same as --xla off")
    return p.parse_args(argv)


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
    outputs = layers.Dense(len(classes), activation="softmax", name=OUTPUT_LAYER,
                           kernel_initializer=keras.initializers.GlorotUniform(args.seed + 1))(x)
    model = keras.Model(inputs, outputs, name=f"emotions_{args.backbone}")
    if file_weights and not os.path.isdir(file_weights):
        # A Keras weights file of the backbone alone (.h5 / .weights.h5 / .keras).
        target = backbone if backbone is not None else model
        progress(f"loading backbone weights from {file_weights}")
        target.load_weights(file_weights)
    return model, file_weights if file_weights and os.path.isdir(file_weights) else None


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


def load_wrapped(path, classes_arg):
    """Wrap a team's own Keras 3 classifier: one image input (N,H,W,3), softmax output (N,C)."""
    import keras

    model = keras.saving.load_model(path, compile=True)
    if len(model.inputs) != 1:
        raise SystemExit(f"export: {path}: need one image input, the model has {len(model.inputs)}")
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or shape[3] != 3 or shape[1] is None or shape[1] != shape[2]:
        raise SystemExit(f"export: {path}: input shape {shape}: need (None, S, S, 3)")
    out = tuple(model.outputs[0].shape)
    if len(model.outputs) != 1 or len(out) != 2:
        raise SystemExit(f"export: {path}: need one (None, C) output, got {[tuple(o.shape) for o in model.outputs]}")
    classes = [c for c in classes_arg.split(",") if c]
    if len(classes) != out[1]:
        raise SystemExit(f"export: {path}: the model has {out[1]} outputs but --classes names {len(classes)}")
    return model, shape[1], classes


def compiled_parts(model, lr):
    """The model's own optimizer and loss if it was compiled, else the seed's Adam + CE."""
    import keras

    optimizer = getattr(model, "optimizer", None)
    loss = getattr(model, "loss", None)
    if optimizer is None:
        optimizer = keras.optimizers.Adam(learning_rate=lr)
    if loss is None:
        loss = "categorical_crossentropy"
    if isinstance(loss, (list, dict)):
        raise SystemExit("export: models with several losses are not supported")
    loss_fn = keras.losses.get(loss)
    if not isinstance(loss_fn, keras.losses.Loss):
        from keras.src.losses.losses import LossFunctionWrapper  # not re-exported in keras.losses

        loss_fn = LossFunctionWrapper(loss_fn, reduction="sum_over_batch_size")
    if not isinstance(optimizer._learning_rate, keras.Variable):
        raise SystemExit("export: the model's optimizer uses a learning-rate schedule; Go sets the "
                         "learning rate itself (ReduceLROnPlateau): recompile with a float learning rate")
    return optimizer, loss_fn


def want_xla(args):
    """The XLA variant is only worth its cost where it is used: on CPU, XLA measured 2x slower
    here and the extra function in the graph raised a training session's peak memory by ~1 GB
    (InceptionResNetV2: 4.5 -> 3.4 GB without it), so by default it is exported only on a
    machine that has a GPU, as Keras resolves jit_compile="auto" on the compiling machine."""
    import tensorflow as tf

    if args.no_xla or args.xla == "off":
        return False
    if args.xla == "on":
        return True
    return bool(tf.config.list_physical_devices("GPU"))


def make_endpoints(model, optimizer, loss_fn, size, n_classes):
    import keras
    import tensorflow as tf

    images = tf.TensorSpec([None, size, size, 3], tf.float32, name="images")
    labels = tf.TensorSpec([None, n_classes], tf.float32, name="labels")
    weights = tf.TensorSpec([None], tf.float32, name="sample_weights")
    lr_spec = tf.TensorSpec([], tf.float32, name="learning_rate")

    def serve(images):
        return {"probabilities": model(images, training=False)}

    def train_step(images, labels, sample_weights):
        # As Keras 3 fit's train_step: loss = compiled loss (sum_over_batch_size of the
        # weighted per-sample losses) + the model's regularisation losses; the accuracy metric
        # is weighted by the same sample weights.
        with tf.GradientTape() as tape:
            probs = model(images, training=True)
            loss = loss_fn(labels, probs, sample_weight=sample_weights)
            if model.losses:
                loss = loss + tf.add_n(model.losses)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        hit = tf.cast(tf.equal(tf.argmax(probs, 1), tf.argmax(labels, 1)), tf.float32)
        accuracy = tf.math.divide_no_nan(tf.reduce_sum(hit * sample_weights), tf.reduce_sum(sample_weights))
        return {"loss": loss, "accuracy": accuracy}

    def evaluate(images, labels):
        # Sums, so Go aggregates any number of batches exactly (Keras' evaluate averages
        # per-sample losses over all samples).
        probs = model(images, training=False)
        per_sample = keras.losses.categorical_crossentropy(labels, probs)
        hit = tf.cast(tf.equal(tf.argmax(probs, 1), tf.argmax(labels, 1)), tf.float32)
        return {"loss_sum": tf.reduce_sum(per_sample), "correct": tf.reduce_sum(hit)}

    def set_learning_rate(learning_rate):
        optimizer.learning_rate.assign(learning_rate)
        return {"learning_rate": tf.identity(optimizer.learning_rate), "iterations": tf.cast(optimizer.iterations, tf.int64)}

    def get_state():
        return {"learning_rate": tf.identity(optimizer.learning_rate), "iterations": tf.cast(optimizer.iterations, tf.int64)}

    return dict(
        get_state=tf.function(get_state, input_signature=[]),
        serve=tf.function(serve, input_signature=[images]),
        train_step=tf.function(train_step, input_signature=[images, labels, weights]),
        train_step_xla=tf.function(train_step, input_signature=[images, labels, weights], jit_compile=True),
        evaluate=tf.function(evaluate, input_signature=[images, labels]),
        set_learning_rate=tf.function(set_learning_rate, input_signature=[lr_spec]),
    )


def write_archive(path, fns, names):
    import keras

    archive = keras.export.ExportArchive()
    for name in names:  # the first becomes serving_default
        archive.add_endpoint(name, fns[name])
    archive.write_out(path, verbose=False)
    return archive


def variable_listing(archive, model, optimizer):
    """Checkpoint key of each variable the archive saved, with its Keras path and role."""
    roles = {}
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


def main(argv):
    args = parse_args(argv)
    import keras
    import numpy as np
    import tensorflow as tf

    out = os.path.abspath(args.out)
    if os.path.exists(out):
        raise SystemExit(f"export: {out} already exists; choose a new --out")
    keras.utils.set_random_seed(args.seed)

    copy_src = None
    if args.from_model:
        progress(f"wrapping {args.from_model}")
        model, size, classes = load_wrapped(args.from_model, args.classes)
        backbone = "custom"
    else:
        classes = [c for c in args.classes.split(",") if c]
        if len(classes) < 2 or len(set(classes)) != len(classes):
            raise SystemExit(f"export: --classes needs at least two distinct names, got {args.classes!r}")
        size = args.input_size
        progress(f"building {args.backbone} {size}x{size}, {len(classes)} classes, weights={args.weights}")
        model, copy_src = build_model(args, classes)
        backbone = args.backbone
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=args.learning_rate),
                      loss="categorical_crossentropy", metrics=["accuracy"])
    if copy_src:
        copy_from_emotions_model(model, copy_src, classes)

    optimizer, loss_fn = compiled_parts(model, args.learning_rate)
    optimizer.build(model.trainable_variables)  # slots must exist before tracing
    fns = make_endpoints(model, optimizer, loss_fn, size, len(classes))
    train_names = ["serve", "train_step", "evaluate", "set_learning_rate", "get_state"]
    if want_xla(args):
        train_names.insert(2, "train_step_xla")

    norm_name = args.normalization
    if norm_name == "backbone":
        norm_name = BACKBONE_NORMALIZATION.get(backbone, "rescale")
    parent = os.path.dirname(out) or "."
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        progress("tracing and writing the training SavedModel")
        train_archive = write_archive(tmp, fns, train_names)
        progress("writing the serving-only SavedModel")
        serving_archive = write_archive(os.path.join(tmp, "serving"), fns, ["serve"])

        listing = variable_listing(train_archive, model, optimizer)
        by_id = {v["id"]: v["key"] for v in listing}
        key_map = {}
        for i, tv in enumerate(serving_archive._tf_trackable._all_variables):
            key_map[f"_all_variables/{i}/.ATTRIBUTES/VARIABLE_VALUE"] = by_id[id(tv)]
        for v in listing:
            del v["id"]
        with open(os.path.join(tmp, "serving", "key_map.json"), "w") as f:
            json.dump({"dtypes": {k: next(v["dtype"] for v in listing if v["key"] == t) for k, t in key_map.items()},
                       "map": key_map}, f, indent=1)
        with open(os.path.join(tmp, "variables.json"), "w") as f:
            json.dump({"variables": listing}, f, indent=1)

        meta = dict(
            format=1,
            backbone=backbone,
            weights=args.weights if not args.from_model else f"from {os.path.basename(args.from_model)}",
            input_size=size,
            classes=classes,
            normalization=dict(mode=norm_name, **NORMALIZATIONS[norm_name]),
            seed=args.seed,
            optimizer=type(optimizer).__name__,
            learning_rate=float(np.asarray(optimizer.learning_rate)),
            loss=getattr(model, "loss", None) if isinstance(getattr(model, "loss", None), str) else loss_fn.name,
            tensorflow_version=tf.__version__,
            keras_version=keras.__version__,
            source=os.path.abspath(args.from_model) if args.from_model else "",
            signatures={n: n for n in train_names},
            serving=dict(dir="serving", key_map="serving/key_map.json"),
            params=int(sum(int(np.prod(v.shape)) for v in model.weights)),
        )
        with open(os.path.join(tmp, "emotions.json"), "w") as f:
            json.dump(meta, f, indent=2)
            f.write("\n")
        for root, _, files in os.walk(tmp):
            for name in files:
                with open(os.path.join(root, name), "rb") as fh:
                    os.fsync(fh.fileno())
        os.chmod(tmp, 0o755)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    progress(f"wrote {out} ({meta['params']:,} parameters)")


if __name__ == "__main__":
    main(sys.argv[1:])
