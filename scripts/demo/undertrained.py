"""Digits classifier, quick experiment before the big run. After training the
accuracy is only ~0.13 (val 0.18). The loss does go down each epoch
(2.32 -> 2.25), but very slowly.
Is my architecture bad?

gradscope-expect: undertrained
"""
import argparse

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from tensorflow import keras
from tensorflow.keras import layers


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch-size", type=int, default=64)
    return ap.parse_args()


def main():
    args = parse_args()
    keras.utils.set_random_seed(0)
    X, y = load_digits(return_X_y=True)
    X = X.astype("float32") / 16.0
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=0)

    model = keras.Sequential([
        keras.Input(shape=(64,)),
        layers.Dense(128, activation="relu"),
        layers.Dense(64, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=args.lr),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(X_tr, y_tr, epochs=args.epochs, batch_size=args.batch_size,
                        validation_data=(X_te, y_te), verbose=2)
    print("loss per epoch:", [round(v, 4) for v in history.history["loss"]])
    print("final accuracy:", round(history.history["accuracy"][-1], 4))
    print("final val accuracy:", round(history.history["val_accuracy"][-1], 4))


if __name__ == "__main__":
    main()
