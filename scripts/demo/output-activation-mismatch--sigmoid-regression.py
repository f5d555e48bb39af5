"""Predicting disease progression (diabetes data). MSE is stuck at ~29000 from
the first epoch and every prediction comes out as ~0.9
(targets are 25-346).

gradscope-expect: output-activation-mismatch
gradscope-also: collapsed-predictions, loss-flat
"""
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
from tensorflow import keras

keras.utils.set_random_seed(50)

X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=1)
X_train = (X_train - X_train.mean(0)) / X_train.std(0)
X_test = (X_test - X_train.mean(0)) / X_train.std(0)

model = keras.Sequential()
model.add(keras.layers.Input(shape=(10,)))
model.add(keras.layers.Dense(64, activation="relu"))
model.add(keras.layers.Dense(32, activation="relu"))
model.add(keras.layers.Dense(1, activation="sigmoid"))
model.compile(optimizer="adam", loss="mse", metrics=["mae"])

history = model.fit(X_train, y_train, epochs=20, batch_size=32,
                    validation_data=(X_test, y_test), verbose=2)
preds = model.predict(X_test[:5], verbose=0).ravel()
print("final mse:", round(history.history["loss"][-1], 1))
print("final mae:", round(history.history["mae"][-1], 2))
print("first predictions:", preds, "targets:", y_test[:5])
