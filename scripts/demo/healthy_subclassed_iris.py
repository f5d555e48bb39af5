"""Iris with a subclassed keras.Model (residual block). Learns fine.

gradscope-expect: healthy
"""
import numpy as np
import tensorflow as tf
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler


class ResidualMLP(tf.keras.Model):
    def __init__(self, hidden=32, n_classes=3, **kwargs):
        super().__init__(**kwargs)
        self.inp = tf.keras.layers.Dense(hidden, activation="relu")
        self.block1 = tf.keras.layers.Dense(hidden, activation="relu")
        self.block2 = tf.keras.layers.Dense(hidden)
        self.norm = tf.keras.layers.LayerNormalization()
        self.head = tf.keras.layers.Dense(n_classes, activation="softmax")

    def call(self, x, training=False):
        h = self.inp(x)
        r = self.block2(self.block1(h))
        h = self.norm(tf.nn.relu(h + r))
        return self.head(h)


tf.keras.utils.set_random_seed(6)
X, y = load_iris(return_X_y=True)
X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, stratify=y, random_state=6)
sc = StandardScaler().fit(X_tr)
X_tr, X_te = sc.transform(X_tr), sc.transform(X_te)

model = ResidualMLP()
model.compile(optimizer=tf.keras.optimizers.Adam(3e-3),
              loss=tf.keras.losses.SparseCategoricalCrossentropy(),
              metrics=["accuracy"])
history = model.fit(X_tr, y_tr, epochs=40, batch_size=16,
                    validation_data=(X_te, y_te), verbose=2)
print("first/last loss:", round(history.history["loss"][0], 4), round(history.history["loss"][-1], 4))
print("final accuracy:", round(history.history["accuracy"][-1], 4))
print("final val accuracy:", round(history.history["val_accuracy"][-1], 4))
