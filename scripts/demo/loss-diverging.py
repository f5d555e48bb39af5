"""Digits MLP. I ramp the learning rate up after two calm epochs to train faster.
The loss goes down to ~0.1, then climbs back to 2.3 and the accuracy falls to 0.1.

gradscope-expect: healthy
gradscope-late: dead-units-growing, loss-diverging
"""
from sklearn.datasets import load_digits
from tensorflow import keras

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype("float32")

keras.utils.set_random_seed(0)
model = keras.Sequential([
    keras.Input(shape=(64,)),
    keras.layers.Dense(128, activation="relu"),
    keras.layers.Dense(128, activation="relu"),
    keras.layers.Dense(10, activation="softmax"),
])
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])


def faster(epoch, lr):
    return lr if epoch < 2 else lr * 3


history = model.fit(X, y, epochs=12, batch_size=16, validation_split=0.2, verbose=2,
                    callbacks=[keras.callbacks.LearningRateScheduler(faster)])
print("losses:", [round(v, 3) for v in history.history["loss"]])
