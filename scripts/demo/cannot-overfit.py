"""Toy problem: classify points inside vs outside a circle (make_circles). My
3-layer network is stuck at 0.50 accuracy, and even 50 training points it
cannot fit perfectly (~0.8 after 150 epochs). Isn't a neural net supposed to
be able to learn this?

gradscope-expect: cannot-overfit
gradscope-also: accuracy-at-baseline
"""
import numpy as np
from sklearn.datasets import make_circles
from tensorflow import keras
from tensorflow.keras.layers import Dense, Input


def build_model():
    model = keras.Sequential([
        Input(shape=(2,)),
        Dense(32),
        Dense(32),
        Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy",
                  metrics=["accuracy"])
    return model


def main():
    keras.utils.set_random_seed(0)
    X, y = make_circles(n_samples=2000, noise=0.05, factor=0.5, random_state=0)
    model = build_model()
    history = model.fit(X, y, epochs=10, batch_size=32, validation_split=0.2, verbose=2)
    print("final accuracy:", round(history.history["accuracy"][-1], 4))

    small = build_model()
    h_small = small.fit(X[:50], y[:50], epochs=150, batch_size=50, verbose=0)
    print("accuracy on 50 points after 150 epochs:", round(h_small.history["accuracy"][-1], 4))


if __name__ == "__main__":
    main()
