"""Breast cancer MLP with L2 regularisation to avoid overfitting. The loss
starts at ~120 and falls to ~0.9, but accuracy is stuck at 0.64 (the share of
benign cases) and every prediction is the same (~0.564).

gradscope-expect: regularization-dominates
gradscope-also: collapsed-predictions, accuracy-at-baseline
"""
import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from tensorflow import keras
from tensorflow.keras import layers, regularizers

keras.utils.set_random_seed(0)
X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

reg = regularizers.l2(1.0)
model = keras.Sequential([
    keras.Input(shape=(30,)),
    layers.Dense(128, activation="relu", kernel_regularizer=reg),
    layers.Dense(64, activation="relu", kernel_regularizer=reg),
    layers.Dense(1, activation="sigmoid", kernel_regularizer=reg),
])
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
history = model.fit(X_train, y_train, epochs=20, batch_size=32,
                    validation_data=(X_test, y_test), verbose=2)
p = model.predict(X_test, verbose=0).ravel()
print("first/last loss:", round(history.history["loss"][0], 3), round(history.history["loss"][-1], 3))
print("final accuracy:", round(history.history["accuracy"][-1], 4))
print("prediction spread: %.4f - %.4f" % (p.min(), p.max()))
