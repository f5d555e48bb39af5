"""Digits, 10 classes, one-hot labels, plain SGD. The loss sits at 0.09 and
barely changes, and accuracy is ~0.1 after 15 epochs.

gradscope-expect: mse-for-classification
gradscope-also: loss-flat, accuracy-at-baseline
"""
import numpy as np
from sklearn.datasets import load_digits
import keras
from keras import layers

keras.utils.set_random_seed(1)

digits = load_digits()
X = digits.data.astype("float32") / 16.0
Y = keras.utils.to_categorical(digits.target, 10)

model = keras.Sequential([
    keras.Input(shape=(64,)),
    layers.Dense(32, activation="relu"),
    layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="sgd", loss="mean_squared_error", metrics=["accuracy"])
history = model.fit(X, Y, epochs=15, batch_size=32, validation_split=0.1, verbose=2)
print("final loss:", round(history.history["loss"][-1], 4))
print("final accuracy:", round(history.history["accuracy"][-1], 4))
