"""8x8 grayscale digit images (0-255). Loss is stuck at 2.30 and accuracy at
~0.10 from the first epoch. The same network works on MNIST in the tutorial...

gradscope-expect: unnormalized-input
gradscope-also: loss-flat, accuracy-at-baseline, collapsed-predictions
"""
import numpy as np
from sklearn.datasets import load_digits
from tensorflow import keras
from tensorflow.keras import layers

keras.utils.set_random_seed(0)

digits = load_digits()
images = np.round(digits.images * 255.0 / 16.0).astype("uint8")   # like the PNGs on disk
labels = digits.target

model = keras.Sequential([
    keras.Input(shape=(8, 8)),
    layers.Flatten(),
    layers.Dense(128, activation="relu"),
    layers.Dense(64, activation="relu"),
    layers.Dense(10, activation="softmax"),
])
model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(images.astype("float32"), labels, epochs=10, batch_size=32,
                    validation_split=0.2, verbose=2)
print("final loss:", round(history.history["loss"][-1], 4))
print("final accuracy:", round(history.history["accuracy"][-1], 4))
