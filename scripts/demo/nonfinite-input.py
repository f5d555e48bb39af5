"""Tabular regression on sensor logs. The loss sits at 1.000 (the variance of my
standardized target) from the first epoch on, and the model predicts the exact
same number for every row. I already checked the learning rate.

gradscope-expect: nonfinite-input
gradscope-also: nonfinite-loss, collapsed-predictions, loss-flat
"""
import numpy as np
from sklearn.preprocessing import StandardScaler
from tensorflow import keras

keras.utils.set_random_seed(48)

rng = np.random.default_rng(31)
n = 2000
temperature = rng.normal(20, 5, n)
humidity = rng.uniform(20, 90, n)
pressure = rng.normal(1013, 8, n)
energy = 3.0 * temperature - 0.5 * humidity + 0.1 * (pressure - 1013) + rng.normal(0, 2, n)
humidity[rng.random(n) < 0.02] = np.nan
log = np.column_stack([temperature, humidity, pressure, energy])

X = StandardScaler().fit_transform(log[:, :3])
y = (log[:, 3] - log[:, 3].mean()) / log[:, 3].std()

model = keras.Sequential([
    keras.layers.Input(shape=(3,)),
    keras.layers.Dense(32, activation="relu"),
    keras.layers.Dense(1),
])
model.compile(optimizer="adam", loss="mse")
history = model.fit(X, y, epochs=5, batch_size=32, verbose=2)
print("final loss:", history.history["loss"][-1])
print("sample predictions:", model.predict(X[:3], verbose=0).ravel())
