"""A binary classifier that never learns: softmax over one output unit.

This is how the question is usually posted: "my accuracy is stuck at 50 %".
Run it with `python scripts/demo_softmax_one_unit.py` to watch it stay flat,
then with `gradscope run --headless scripts/demo_softmax_one_unit.py`.
"""

import numpy as np
from tensorflow import keras

# A churn-style table: 30 numeric features, a yes/no label that depends on a few.
rng = np.random.default_rng(0)
x = rng.normal(size=(600, 30)).astype("float32")
y = (x[:, 0] + 0.5 * x[:, 3] - x[:, 7] + 0.3 * rng.normal(size=600) > 0).astype("float32")

model = keras.Sequential(
    [
        keras.Input(shape=(x.shape[1],)),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(1, activation="softmax"),  # the bug: softmax of one value is 1.0
    ]
)
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
history = model.fit(x, y, epochs=5, batch_size=32, validation_split=0.2, verbose=2)
print("final accuracy:", round(float(history.history["accuracy"][-1]), 3))
print("distinct predictions:", np.unique(model.predict(x[:50], verbose=0)).tolist())
