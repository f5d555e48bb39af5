"""I wrote my own weighted binary cross-entropy because positives matter more.
The loss is nan from the first epoch and accuracy sits at 0.70 (the share of
negatives) and never moves.

gradscope-expect: nonfinite-loss
"""
import numpy as np
import tensorflow as tf
from sklearn.datasets import make_classification

X, y = make_classification(n_samples=3000, n_features=20, n_informative=10,
                           class_sep=2.0, weights=[0.7, 0.3], random_state=0)
X = X.astype("float32")
y = y.astype("float32").reshape(-1, 1)

POS_WEIGHT = 3.0


def weighted_bce(y_true, y_pred):
    loss = -(POS_WEIGHT * y_true * tf.math.log(y_pred)
             + (1.0 - y_true) * tf.math.log(1.0 - y_pred))
    return tf.reduce_mean(loss)


tf.keras.utils.set_random_seed(0)
model = tf.keras.Sequential([
    tf.keras.layers.Input(shape=(20,)),
    tf.keras.layers.Dense(128, activation="relu"),
    tf.keras.layers.Dense(64, activation="relu"),
    tf.keras.layers.Dense(1, activation="sigmoid"),
])
model.compile(optimizer=tf.keras.optimizers.Adam(0.01), loss=weighted_bce, metrics=["accuracy"])
history = model.fit(X, y, epochs=15, batch_size=32, verbose=2)
print("loss per epoch:", [round(v, 4) for v in history.history["loss"]])
print("final accuracy:", round(history.history["accuracy"][-1], 4))
