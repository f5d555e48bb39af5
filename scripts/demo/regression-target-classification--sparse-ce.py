"""Wine quality-like score (continuous, 3.0 - 9.0). I set it up as a 10-way
classifier over the score. Accuracy is 0.0000 in every epoch, even though the
predicted classes (5, 6, 7) look plausible and the loss goes down.

gradscope-expect: regression-target-classification
"""
import numpy as np
import tensorflow as tf
from sklearn.datasets import load_wine

tf.keras.utils.set_random_seed(53)

wine = load_wine()
X = wine.data
X = (X - X.mean(axis=0)) / X.std(axis=0)
rng = np.random.default_rng(0)
quality = 6.0 + 0.8 * X[:, 0] - 0.5 * X[:, 6] + 0.6 * rng.normal(size=len(X))
quality = np.clip(quality, 3.0, 9.0)

model = tf.keras.Sequential([
    tf.keras.Input(shape=(X.shape[1],)),
    tf.keras.layers.Dense(32, activation="relu"),
    tf.keras.layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
history = model.fit(X, quality, epochs=30, batch_size=16, verbose=2)
pred = model.predict(X, verbose=0).argmax(1)
print("final accuracy:", round(history.history["accuracy"][-1], 4))
print("predicted classes:", np.bincount(pred, minlength=10))
