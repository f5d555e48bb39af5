"""Iris with a small dense network. Accuracy never gets past ~0.65 and the loss goes
negative after a few epochs?! I thought cross-entropy can't be negative.

gradscope-expect: loss-output-mismatch
gradscope-also: loss-label-mismatch
"""
import numpy as np
import tensorflow as tf
from sklearn.datasets import load_iris
from sklearn.preprocessing import StandardScaler

tf.random.set_seed(1)
np.random.seed(1)

iris = load_iris()
X = StandardScaler().fit_transform(iris.data)
y = iris.target

idx = np.random.permutation(len(X))
X, y = X[idx], y[idx]

model = tf.keras.models.Sequential([
    tf.keras.layers.Dense(16, activation="relu", input_shape=(4,)),
    tf.keras.layers.Dense(8, activation="relu"),
    tf.keras.layers.Dense(1, activation="sigmoid"),
])
model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
history = model.fit(X, y, epochs=40, batch_size=16, validation_split=0.2, verbose=2)

print("final loss:", round(history.history["loss"][-1], 4))
print("final accuracy:", round(history.history["accuracy"][-1], 4))
print("val accuracy:", round(history.history["val_accuracy"][-1], 4))
