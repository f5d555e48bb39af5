"""Transfer-style training: a feature extractor is first trained on digits 0-4,
then frozen, and a new head is trained on digits 5-9 on top of it (plus one
trainable adapter layer). The head learns well.

gradscope-expect: healthy
gradscope-also: frozen-layers
"""
import numpy as np
from sklearn.datasets import load_digits
from tensorflow import keras
from tensorflow.keras import layers

keras.utils.set_random_seed(11)
digits = load_digits()
X = (digits.images / 16.0).astype("float32")[..., np.newaxis]
y = digits.target
src, tgt = y < 5, y >= 5

base = keras.Sequential([
    keras.Input(shape=(8, 8, 1)),
    layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1"),
    layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2"),
    layers.MaxPooling2D(name="pool"),
    layers.Flatten(name="flatten"),
], name="feature_extractor")

pretrain = keras.Sequential([base, layers.Dense(5, activation="softmax")])
pretrain.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
pretrain.fit(X[src], y[src], epochs=3, batch_size=32, verbose=0)

base.trainable = False
inputs = keras.Input(shape=(8, 8, 1))
features = base(inputs, training=False)
h = layers.Dense(64, activation="relu", name="adapter")(features)
outputs = layers.Dense(5, activation="softmax", name="new_head")(h)
model = keras.Model(inputs, outputs)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(X[tgt], y[tgt] - 5, epochs=8, batch_size=32, validation_split=0.2, verbose=2)
print("first/last loss:", round(history.history["loss"][0], 4), round(history.history["loss"][-1], 4))
print("final accuracy:", round(history.history["accuracy"][-1], 4))
print("final val accuracy:", round(history.history["val_accuracy"][-1], 4))
