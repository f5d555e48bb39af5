"""Fine-tuning my own pretrained regression model on new data: I load the
architecture, set it up for fine-tuning, and train. The loss is the same
number every epoch, val_loss too. Nothing changes.

gradscope-expect: frozen-model
gradscope-also: loss-flat, predictions-unchanged
"""
import numpy as np
import tensorflow as tf


def build_model():
    inputs = tf.keras.Input(shape=(8,))
    x = tf.keras.layers.Dense(64, activation="relu")(inputs)
    x = tf.keras.layers.Dense(64, activation="relu")(x)
    outputs = tf.keras.layers.Dense(1)(x)
    return tf.keras.Model(inputs, outputs)


rng = np.random.default_rng(21)
X = rng.normal(size=(2000, 8)).astype("float32")
y = (X[:, 0] * X[:, 1] + np.sin(X[:, 2]) + 0.1 * rng.normal(size=2000)).astype("float32")

tf.keras.utils.set_random_seed(21)
model = build_model()
model.trainable = False  # keep BatchNorm-style statistics fixed while fine-tuning
model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss="mse", metrics=["mae"])
history = model.fit(X, y, epochs=8, batch_size=32, validation_split=0.2, verbose=2)
print("loss per epoch:", [round(v, 4) for v in history.history["loss"]])
