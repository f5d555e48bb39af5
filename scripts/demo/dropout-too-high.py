"""Digits MLP ported from my old TF1 code, where I used keep_prob=0.95 for
"light" dropout. Accuracy hovers around 0.10 and the loss stays above 2.2.

gradscope-expect: dropout-too-high
gradscope-also: cannot-overfit
"""
from sklearn.datasets import load_digits
from tensorflow import keras

keras.utils.set_random_seed(0)
digits = load_digits()
X = digits.data / 16.0
y = digits.target

keep_prob = 0.95
model = keras.Sequential([
    keras.Input((64,)),
    keras.layers.Dropout(keep_prob),
    keras.layers.Dense(128, activation="relu"),
    keras.layers.Dropout(keep_prob),
    keras.layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(X, y, epochs=10, batch_size=32, validation_split=0.2, verbose=2)
print("final accuracy:", round(history.history["accuracy"][-1], 4))
