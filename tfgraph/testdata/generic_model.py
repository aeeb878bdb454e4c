"""A small compiled Keras model of two inputs (int32 token ids, float32 features) and one
sparse-labelled output, for tfgraph's array API tests (internal/example's keras_example.py
makes it)."""
import numpy as np

EPOCHS, BATCH_SIZE = 1, 8


def build():
    import keras
    from keras import layers

    tokens = keras.Input((5,), dtype="int32", name="tokens")
    x = keras.Input((3,), name="x")
    h = layers.Concatenate()([layers.GlobalAveragePooling1D()(layers.Embedding(10, 4)(tokens)), x])
    model = keras.Model({"tokens": tokens, "x": x}, layers.Dense(2, activation="softmax", name="y")(h))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"], jit_compile=False)
    return model


def data():
    rng = np.random.default_rng(5)
    return {"train": {"tokens": rng.integers(0, 10, size=(8, 5)).astype("int32"),
                      "x": rng.normal(size=(8, 3)).astype("float32"),
                      "y": rng.integers(0, 2, size=8).astype("int32")}}


def callbacks(run_dir):
    return []
