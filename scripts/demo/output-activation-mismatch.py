"""Digit recognizer, 10 classes. The first two epochs look OK-ish, then the loss
turns into nan and accuracy drops to ~0.10 and stays there.

gradscope-expect: output-activation-mismatch
gradscope-also: nonfinite-loss, accuracy-at-baseline
"""
from sklearn.datasets import load_digits
from tensorflow import keras
from tensorflow.keras.layers import Dense, Dropout

keras.utils.set_random_seed(52)

digits = load_digits()
X = digits.data / 16.0
y = keras.utils.to_categorical(digits.target)

model = keras.Sequential([
    keras.Input(shape=(64,)),
    Dense(128, activation="relu"),
    Dropout(0.25),
    Dense(64, activation="relu"),
    Dense(10, activation="relu"),
])
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
history = model.fit(X, y, epochs=10, batch_size=32, validation_split=0.2, verbose=2)
print("final loss:", history.history["loss"][-1])
print("final accuracy:", round(history.history["accuracy"][-1], 4))
