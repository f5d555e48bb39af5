"""Predicting whether a patient's disease progresses a lot (target > 400) from
the diabetes data. Accuracy is 1.0000 from the very first epoch, which seems
too good, and the model outputs a low
probability (< 0.3) for every patient.

gradscope-expect: constant-labels
"""
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.preprocessing import StandardScaler
from tensorflow import keras

keras.utils.set_random_seed(42)

X, progression = load_diabetes(return_X_y=True)
X = StandardScaler().fit_transform(X)
high_risk = (progression > 400).astype("float32")

model = keras.Sequential([
    keras.Input(shape=(10,)),
    keras.layers.Dense(32, activation="relu"),
    keras.layers.Dense(16, activation="relu"),
    keras.layers.Dense(1, activation="sigmoid"),
])
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
history = model.fit(X, high_risk, epochs=10, batch_size=32, validation_split=0.2, verbose=2)
p = model.predict(X, verbose=0).ravel()
print("final accuracy:", history.history["accuracy"][-1])
print("prediction range: %.4f - %.4f" % (p.min(), p.max()))
