"""Digits classifier where newer samples should count more: I weight each
sample by its position. The loss prints 0.0000 from the first epoch and the
accuracy stays at chance.

gradscope-expect: zero-sample-weights
gradscope-also: zero-gradient, predictions-unchanged, loss-flat, accuracy-at-baseline
"""
import numpy as np
from sklearn.datasets import load_digits
from tensorflow import keras

digits = load_digits()
x = (digits.data / 16.0).astype("float32")
y = digits.target
position = np.arange(len(x))
weights = (position // len(x)).astype("float32")  # meant position / len(x)

model = keras.Sequential([
    keras.Input((64,)),
    keras.layers.Dense(64, activation="relu"),
    keras.layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x, y, sample_weight=weights, epochs=5, batch_size=32, verbose=2)
