"""The tabular example's Keras side: 8 float features, Dense layers, MSE, metric MAE."""
import numpy as np

EPOCHS, BATCH_SIZE = 3, 32


def build():
    import keras
    from keras import layers

    x = keras.Input((8,), name="features")
    h = layers.Dense(32, activation="relu")(x)
    h = layers.Dense(16, activation="relu")(h)
    model = keras.Model(x, layers.Dense(1, name="price")(h))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", metrics=["mae"], jit_compile=False)
    return model


def data():
    rng = np.random.default_rng(11)
    w = rng.normal(size=(8, 1))

    def rows(n):
        x = rng.normal(size=(n, 8)).astype("float32")
        return {"features": x, "price": (x @ w + 0.1 * rng.normal(size=(n, 1))).astype("float32")}
    return {"train": rows(256), "valid": rows(64)}


def callbacks(run_dir):
    import keras

    return [keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1, min_lr=1e-4)]
