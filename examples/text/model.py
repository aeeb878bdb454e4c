"""The text example's Keras side: int32 token ids (length 20), Embedding + pooling, sparse
categorical cross-entropy, metrics accuracy and AUC (textmetrics.SparseAUC), EarlyStopping on
val_auc."""
import numpy as np

EPOCHS, BATCH_SIZE = 4, 32
CUSTOM_MODULE = "textmetrics"


def build():
    import keras
    from keras import layers
    from textmetrics import SparseAUC

    tokens = keras.Input((20,), dtype="int32", name="tokens")
    h = layers.Embedding(100, 16)(tokens)
    h = layers.GlobalAveragePooling1D()(h)
    label = layers.Dense(2, activation="softmax", name="label")(h)
    model = keras.Model(tokens, label)
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy", SparseAUC(name="auc")], jit_compile=False)
    return model


def data():
    rng = np.random.default_rng(12)

    def rows(n):
        t = rng.integers(0, 100, size=(n, 20)).astype("int32")
        # A "positive" text has more than four of the first 20 words.
        return {"tokens": t, "label": ((t < 20).sum(axis=1) > 4).astype("int32")}
    return {"train": rows(320), "valid": rows(96)}


def callbacks(run_dir):
    import keras

    return [keras.callbacks.EarlyStopping(monitor="val_auc", patience=0, min_delta=0.01)]
