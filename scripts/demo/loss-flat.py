"""Digits MLP with Adam. The loss barely moves (2.347 -> 2.307 in 8 epochs) and
accuracy stays at ~0.09. I set Adam's epsilon to 1.0 as the TensorFlow docs
suggest ("a current good choice is 1.0 or 0.1"), the rest is textbook.

gradscope-expect: lr-too-low
gradscope-also: loss-flat, cannot-overfit, accuracy-at-baseline
"""
from sklearn.datasets import load_digits
from tensorflow import keras
from tensorflow.keras import layers

keras.utils.set_random_seed(0)
X, y = load_digits(return_X_y=True)
X = X / 16.0

model = keras.Sequential([
    keras.Input(shape=(64,)),
    layers.Dense(128, activation="relu"),
    layers.Dense(64, activation="relu"),
    layers.Dense(10, activation="softmax"),
])
model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3, epsilon=1.0),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(X, y, epochs=8, batch_size=32, validation_split=0.2, verbose=2)
print("loss per epoch:", [round(v, 4) for v in history.history["loss"]])
print("final accuracy:", round(history.history["accuracy"][-1], 4))
print("final val accuracy:", round(history.history["val_accuracy"][-1], 4))
