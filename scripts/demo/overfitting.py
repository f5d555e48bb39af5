"""Handwritten digits labelled by volunteers: 300 images for training (a few
labels are surely wrong), and 500 checked images for validation. Validation
accuracy reaches ~0.88 after ten epochs, then slides back to ~0.77 while the
training accuracy climbs to 0.99 and the training loss keeps falling. Why does
training longer make it worse?

gradscope-expect: healthy
gradscope-late: overfitting
"""
import numpy as np
from sklearn.datasets import load_digits
from tensorflow import keras

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype("float32")
rng = np.random.default_rng(0)
order = rng.permutation(len(X))
train, val = order[:300], order[300:800]

# the volunteers' labels: about one in three is a slip of the pen
y_train = y[train].copy()
slips = rng.random(len(train)) < 0.3
y_train[slips] = rng.integers(0, 10, slips.sum())

keras.utils.set_random_seed(0)
model = keras.Sequential([
    keras.Input(shape=(64,)),
    keras.layers.Dense(256, activation="relu"),
    keras.layers.Dense(256, activation="relu"),
    keras.layers.Dense(10, activation="softmax"),
])
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
history = model.fit(X[train], y_train, epochs=40, batch_size=16,
                    validation_data=(X[val], y[val]), verbose=2)
h = history.history
print("val_loss every 5 epochs:", [round(v, 3) for v in h["val_loss"][::5]])
print("val_accuracy every 5 epochs:", [round(v, 3) for v in h["val_accuracy"][::5]])
