"""Predicting house value (California-style data, target scaled to 0-1).
Accuracy is 0.0000 every single epoch. The loss goes down a little and then
stops at ~0.6.

gradscope-expect: regression-target-classification
"""
import numpy as np
from sklearn.datasets import make_regression
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from tensorflow import keras

keras.utils.set_random_seed(54)

X, price = make_regression(n_samples=2000, n_features=8, n_informative=6,
                           noise=10.0, random_state=17)
X = StandardScaler().fit_transform(X)
y = MinMaxScaler().fit_transform(price.reshape(-1, 1)).ravel()

model = keras.Sequential([
    keras.layers.Input(shape=(8,)),
    keras.layers.Dense(64, activation="relu"),
    keras.layers.Dense(64, activation="relu"),
    keras.layers.Dense(1, activation="sigmoid"),
])
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
history = model.fit(X, y, epochs=10, batch_size=32, validation_split=0.2, verbose=2)
print("final loss:", round(history.history["loss"][-1], 4))
print("final accuracy:", round(history.history["accuracy"][-1], 4))
