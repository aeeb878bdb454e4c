"""A small compiled Keras model whose input is float16 (a team's half-precision features), for
tfgraph's test that half inputs reach TensorFlow (internal/example's keras_example.py makes it)."""
import numpy as np

EPOCHS, BATCH_SIZE = 1, 4


def build():
    import keras
    from keras import layers

    h = keras.Input((3,), dtype="float16", name="h")
    model = keras.Model(h, layers.Dense(2, activation="softmax", name="y")(h))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"], jit_compile=False)
    return model


def data():
    rng = np.random.default_rng(6)
    return {"train": {"h": rng.normal(size=(4, 3)).astype("float16"), "y": rng.integers(0, 2, size=4).astype("int32")}}


def callbacks(run_dir):
    return []
