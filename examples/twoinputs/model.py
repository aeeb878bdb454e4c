"""The two-input, two-output example's Keras side: an image (32x32x3) and 4 float features; a
3-class softmax (categorical cross-entropy, accuracy) and a linear score (MSE, MAE), loss_weights
{label: 1.0, score: 0.5}."""
import numpy as np

EPOCHS, BATCH_SIZE = 3, 32


def build():
    import keras
    from keras import layers

    image = keras.Input((32, 32, 3), name="image")
    meta = keras.Input((4,), name="meta")
    h = layers.Conv2D(8, 3, strides=2, activation="relu")(image)
    h = layers.GlobalAveragePooling2D()(h)
    h = layers.Concatenate()([h, layers.Dense(8, activation="relu")(meta)])
    label = layers.Dense(3, activation="softmax", name="label")(h)
    score = layers.Dense(1, name="score")(h)
    model = keras.Model({"image": image, "meta": meta}, {"label": label, "score": score})
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss={"label": "categorical_crossentropy", "score": "mse"},
                  loss_weights={"label": 1.0, "score": 0.5},
                  metrics={"label": ["accuracy"], "score": ["mae"]}, jit_compile=False)
    return model


def data():
    rng = np.random.default_rng(13)

    def rows(n):
        meta = rng.normal(size=(n, 4)).astype("float32")
        k = np.argmax(meta[:, :3], axis=1)
        image = rng.uniform(size=(n, 32, 32, 3)).astype("float32")
        image[np.arange(n), :, :, k] += 0.5  # the label shows in the image's colour too
        return {"image": image, "meta": meta, "label": np.eye(3, dtype="float32")[k],
                "score": meta.sum(axis=1, keepdims=True)}
    return {"train": rows(192), "valid": rows(64)}


def callbacks(run_dir):
    import keras

    # A multi-output model's metric names are prefixed: Keras' auto mode cannot tell their
    # direction, so mode is given.
    return [keras.callbacks.ReduceLROnPlateau(monitor="val_label_accuracy", mode="max", factor=0.5, patience=1)]
