"""A "deep" network (10 hidden layers) on the digits data: loss stays at 2.30
and accuracy at ~0.10. A network with 1 hidden layer learns fine, so I thought
more layers would be even better...

gradscope-expect: vanishing-gradient
gradscope-also: loss-flat, accuracy-at-baseline, collapsed-predictions
"""
import numpy as np
import keras
from keras import layers
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def build(depth=10, width=64):
    model = keras.Sequential(name=f"deep_mlp_{depth}")
    model.add(keras.Input(shape=(64,)))
    for i in range(depth):
        model.add(layers.Dense(width, activation="sigmoid", name=f"hidden_{i}"))
    model.add(layers.Dense(10, activation="softmax", name="out"))
    return model


if __name__ == "__main__":
    keras.utils.set_random_seed(0)
    X, y = load_digits(return_X_y=True)
    X = X.astype("float32") / 16.0
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=0)

    model = build()
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(X_tr, y_tr, epochs=12, batch_size=32,
                        validation_data=(X_te, y_te), verbose=2)
    print("final loss:", round(history.history["loss"][-1], 4))
    print("final accuracy:", round(history.history["accuracy"][-1], 4))
