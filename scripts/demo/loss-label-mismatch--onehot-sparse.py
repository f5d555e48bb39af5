"""Digits classifier. I one-hot encode the labels like every tutorial says, but
fit() dies right away with "Argument `output` must have rank (ndim)
`target.ndim - 1`". The shapes look right to me: (None, 10) and (None, 10).

gradscope-expect: loss-label-mismatch
"""
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from tensorflow import keras
from tensorflow.keras.utils import to_categorical

keras.utils.set_random_seed(44)

digits = load_digits()
X = digits.data.astype("float32") / 16.0
y = to_categorical(digits.target, num_classes=10)
X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=7)

model = keras.Sequential([
    keras.layers.Input(shape=(64,)),
    keras.layers.Dense(128, activation="relu"),
    keras.layers.Dense(64, activation="relu"),
    keras.layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="adam",
              loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
print(X_train.shape, y_train.shape)
history = model.fit(X_train, y_train, epochs=10, batch_size=32,
                    validation_data=(X_val, y_val), verbose=2)
print("final accuracy:", history.history["accuracy"][-1])
