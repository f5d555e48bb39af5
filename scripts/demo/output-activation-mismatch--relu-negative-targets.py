"""Regression on standardized targets (y has mean 0, std 1). The training MSE
gets stuck around 0.5 and never goes lower; the model never predicts anything
below 0. A linear regression gets MSE ~0.01 on the same data.

gradscope-expect: output-activation-mismatch
"""
import argparse

import numpy as np
import tensorflow as tf


def make_data(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 6)).astype("float32")
    y = 2 * X[:, 0] - X[:, 1] + 0.5 * X[:, 2] * X[:, 3] + 0.05 * rng.normal(size=n)
    y = (y - y.mean()) / y.std()
    return X, y.astype("float32")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    tf.keras.utils.set_random_seed(args.seed)
    X, y = make_data(2000, args.seed)
    model = tf.keras.Sequential([
        tf.keras.layers.Input(shape=(6,)),
        tf.keras.layers.Dense(64, activation="relu"),
        tf.keras.layers.Dense(64, activation="relu"),
        tf.keras.layers.Dense(1, activation="relu"),
    ])
    model.compile(optimizer=tf.keras.optimizers.Adam(args.lr), loss="mse")
    history = model.fit(X, y, epochs=args.epochs, batch_size=64,
                        validation_split=0.2, verbose=2)
    pred = model.predict(X, verbose=0)
    print("final mse:", round(history.history["loss"][-1], 4))
    print("min prediction:", float(pred.min()), "min target:", float(y.min()))


if __name__ == "__main__":
    main()
