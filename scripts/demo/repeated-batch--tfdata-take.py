"""tf.data pipeline for a binary classifier. Train loss goes to ~0 in no time,
but val_accuracy is stuck around 0.5. I cache and repeat the dataset for speed.

gradscope-expect: repeated-batch
"""
import numpy as np
import tensorflow as tf

rng = np.random.default_rng(10)
n = 4000
X = rng.normal(size=(n, 40)).astype("float32")
w = rng.normal(size=40)
y = ((X @ w) + 0.5 * np.sin(3 * X[:, 0]) > 0).astype("float32")
X_train, y_train, X_val, y_val = X[:3200], y[:3200], X[3200:], y[3200:]

BATCH = 8
train_ds = (tf.data.Dataset.from_tensor_slices((X_train, y_train))
            .shuffle(3200, seed=10)
            .batch(BATCH)
            .take(1)
            .cache()
            .repeat())
val_ds = tf.data.Dataset.from_tensor_slices((X_val, y_val)).batch(256)

tf.keras.utils.set_random_seed(10)
model = tf.keras.Sequential([
    tf.keras.layers.Input(shape=(40,)),
    tf.keras.layers.Dense(64, activation="relu"),
    tf.keras.layers.Dense(1, activation="sigmoid"),
])
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
history = model.fit(train_ds, steps_per_epoch=3200 // BATCH, epochs=4,
                    validation_data=val_ds, verbose=2)
print("final train loss:", round(history.history["loss"][-1], 5))
print("final val accuracy:", round(history.history["val_accuracy"][-1], 4))
