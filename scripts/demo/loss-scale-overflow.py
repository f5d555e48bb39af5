"""Regression on the diabetes data set (targets in the hundreds) in mixed
precision. Trains fine in the end (MAE ~45 after 30 epochs), but the first
epoch's loss barely moves and I read that float16 can overflow. Is something
exploding?

gradscope-expect: loss-scale-overflow
"""
import keras
from keras import layers
from sklearn.datasets import load_diabetes
from sklearn.preprocessing import StandardScaler

keras.mixed_precision.set_global_policy("mixed_float16")
keras.utils.set_random_seed(0)
data = load_diabetes()
X = StandardScaler().fit_transform(data.data).astype("float32")
y = (data.target / 100.0).astype("float32")   # targets in units of 100

model = keras.Sequential([
    keras.Input(shape=(10,)),
    layers.Dense(64, activation="relu"),
    layers.Dense(64, activation="relu"),
    layers.Dense(1, dtype="float32"),
])
model.compile(optimizer=keras.optimizers.Adam(1e-3),
              loss=keras.losses.MeanSquaredError(reduction="sum"), metrics=["mae"])
history = model.fit(X, y, epochs=30, batch_size=32, verbose=2)
print("first/last loss:", round(history.history["loss"][0], 4), round(history.history["loss"][-1], 4))
print("final mae x100:", round(100 * history.history["mae"][-1], 1))
