"""Digits classifier whose middle layer has 2 units, so that I can plot every
image as a point. The loss drops fast for a few epochs, then sits at ~1.2 for
the rest of the 30 epochs; accuracy stays around 0.55.

gradscope-expect: healthy
gradscope-late: saturation-growing
"""
from sklearn.datasets import load_digits
from tensorflow import keras

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype("float32")

keras.utils.set_random_seed(0)
model = keras.Sequential([
    keras.Input(shape=(64,)),
    keras.layers.Dense(64, activation="relu"),
    keras.layers.Dense(2, activation="tanh", name="plot_me"),
    keras.layers.Dense(10, activation="softmax"),
])
model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
history = model.fit(X, y, epochs=30, batch_size=32, validation_split=0.2, verbose=2)
print("losses:", [round(v, 3) for v in history.history["loss"]])
