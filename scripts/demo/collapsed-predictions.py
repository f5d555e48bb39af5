"""Small CNN on 8x8 digit images. Loss sits at 2.30 and accuracy at ~0.1 for
most of the training, and model.predict gives practically the same
probabilities (~0.1 each) for every image. I normalise the images to [0, 1]
like the Keras image-classification tutorial.

gradscope-expect: unnormalized-input
gradscope-also: collapsed-predictions, loss-flat, accuracy-at-baseline
"""
import numpy as np
import keras
from keras import layers
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

keras.utils.set_random_seed(0)

digits = load_digits()
images = np.round(digits.images * 255.0 / 16.0).astype("uint8")   # as loaded from PNG
X = (images / 255.0).astype("float32")[..., np.newaxis]
y = digits.target
X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=0)

model = keras.Sequential([
    keras.Input(shape=(8, 8, 1)),
    layers.Rescaling(1.0 / 255),
    layers.Conv2D(16, 3, padding="same", activation="relu"),
    layers.MaxPooling2D(),
    layers.Flatten(),
    layers.Dense(64, activation="relu"),
    layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(X_train, y_train, epochs=6, batch_size=32,
                    validation_data=(X_val, y_val), verbose=2)

probs = model.predict(X_val, verbose=0)
print("final loss:", round(history.history["loss"][-1], 4))
print("final accuracy:", round(history.history["accuracy"][-1], 4))
print("std of predicted probabilities across images:", float(probs.std(axis=0).mean()))
