"""Heart-disease style tabular data, binary target. val_accuracy stalls around
0.75 and val_loss climbs to ~1.0 while the training loss is 0.44; the loss
jumps around between epochs. Logistic regression from sklearn gets 0.85 on the
same features, so the network is doing worse than a linear model.

gradscope-expect: logits-mismatch
"""
import numpy as np
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from tensorflow import keras

X, y = make_classification(n_samples=1000, n_features=13, n_informative=6,
                           flip_y=0.05, random_state=21)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=21)
scaler = StandardScaler()
X_train = scaler.fit_transform(X_train)
X_test = scaler.transform(X_test)

keras.utils.set_random_seed(21)
model = keras.models.Sequential([
    keras.layers.Input(shape=(13,)),
    keras.layers.Dense(32, activation="relu"),
    keras.layers.Dense(16, activation="relu"),
    keras.layers.Dense(1),
])
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
history = model.fit(X_train, y_train, epochs=20, batch_size=32,
                    validation_data=(X_test, y_test), verbose=2)
print("final loss:", round(history.history["loss"][-1], 4))
print("final accuracy:", round(history.history["accuracy"][-1], 4))
print("final val accuracy:", round(history.history["val_accuracy"][-1], 4))
