"""Digits classifier. Training accuracy slowly climbs to ~0.36 but validation
accuracy stays at ~0.1 (chance) the whole time. More dropout did not help. I shuffle the
data myself before splitting so the classes are mixed.

gradscope-expect: labels-unpredictable
"""
import numpy as np
from sklearn.datasets import load_digits
from tensorflow import keras
from tensorflow.keras import layers

np.random.seed(0)
keras.utils.set_random_seed(0)

digits = load_digits()
X = digits.data.astype("float32") / 16.0
y = digits.target.copy()

np.random.shuffle(X)
np.random.shuffle(y)

split = int(0.8 * len(X))
X_train, X_val = X[:split], X[split:]
y_train, y_val = y[:split], y[split:]

model = keras.Sequential([
    keras.Input(shape=(64,)),
    layers.Dense(256, activation="relu"),
    layers.Dropout(0.3),
    layers.Dense(128, activation="relu"),
    layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(X_train, y_train, epochs=30, batch_size=32,
                    validation_data=(X_val, y_val), verbose=2)
print("final train accuracy:", round(history.history["accuracy"][-1], 4))
print("final val accuracy:", round(history.history["val_accuracy"][-1], 4))
