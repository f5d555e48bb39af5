"""Breast cancer data straight from sklearn, small sigmoid MLP with SGD.
Accuracy is stuck at 0.59 (that's just the share of the majority class) and
the loss hardly moves.

gradscope-expect: unnormalized-input
gradscope-also: saturated-activation, accuracy-at-baseline
"""
from sklearn.datasets import load_breast_cancer
import keras

keras.utils.set_random_seed(0)
data = load_breast_cancer()
X, y = data.data, data.target

model = keras.Sequential([
    keras.Input(shape=(30,)),
    keras.layers.Dense(32, activation="sigmoid"),
    keras.layers.Dense(16, activation="sigmoid"),
    keras.layers.Dense(1, activation="sigmoid"),
])
model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy"])
history = model.fit(X, y, epochs=15, batch_size=32, validation_split=0.2, verbose=2)
print("final loss:", round(history.history["loss"][-1], 4))
print("final accuracy:", round(history.history["accuracy"][-1], 4))
