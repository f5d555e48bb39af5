"""Digits CNN. With Adam(learning_rate=0.3) the loss goes to ~9 in the first
epoch and then sits at 2.30 forever; accuracy ~0.10. I picked 0.3 because
a blog said "start with a large learning rate".

gradscope-expect: lr-too-high
gradscope-also: collapsed-predictions, loss-flat, accuracy-at-baseline
"""
import numpy as np
import keras
from keras import layers
from sklearn.datasets import load_digits

keras.utils.set_random_seed(0)
digits = load_digits()
images = (digits.images / 16.0)[..., np.newaxis].astype("float32")
labels = digits.target

model = keras.Sequential([
    keras.Input(shape=(8, 8, 1)),
    layers.Conv2D(16, 3, padding="same", activation="relu"),
    layers.Conv2D(32, 3, padding="same", activation="relu"),
    layers.MaxPooling2D(),
    layers.Flatten(),
    layers.Dense(64, activation="relu"),
    layers.Dense(10, activation="softmax"),
])
model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.3),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(images, labels, epochs=6, batch_size=32, validation_split=0.2, verbose=2)
print("loss per epoch:", [round(v, 3) for v in history.history["loss"]])
print("final accuracy:", round(history.history["accuracy"][-1], 4))
