"""Custom batch generator (my real data does not fit in memory, this is a
stand-in). Training accuracy shoots to 1.0 within the first epoch, but
validation accuracy stays at ~0.33 (5 classes) and the model is useless on
new data.

gradscope-expect: repeated-batch
"""
import numpy as np
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split
from tensorflow import keras


def batch_generator(X, y, batch_size=32):
    n = len(X)
    i = 0
    while True:
        start = i * batch_size % n
        xb = X[start:start + batch_size]
        yb = y[start:start + batch_size]
        yield xb, yb


X, y = make_classification(n_samples=3000, n_features=30, n_informative=12,
                           n_classes=5, n_clusters_per_class=2, random_state=0)
X = X.astype("float32")
X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2, random_state=0)

keras.utils.set_random_seed(0)
model = keras.Sequential([
    keras.Input(shape=(30,)),
    keras.layers.Dense(128, activation="relu"),
    keras.layers.Dense(64, activation="relu"),
    keras.layers.Dense(5, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

batch_size = 16
history = model.fit(batch_generator(X_train, y_train, batch_size),
                    steps_per_epoch=len(X_train) // batch_size,
                    validation_data=(X_val, y_val), epochs=6, verbose=2)
print("final train accuracy:", round(history.history["accuracy"][-1], 4))
print("final val accuracy:", round(history.history["val_accuracy"][-1], 4))
