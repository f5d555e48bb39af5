"""House price regression (prices 100k - 900k). Loss is ~1.9e11 and barely moves
over 10 epochs (1.92e11 -> 1.84e11); the predictions are a few thousand
(5k-15k) instead of hundreds of thousands.

gradscope-expect: unscaled-targets
gradscope-also: loss-flat
"""
import numpy as np
from tensorflow import keras
from tensorflow.keras import layers

keras.utils.set_random_seed(56)

rng = np.random.default_rng(2024)
n = 3000
sqft = rng.uniform(500, 4000, n)
rooms = rng.integers(1, 7, n)
age = rng.uniform(0, 80, n)
dist = rng.uniform(0.5, 40, n)
price = 50_000 + 180 * sqft + 15_000 * rooms - 900 * age - 4_000 * dist
price = price + rng.normal(0, 20_000, n)

X = np.column_stack([sqft, rooms, age, dist]).astype("float32")
X = (X - X.mean(0)) / X.std(0)
y = price.astype("float32")

model = keras.Sequential([
    layers.Input(shape=(4,)),
    layers.Dense(64, activation="relu"),
    layers.Dense(64, activation="relu"),
    layers.Dense(1),
])
model.compile(optimizer="adam", loss="mse", metrics=["mae"])
history = model.fit(X, y, epochs=10, batch_size=32, validation_split=0.2, verbose=2)
print("first/last loss: %.3g / %.3g" % (history.history["loss"][0], history.history["loss"][-1]))
print("final mae:", round(history.history["mae"][-1]))
print("predictions:", model.predict(X[:3], verbose=0).ravel(), "true:", y[:3])
