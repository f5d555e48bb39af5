"""Digit classifier on top of my encoder (I train the encoder separately as an
autoencoder and reuse it here). Only the classifier head should train. Accuracy
gets stuck around 0.25-0.3, way below what a plain MLP gets (0.95+).

gradscope-expect: frozen-layers
gradscope-also: cannot-overfit
"""
import os

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from tensorflow import keras
from tensorflow.keras import layers

ENCODER_WEIGHTS = "checkpoints/digits_encoder.weights.h5"
CODE_SIZE = 4

keras.utils.set_random_seed(0)


def build_encoder():
    return keras.Sequential([
        keras.Input(shape=(64,)),
        layers.Dense(32, activation="relu", name="enc_1"),
        layers.Dense(CODE_SIZE, activation="relu", name="code"),
    ], name="encoder")


digits = load_digits()
X = digits.data.astype("float32") / 16.0
X_train, X_test, y_train, y_test = train_test_split(X, digits.target, test_size=0.2,
                                                    random_state=0)

encoder = build_encoder()
if os.path.exists(ENCODER_WEIGHTS):
    encoder.load_weights(ENCODER_WEIGHTS)
encoder.trainable = False

inputs = keras.Input(shape=(64,))
features = encoder(inputs, training=False)
h = layers.Dense(64, activation="relu")(features)
outputs = layers.Dense(10, activation="softmax")(h)
classifier = keras.Model(inputs, outputs)

classifier.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                   metrics=["accuracy"])
history = classifier.fit(X_train, y_train, epochs=15, batch_size=32,
                         validation_data=(X_test, y_test), verbose=2)
print("final accuracy:", round(history.history["accuracy"][-1], 4))
print("final val accuracy:", round(history.history["val_accuracy"][-1], 4))
