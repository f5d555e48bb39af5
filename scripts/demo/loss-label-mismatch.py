"""Binary classifier, labels are -1 / +1 (I ported this from an SVM script).
The loss keeps going down and is now hugely negative (-270 and falling), but
the accuracy is stuck below 0.3, worse than guessing. What is going on?

gradscope-expect: loss-label-mismatch
"""
import numpy as np
from tensorflow import keras
from tensorflow.keras import layers

keras.utils.set_random_seed(45)

rng = np.random.default_rng(0)
n = 1500
X = rng.normal(size=(n, 10)).astype("float32")
w = rng.normal(size=10)
y = np.where(X @ w + 0.3 * rng.normal(size=n) > 0, 1, -1).astype("float32")

model = keras.Sequential([
    layers.Input(shape=(10,)),
    layers.Dense(32, activation="relu"),
    layers.Dense(16, activation="relu"),
    layers.Dense(1, activation="sigmoid"),
])
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
history = model.fit(X, y, epochs=15, batch_size=32, validation_split=0.2, verbose=2)

print("final loss:", round(history.history["loss"][-1], 3))
print("final accuracy:", round(history.history["accuracy"][-1], 3))
print("val accuracy:", round(history.history["val_accuracy"][-1], 3))
