"""make_classification with a tf.data input pipeline (shuffle, batch,
prefetch) and a validation dataset. Learns fine.

gradscope-expect: healthy
"""
import numpy as np
import tensorflow as tf
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split

X, y = make_classification(n_samples=5000, n_features=20, n_informative=10,
                           n_classes=4, n_clusters_per_class=2, random_state=7)
X = ((X - X.mean(0)) / X.std(0)).astype("float32")
X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.2, random_state=7)

AUTOTUNE = tf.data.AUTOTUNE
train_ds = (tf.data.Dataset.from_tensor_slices((X_tr, y_tr))
            .shuffle(len(X_tr), seed=7, reshuffle_each_iteration=True)
            .batch(64)
            .prefetch(AUTOTUNE))
val_ds = tf.data.Dataset.from_tensor_slices((X_va, y_va)).batch(256).prefetch(AUTOTUNE)

tf.keras.utils.set_random_seed(7)
model = tf.keras.Sequential([
    tf.keras.layers.Input(shape=(20,)),
    tf.keras.layers.Dense(128, activation="relu"),
    tf.keras.layers.Dropout(0.2),
    tf.keras.layers.Dense(64, activation="relu"),
    tf.keras.layers.Dense(4, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(train_ds, validation_data=val_ds, epochs=12, verbose=2)
print("first/last loss:", round(history.history["loss"][0], 4), round(history.history["loss"][-1], 4))
print("final accuracy:", round(history.history["accuracy"][-1], 4))
print("final val accuracy:", round(history.history["val_accuracy"][-1], 4))
