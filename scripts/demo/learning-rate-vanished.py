"""Digits MLP with a decaying learning rate, 0.95 per epoch as I read the docs.
The loss falls in the first epoch, then hardly moves again: 20 epochs and the
accuracy never gets past ~0.5. Without the schedule it reaches 0.97.

gradscope-expect: healthy
gradscope-late: learning-rate-vanished, loss-plateau
"""
from sklearn.datasets import load_digits
from tensorflow import keras

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype("float32")

keras.utils.set_random_seed(0)
model = keras.Sequential([
    keras.Input(shape=(64,)),
    keras.layers.Dense(64, activation="relu"),
    keras.layers.Dense(10, activation="softmax"),
])
schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, decay_steps=1, decay_rate=0.95)
model.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
history = model.fit(X, y, epochs=20, batch_size=32, validation_split=0.2, verbose=2)
print("losses:", [round(v, 4) for v in history.history["loss"]])
