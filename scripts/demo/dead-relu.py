"""Digits classifier. I initialise the biases to -1 to get sparse activations
(fewer active units, like in the sparse-coding paper I read). Loss is exactly
2.3026 from epoch 2 on and accuracy is 0.10.

gradscope-expect: dead-relu
gradscope-also: zero-gradient, loss-flat, collapsed-predictions, accuracy-at-baseline
"""
from sklearn.datasets import load_digits
import tensorflow as tf
from tensorflow.keras import Sequential, initializers
from tensorflow.keras.layers import Dense, Input

tf.keras.utils.set_random_seed(0)
digits = load_digits()
X = digits.data / 16.0
y = digits.target

sparse_bias = initializers.Constant(-1.0)
model = Sequential([
    Input(shape=(64,)),
    Dense(128, activation="relu", bias_initializer=sparse_bias),
    Dense(64, activation="relu", bias_initializer=sparse_bias),
    Dense(32, activation="relu", bias_initializer=sparse_bias),
    Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(X, y, epochs=10, batch_size=32, validation_split=0.2, verbose=2)
print("final loss:", round(history.history["loss"][-1], 4))
print("final accuracy:", round(history.history["accuracy"][-1], 4))
