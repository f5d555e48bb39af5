"""Digits with a deep sigmoid MLP (my course uses sigmoid everywhere). After three
epochs at lr=1e-3 I switch to lr=0.5 to speed it up; from then on the loss sits
at 2.3 and nothing changes.

gradscope-expect: healthy
gradscope-late: saturation-growing, gradient-vanishing-late, loss-diverging
"""
from sklearn.datasets import load_digits
from tensorflow import keras

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype("float32")

keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input(shape=(64,))]
                         + [keras.layers.Dense(64, activation="sigmoid") for _ in range(4)]
                         + [keras.layers.Dense(10, activation="softmax")])
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])


def speed_up(epoch, lr):
    return 1e-3 if epoch < 3 else 0.5


history = model.fit(X, y, epochs=12, batch_size=16, validation_split=0.2, verbose=2,
                    callbacks=[keras.callbacks.LearningRateScheduler(speed_up)])
print("losses:", [round(v, 3) for v in history.history["loss"]])
