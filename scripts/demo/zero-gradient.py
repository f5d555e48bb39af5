"""Iris classifier. I initialise all weights to zero so that every run is
reproducible. Loss goes from 1.0986 to ~1.0986 and accuracy is stuck at 0.33.

gradscope-expect: zero-gradient
gradscope-also: loss-flat, collapsed-predictions, accuracy-at-baseline
"""
import numpy as np
from sklearn.datasets import load_iris
from sklearn.preprocessing import StandardScaler
from tensorflow import keras
from tensorflow.keras.layers import Dense, Input

keras.utils.set_random_seed(57)

X, y = load_iris(return_X_y=True)
X = StandardScaler().fit_transform(X)

model = keras.Sequential([
    Input(shape=(4,)),
    Dense(16, activation="relu", kernel_initializer="zeros", bias_initializer="zeros"),
    Dense(16, activation="relu", kernel_initializer="zeros", bias_initializer="zeros"),
    Dense(3, activation="softmax", kernel_initializer="zeros", bias_initializer="zeros"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(X, y, epochs=30, batch_size=16, shuffle=True, verbose=2)
print("first/last loss:", round(history.history["loss"][0], 4), round(history.history["loss"][-1], 4))
print("final accuracy:", round(history.history["accuracy"][-1], 4))
