"""Digits MLP, my baseline before trying fancier models. Seems to work fine
(accuracy ~0.97), posting it for comparison.

gradscope-expect: healthy
"""
from sklearn.datasets import load_digits
from tensorflow import keras

keras.utils.set_random_seed(0)
digits = load_digits()
X = digits.data.astype("float32") / 16.0
y = digits.target

model = keras.Sequential([
    keras.Input(shape=(64,)),
    keras.layers.Dense(128, activation="relu"),
    keras.layers.Dropout(0.2),
    keras.layers.Dense(64, activation="relu"),
    keras.layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(X, y, epochs=15, batch_size=32, validation_split=0.2, verbose=2)
print("first/last loss:", round(history.history["loss"][0], 4), round(history.history["loss"][-1], 4))
print("final accuracy:", round(history.history["accuracy"][-1], 4))
print("final val accuracy:", round(history.history["val_accuracy"][-1], 4))
