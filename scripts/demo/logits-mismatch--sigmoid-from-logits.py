"""Binary classifier written as a subclassed model. The loss drops in the first
epoch and then sits at ~0.51 forever (sklearn's log-loss on the same data is
~0.05), even though the accuracy says 0.98. Is the loss even computed right?

gradscope-expect: logits-mismatch
"""
import numpy as np
import tensorflow as tf
from sklearn.datasets import make_classification


class Classifier(tf.keras.Model):
    def __init__(self):
        super().__init__()
        self.d1 = tf.keras.layers.Dense(64, activation="relu")
        self.d2 = tf.keras.layers.Dense(32, activation="relu")
        self.out = tf.keras.layers.Dense(1, activation="sigmoid")

    def call(self, x, training=False):
        x = self.d1(x)
        x = self.d2(x)
        return tf.squeeze(self.out(x), axis=-1)


tf.keras.utils.set_random_seed(5)
X, y = make_classification(n_samples=3000, n_features=30, n_informative=10,
                           class_sep=1.5, random_state=5)
X = X.astype("float32")
y = y.astype("float32")

model = Classifier()
model.compile(
    optimizer="adam",
    loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
    metrics=[tf.keras.metrics.BinaryAccuracy(name="acc")],
)
history = model.fit(X, y, epochs=10, batch_size=64, validation_split=0.2, verbose=2)

p = model.predict(X, verbose=0)
print("final loss:", round(history.history["loss"][-1], 4))
print("final acc:", round(history.history["acc"][-1], 4))
print("prediction range:", round(float(p.min()), 3), "-", round(float(p.max()), 3))
