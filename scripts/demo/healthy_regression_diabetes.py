"""Diabetes progression regression with standardized features and targets.
MSE drops well below the variance of the target (1.0).

gradscope-expect: healthy
"""
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from tensorflow import keras
from tensorflow.keras import layers

keras.utils.set_random_seed(3)
X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=3)
x_scaler = StandardScaler().fit(X_train)
X_train, X_test = x_scaler.transform(X_train), x_scaler.transform(X_test)
y_mean, y_std = y_train.mean(), y_train.std()
y_train_s, y_test_s = (y_train - y_mean) / y_std, (y_test - y_mean) / y_std

model = keras.Sequential([
    layers.Input(shape=(10,)),
    layers.Dense(64, activation="relu"),
    layers.Dense(32, activation="relu"),
    layers.Dense(1),
])
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", metrics=["mae"])
history = model.fit(X_train, y_train_s, epochs=40, batch_size=32,
                    validation_data=(X_test, y_test_s), verbose=2)
pred = model.predict(X_test, verbose=0).ravel() * y_std + y_mean
print("first/last loss:", round(history.history["loss"][0], 4), round(history.history["loss"][-1], 4))
print("final val mse (standardized):", round(history.history["val_loss"][-1], 4))
print("test MAE in original units:", round(float(np.abs(pred - y_test).mean()), 1))
