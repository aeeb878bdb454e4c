"""A team's own Keras model, as the README's "Bringing your own Keras model" section takes it
through the CLI: two inputs (int32 token ids and 3 float features), two outputs (a 3-class
softmax with sparse categorical cross-entropy and accuracy, a sigmoid flag with binary
cross-entropy and AUC), loss_weights {topic: 1.0, flag: 0.5}. The callbacks are `emotions
train`'s defaults, so that Keras' fit is the run the CLI's must equal (internal/example's
keras_example.py drives this file)."""
import numpy as np

EPOCHS, BATCH_SIZE = 3, 16


def build():
    import keras
    from keras import layers

    tokens = keras.Input((12,), dtype="int32", name="tokens")
    meta = keras.Input((3,), name="meta")
    h = layers.GlobalAveragePooling1D()(layers.Embedding(40, 8)(tokens))
    h = layers.Concatenate()([h, layers.Dense(8, activation="relu")(meta)])
    topic = layers.Dense(3, activation="softmax", name="topic")(h)
    flag = layers.Dense(1, activation="sigmoid", name="flag")(h)
    model = keras.Model([tokens, meta], [topic, flag])
    model.compile(optimizer=keras.optimizers.Adam(0.02),
                  loss={"topic": "sparse_categorical_crossentropy", "flag": "binary_crossentropy"},
                  loss_weights={"topic": 1.0, "flag": 0.5},
                  metrics={"topic": ["accuracy"], "flag": [keras.metrics.AUC(name="auc")]}, jit_compile=False)
    return model


def data():
    rng = np.random.default_rng(21)

    def rows(n):
        tokens = rng.integers(0, 40, size=(n, 12))  # int64, as NumPy makes them: cast as Keras casts
        meta = rng.normal(size=(n, 3))  # float64 likewise
        return {"tokens": tokens, "meta": meta, "topic": tokens[:, 0] % 3,
                "flag": (meta[:, :1] > 0).astype("float32")}
    return {"train": rows(96), "valid": rows(40)}


def callbacks(run_dir):
    import os

    import keras

    return [keras.callbacks.EarlyStopping(monitor="val_loss", patience=10),
            keras.callbacks.ModelCheckpoint(os.path.join(run_dir, "best.keras"), monitor="val_loss", save_best_only=True),
            keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.2, patience=5, min_lr=1e-4)]
