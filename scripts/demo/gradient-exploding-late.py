"""Demand forecast, regression. Later epochs should count more (the recent data
matters most), so a callback raises the weight of the loss each epoch after
the third. The loss values get huge after that and the predictions are no
better than before.

gradscope-expect: healthy
gradscope-late: gradient-exploding-late, loss-diverging
"""
import numpy as np
from tensorflow import keras

rng = np.random.default_rng(0)
X = rng.normal(size=(3000, 8)).astype("float32")
y = (X[:, :4].sum(axis=1, keepdims=True) / 2 + 0.3 * rng.normal(size=(3000, 1))).astype("float32")

weight = keras.Variable(1.0, trainable=False)


def weighted_mse(y_true, y_pred):
    return weight * keras.ops.mean(keras.ops.square(y_true - y_pred), axis=-1)


class RecentCountsMore(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch >= 2:
            weight.assign(weight * 10.0)


keras.utils.set_random_seed(0)
model = keras.Sequential([
    keras.Input(shape=(8,)),
    keras.layers.Dense(32, activation="relu"),
    keras.layers.Dense(32, activation="relu"),
    keras.layers.Dense(1),
])
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=weighted_mse, metrics=["mae"])
history = model.fit(X, y, epochs=8, batch_size=32, verbose=2, callbacks=[RecentCountsMore()])
print("mae:", [round(v, 3) for v in history.history["mae"]])
