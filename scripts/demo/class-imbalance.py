"""Fraud detection on transaction features. Accuracy is 0.97 right away and
never changes, but the model does not catch a single fraud case (recall 0).

gradscope-expect: class-imbalance
gradscope-also: accuracy-at-baseline
"""
import numpy as np
import tensorflow as tf
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

X, y = make_classification(n_samples=4000, n_features=20, n_informative=3,
                           n_redundant=2, weights=[0.97, 0.03], class_sep=0.5,
                           flip_y=0.0, random_state=3)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25,
                                                    stratify=y, random_state=3)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
print("fraud rate:", y_train.mean())

tf.keras.utils.set_random_seed(3)
model = tf.keras.Sequential([
    tf.keras.layers.Input(shape=(20,)),
    tf.keras.layers.Dense(32, activation="relu"),
    tf.keras.layers.Dense(16, activation="relu"),
    tf.keras.layers.Dense(1, activation="sigmoid"),
])
model.compile(optimizer="adam", loss="binary_crossentropy",
              metrics=["accuracy", tf.keras.metrics.Recall(name="recall")])
history = model.fit(X_train, y_train, epochs=8, batch_size=64,
                    validation_data=(X_test, y_test), verbose=2)
print("final accuracy:", round(history.history["accuracy"][-1], 4))
print("final recall:", round(history.history["recall"][-1], 4))
print("frauds flagged in test set:", int((model.predict(X_test, verbose=0) > 0.5).sum()),
      "of", int(y_test.sum()))
