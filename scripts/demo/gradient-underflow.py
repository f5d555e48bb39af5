"""Autoencoder for the 8x8 digit images in mixed precision (float16 compute).
The recipe I follow weights the reconstruction loss by 1e-4, and I turned
the automatic loss scaling off because I read it slows training down. The
logged loss stays at ~1.8e-05 for all 10 epochs; the same script without the
mixed precision line gets down to ~7.8e-06.

gradscope-expect: gradient-underflow
"""
import keras
from keras import layers
from sklearn.datasets import load_digits

keras.mixed_precision.set_global_policy("mixed_float16")
keras.utils.set_random_seed(0)
X = (load_digits().data / 16.0).astype("float32")

model = keras.Sequential([
    keras.Input(shape=(64,)),
    layers.Dense(32, activation="relu"),
    layers.Dense(16, activation="relu"),
    layers.Dense(32, activation="relu"),
    layers.Dense(64, activation="sigmoid"),
])
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", loss_weights=1e-4,
              auto_scale_loss=False)
history = model.fit(X, X, epochs=10, batch_size=64, verbose=2)
print("first/last loss:", history.history["loss"][0], history.history["loss"][-1])
