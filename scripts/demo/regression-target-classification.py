"""Predicting three measurements per house (price, area, age; standardised)
from 8 features, starting from a classification template. The loss goes
negative (-1.5), then climbs to +9; the MAE stays at 0.82, no better than
always predicting the mean (0.80).

gradscope-expect: regression-target-classification
"""
import numpy as np
from sklearn.datasets import make_regression
from sklearn.preprocessing import StandardScaler
from tensorflow import keras

keras.utils.set_random_seed(54)

X, targets = make_regression(n_samples=2000, n_features=8, n_informative=6, n_targets=3,
                             noise=10.0, random_state=17)
X = StandardScaler().fit_transform(X)
y = StandardScaler().fit_transform(targets)

model = keras.Sequential([
    keras.layers.Input(shape=(8,)),
    keras.layers.Dense(64, activation="relu"),
    keras.layers.Dense(64, activation="relu"),
    keras.layers.Dense(3, activation="softmax"),
])
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["mae"])
history = model.fit(X, y, epochs=10, batch_size=32, validation_split=0.2, verbose=2)
print("final loss:", round(history.history["loss"][-1], 4))
print("final MAE:", round(history.history["mae"][-1], 3),
      "- predicting the mean:", round(float(np.abs(y - y.mean(0)).mean()), 3))
