"""Predicting the number of support tickets per day (counts, 0-30) with a
Poisson loss since it's count data. The loss is nan from the first epoch.
Inputs and targets have no NaNs, I checked.

gradscope-expect: nonfinite-loss
"""
import numpy as np
from tensorflow import keras
from tensorflow.keras import layers

keras.utils.set_random_seed(49)

rng = np.random.default_rng(42)
n = 2000
X = rng.normal(size=(n, 6)).astype("float32")
rate = np.exp(1.2 + 0.6 * X[:, 0] - 0.4 * X[:, 1] + 0.3 * X[:, 2])
tickets = rng.poisson(rate).astype("float32")
print("any NaN in X / y:", np.isnan(X).any(), np.isnan(tickets).any())

model = keras.Sequential([
    layers.Input(shape=(6,)),
    layers.Dense(32, activation="relu"),
    layers.Dense(16, activation="relu"),
    layers.Dense(1),
])
model.compile(optimizer="adam", loss="poisson", metrics=["mae"])
history = model.fit(X, tickets, epochs=5, batch_size=32, validation_split=0.2, verbose=2)
print("final loss:", history.history["loss"][-1])
print("final mae:", history.history["mae"][-1])
