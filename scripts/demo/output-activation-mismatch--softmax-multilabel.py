"""Multi-label tagging: each sample can have several of 5 tags (most have 2-3).
The model never predicts more than one tag per sample (~0.93 on average), tag
recall is ~0.3, exact-match accuracy ~0.12, and the loss GROWS epoch after
epoch (from 4.6 to somewhere between 80 and 400) instead of going down.

gradscope-expect: output-activation-mismatch
"""
import numpy as np
import tensorflow as tf
from sklearn.datasets import make_multilabel_classification

X, Y = make_multilabel_classification(n_samples=2000, n_features=20, n_classes=5,
                                      n_labels=3, allow_unlabeled=False,
                                      random_state=9)
X = np.log1p(X).astype("float32")
X = (X - X.mean(0)) / X.std(0)
Y = Y.astype("float32")
print("average tags per sample:", Y.sum(1).mean())

tf.random.set_seed(9)
model = tf.keras.Sequential([
    tf.keras.layers.Input(shape=(20,)),
    tf.keras.layers.Dense(64, activation="relu"),
    tf.keras.layers.Dense(32, activation="relu"),
    tf.keras.layers.Dense(5, activation="softmax"),
])
model.compile(optimizer="adam", loss="categorical_crossentropy")
history = model.fit(X, Y, epochs=15, batch_size=32, validation_split=0.2, verbose=2)

P = model.predict(X, verbose=0) > 0.5
exact = (P == Y.astype(bool)).all(axis=1).mean()
recall = (P & Y.astype(bool)).sum() / Y.sum()
print("final loss:", round(history.history["loss"][-1], 4))
print("tags predicted per sample:", P.sum(1).mean())
print("exact-match accuracy:", round(float(exact), 4), "tag recall:", round(float(recall), 4))
