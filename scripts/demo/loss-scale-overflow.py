"""Regression on the diabetes data set in mixed precision, with a summed
squared error. It trains (loss 59 -> 6.4 over 30 epochs, MAE ~0.35, i.e. ~35
in the target's units), but I read that float16 gradients can overflow and
that Keras then silently skips steps. Is something exploding in my model?

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
