"""Three-class problem; the data comes as one array per class (one export per
class) that I stack together. Training accuracy during fit says ~0.80, but
model.evaluate on the very same data gives ~0.38 and it predicts the last class for
almost everything. Loss goes up and down between epochs.

gradscope-expect: ordered-labels
"""
import numpy as np
import tensorflow as tf
from sklearn.datasets import make_classification

X_all, y_all = make_classification(n_samples=6000, n_features=20, n_informative=6,
                                   n_classes=3, class_sep=1.0, random_state=1)
parts_x = [X_all[y_all == c] for c in range(3)]
parts_y = [np.full(len(p), c) for c, p in enumerate(parts_x)]
X = np.concatenate(parts_x).astype("float32")
y = np.concatenate(parts_y)

dataset = tf.data.Dataset.from_tensor_slices((X, y)).batch(32)

tf.keras.utils.set_random_seed(0)
model = tf.keras.Sequential([
    tf.keras.layers.Input(shape=(20,)),
    tf.keras.layers.Dense(32, activation="relu"),
    tf.keras.layers.Dense(3, activation="softmax"),
])
model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate=0.01),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(dataset, epochs=5, verbose=2)

loss, acc = model.evaluate(X, y, verbose=0)
pred = model.predict(X, verbose=0).argmax(1)
print("final training accuracy (from fit):", round(history.history["accuracy"][-1], 4))
print("evaluate accuracy on the same data:", round(acc, 4))
print("predicted class counts:", np.bincount(pred, minlength=3))
