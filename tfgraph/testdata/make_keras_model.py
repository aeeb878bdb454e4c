"""Save a small compiled Keras 3 classifier (a team's own model) to argv[1] (.keras):
a 48x48 input, 3 classes, SGD with momentum and categorical cross-entropy."""
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras
from keras import layers

keras.utils.set_random_seed(3)
inputs = keras.Input((48, 48, 3))
x = layers.Conv2D(8, 3, activation="relu")(inputs)
x = layers.MaxPooling2D()(x)
x = layers.Conv2D(8, 3, activation="relu")(x)
x = layers.GlobalAveragePooling2D()(x)
outputs = layers.Dense(3, activation="softmax")(x)
model = keras.Model(inputs, outputs)
model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05, momentum=0.9), loss="categorical_crossentropy")
model.save(sys.argv[1])
