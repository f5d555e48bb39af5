"""House prices regression (synthetic here). Trains fine for a few epochs, then
the loss turns nan at epoch 6 or so and stays nan. I only added a learning-rate
schedule to speed it up after the first two epochs.

gradscope-expect: healthy
gradscope-late: nonfinite-during-training
"""
import math

import numpy as np
from tensorflow import keras

rng = np.random.default_rng(0)
X = rng.normal(size=(2000, 12)).astype("float32")
w = rng.normal(size=(12, 1)).astype("float32")
y = (X @ w + 0.3 * np.sin(3 * X[:, :1]) + 0.1 * rng.normal(size=(2000, 1))).astype("float32")

keras.utils.set_random_seed(0)
model = keras.Sequential([
    keras.Input(shape=(12,)),
    keras.layers.Dense(64, activation="relu"),
    keras.layers.Dense(64, activation="relu"),
    keras.layers.Dense(1),
])
model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="mse", metrics=["mae"])


def schedule(epoch, lr):
    # warm for two epochs, then speed up
    if epoch < 2:
        return lr
    return lr * math.exp(1.0)


history = model.fit(X, y, epochs=10, batch_size=32, validation_split=0.2, verbose=2,
                    callbacks=[keras.callbacks.LearningRateScheduler(schedule)])
print("losses:", [round(v, 4) for v in history.history["loss"]])
