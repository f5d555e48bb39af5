"""tanh MLP on the digits data (standardized). Learning is painfully slow:
after 10 epochs accuracy is only ~0.45 and the loss ~1.6. I initialise the
weights from N(0, 2) because I read that bigger initial weights break symmetry
better.

gradscope-expect: saturated-activation
"""
import numpy as np
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler
from tensorflow import keras

keras.utils.set_random_seed(0)

X, y = load_digits(return_X_y=True)
X = StandardScaler().fit_transform(X).astype("float32")

init = keras.initializers.RandomNormal(stddev=2.0)
model = keras.Sequential([
    keras.Input(shape=(64,)),
    keras.layers.Dense(32, activation="tanh", kernel_initializer=init),
    keras.layers.Dense(32, activation="tanh", kernel_initializer=init),
    keras.layers.Dense(32, activation="tanh", kernel_initializer=init),
    keras.layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(X, y, epochs=10, batch_size=32, verbose=2)
print("final loss:", round(history.history["loss"][-1], 4))
print("final accuracy:", round(history.history["accuracy"][-1], 4))
