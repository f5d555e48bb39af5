"""Binary classifier on a churn-style table: accuracy stuck at ~0.50 from the
first epoch, val_accuracy never changes, even though the loss goes down a bit.
I tried more epochs and a bigger network, nothing changes.

gradscope-expect: single-unit-softmax
gradscope-also: collapsed-predictions, accuracy-at-baseline
"""
import numpy as np
import keras
from keras import layers
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

keras.utils.set_random_seed(55)

X, y = make_classification(n_samples=2000, n_features=20, n_informative=8,
                           random_state=42)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

inputs = keras.Input(shape=(20,))
x = layers.Dense(64, activation="relu")(inputs)
x = layers.Dropout(0.2)(x)
x = layers.Dense(32, activation="relu")(x)
outputs = layers.Dense(1, activation="softmax")(x)
model = keras.Model(inputs, outputs)

model.compile(optimizer=keras.optimizers.Adam(1e-3),
              loss="binary_crossentropy", metrics=["accuracy"])
history = model.fit(X_train, y_train, epochs=8, batch_size=64,
                    validation_data=(X_test, y_test), verbose=2)

print("final train accuracy:", round(history.history["accuracy"][-1], 4))
print("final val accuracy:", round(history.history["val_accuracy"][-1], 4))
print("predictions on test set:", np.unique(model.predict(X_test, verbose=0)))
