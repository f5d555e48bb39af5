"""Wine: one functional model with two heads, the cultivar (3 classes) and the
alcohol content (regression, standardized). Both heads learn.

gradscope-expect: healthy
"""
import numpy as np
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from tensorflow import keras
from tensorflow.keras import layers

keras.utils.set_random_seed(5)
wine = load_wine()
alcohol = wine.data[:, 0]
features = wine.data[:, 1:]
cultivar = wine.target

(X_tr, X_te, c_tr, c_te, a_tr, a_te) = train_test_split(
    features, cultivar, alcohol, test_size=0.25, stratify=cultivar, random_state=5)
sx = StandardScaler().fit(X_tr)
X_tr, X_te = sx.transform(X_tr), sx.transform(X_te)
a_mean, a_std = a_tr.mean(), a_tr.std()
a_tr, a_te = (a_tr - a_mean) / a_std, (a_te - a_mean) / a_std

inp = keras.Input(shape=(12,), name="chemistry")
shared = layers.Dense(64, activation="relu")(inp)
shared = layers.Dense(32, activation="relu")(shared)
cls_out = layers.Dense(3, activation="softmax", name="cultivar")(shared)
reg_h = layers.Dense(16, activation="relu")(shared)
reg_out = layers.Dense(1, name="alcohol")(reg_h)
model = keras.Model(inp, [cls_out, reg_out])

model.compile(optimizer="adam",
              loss={"cultivar": "sparse_categorical_crossentropy", "alcohol": "mse"},
              loss_weights={"cultivar": 1.0, "alcohol": 0.5},
              metrics={"cultivar": ["accuracy"], "alcohol": ["mae"]})
history = model.fit(X_tr, {"cultivar": c_tr, "alcohol": a_tr}, epochs=40, batch_size=16,
                    validation_data=(X_te, {"cultivar": c_te, "alcohol": a_te}), verbose=2)
h = history.history
print("first/last loss:", round(h["loss"][0], 4), round(h["loss"][-1], 4))
print("final cultivar accuracy:", round(h["cultivar_accuracy"][-1], 4))
print("final val cultivar accuracy:", round(h["val_cultivar_accuracy"][-1], 4))
print("final alcohol mae (std units):", round(h["alcohol_mae"][-1], 4))
