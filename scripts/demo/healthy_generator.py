"""Python generator feeding shuffled mini-batches (stand-in for data read from
disk in chunks). Learns fine.

gradscope-expect: healthy
"""
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from tensorflow import keras


def batches(X, y, batch_size, seed=0):
    rng = np.random.default_rng(seed)
    n = len(X)
    while True:
        order = rng.permutation(n)
        for start in range(0, n - batch_size + 1, batch_size):
            idx = order[start:start + batch_size]
            yield X[idx], y[idx]


digits = load_digits()
X = digits.data.astype("float32") / 16.0
y = digits.target
X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.2, random_state=8)

keras.utils.set_random_seed(8)
model = keras.Sequential([
    keras.Input(shape=(64,)),
    keras.layers.Dense(128, activation="relu"),
    keras.layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

BATCH = 32
history = model.fit(batches(X_tr, y_tr, BATCH), steps_per_epoch=len(X_tr) // BATCH,
                    validation_data=(X_va, y_va), epochs=10, verbose=2)
print("first/last loss:", round(history.history["loss"][0], 4), round(history.history["loss"][-1], 4))
print("final accuracy:", round(history.history["accuracy"][-1], 4))
print("final val accuracy:", round(history.history["val_accuracy"][-1], 4))
