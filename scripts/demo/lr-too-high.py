"""Digits MLP with SGD. Training was slow, so I raised the learning rate to 1.0.
Now the loss zig-zags between epochs (2.07, 1.69, 1.61, 1.63, 1.43, 1.41,
1.50, 1.15, 1.36, 1.11) and accuracy ends around 0.6; with lr=0.1 it
reached 0.97, just too slowly for my taste.

gradscope-expect: lr-too-high
"""
import argparse

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
import tensorflow as tf


def get_args():
    p = argparse.ArgumentParser(description="train digits MLP")
    p.add_argument("--lr", type=float, default=1.0)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    return p.parse_args()


def main(args):
    tf.keras.utils.set_random_seed(0)
    X, y = load_digits(return_X_y=True)
    X_tr, X_va, y_tr, y_va = train_test_split(X / 16.0, y, test_size=0.2, random_state=0)

    model = tf.keras.Sequential([
        tf.keras.layers.Input(shape=(64,)),
        tf.keras.layers.Dense(128, activation="relu"),
        tf.keras.layers.Dense(64, activation="relu"),
        tf.keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=tf.keras.optimizers.SGD(learning_rate=args.lr),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(X_tr, y_tr, epochs=args.epochs, batch_size=args.batch_size,
                     validation_data=(X_va, y_va), verbose=2)
    print("loss per epoch:", [round(v, 3) for v in hist.history["loss"]])
    print("final accuracy:", round(hist.history["accuracy"][-1], 4))
    print("final val accuracy:", round(hist.history["val_accuracy"][-1], 4))


if __name__ == "__main__":
    main(get_args())
