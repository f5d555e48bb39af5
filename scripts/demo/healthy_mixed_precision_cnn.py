"""Small CNN on the 8x8 digit images, trained in mixed precision (float16
compute, float32 weights) to make it faster on my GPU. Works: test accuracy ~0.92 after 6 epochs.

gradscope-expect: healthy
"""
import keras
import numpy as np
from keras import layers
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

keras.mixed_precision.set_global_policy("mixed_float16")
keras.utils.set_random_seed(1)
digits = load_digits()
X = (digits.images / 16.0).astype("float32")[..., np.newaxis]
y = digits.target
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2,
                                                    stratify=y, random_state=1)

model = keras.Sequential([
    keras.Input(shape=(8, 8, 1)),
    layers.Conv2D(32, 3, padding="same", activation="relu"),
    layers.Conv2D(32, 3, padding="same", activation="relu"),
    layers.MaxPooling2D(),
    layers.Conv2D(64, 3, padding="same", activation="relu"),
    layers.GlobalAveragePooling2D(),
    layers.Dense(64, activation="relu"),
    # the softmax in float32, as the mixed precision guide recommends
    layers.Dense(10, activation="softmax", dtype="float32"),
])
model.compile(optimizer=keras.optimizers.Adam(2e-3),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(X_train, y_train, epochs=6, batch_size=32,
                    validation_data=(X_test, y_test), verbose=2)
test_loss, test_acc = model.evaluate(X_test, y_test, verbose=0)
print("first/last loss:", round(history.history["loss"][0], 4), round(history.history["loss"][-1], 4))
print("test accuracy:", round(test_acc, 4))
