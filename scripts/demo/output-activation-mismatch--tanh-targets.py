"""Predicting a score between 0 and 100 from 8 sensor features. Loss (MSE) is
stuck at ~2660 and all predictions are between 0.96 and 1.0.

gradscope-expect: output-activation-mismatch
gradscope-also: loss-flat, collapsed-predictions
"""
import numpy as np
from tensorflow import keras
from tensorflow.keras import layers

keras.utils.set_random_seed(51)

rng = np.random.default_rng(8)
X = rng.normal(size=(1500, 8)).astype("float32")
score = 50 + 15 * X[:, 0] + 10 * np.tanh(X[:, 1] * X[:, 2]) + 5 * rng.normal(size=1500)
score = np.clip(score, 0, 100).astype("float32")

inputs = keras.Input(shape=(8,))
h = layers.Dense(32, activation="tanh")(inputs)
h = layers.Dense(32, activation="tanh")(h)
outputs = layers.Dense(1, activation="tanh")(h)
model = keras.Model(inputs, outputs)
model.compile(optimizer="adam", loss="mean_squared_error", metrics=["mae"])

history = model.fit(X, score, epochs=15, batch_size=32, validation_split=0.2, verbose=2)
print("final mse:", round(history.history["loss"][-1], 1))
print("prediction range:", model.predict(X, verbose=0).min(), model.predict(X, verbose=0).max())
