"""Breast cancer classifier, functional API, AUC metric. Learns well.

gradscope-expect: healthy
"""
import numpy as np
import tensorflow as tf
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from tensorflow.keras import Model
from tensorflow.keras.layers import BatchNormalization, Dense, Dropout, Input
from tensorflow.keras.metrics import AUC

tf.keras.utils.set_random_seed(2)
X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2,
                                                    stratify=y, random_state=2)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

inputs = Input(shape=(30,), name="features")
x = Dense(32, activation="relu")(inputs)
x = BatchNormalization()(x)
x = Dropout(0.3)(x)
x = Dense(16, activation="relu")(x)
outputs = Dense(1, activation="sigmoid", name="malignant")(x)
model = Model(inputs, outputs)

model.compile(optimizer="adam", loss="binary_crossentropy",
              metrics=["accuracy", AUC(name="auc")])
history = model.fit(X_train, y_train, epochs=20, batch_size=32,
                    validation_data=(X_test, y_test), verbose=2)
print("first/last loss:", round(history.history["loss"][0], 4), round(history.history["loss"][-1], 4))
print("final accuracy:", round(history.history["accuracy"][-1], 4))
print("final val auc:", round(history.history["val_auc"][-1], 4))
