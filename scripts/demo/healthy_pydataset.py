"""Breast cancer data served by a keras.utils.PyDataset that standardizes each
batch with the training statistics and reshuffles every epoch. Learns fine.

gradscope-expect: healthy
"""
import math

import numpy as np
import keras
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split


class TabularDataset(keras.utils.PyDataset):
    def __init__(self, X, y, mean, std, batch_size=32, shuffle=True, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.X, self.y = X, y
        self.mean, self.std = mean, std
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.rng = np.random.default_rng(seed)
        self.order = np.arange(len(X))
        self.on_epoch_end()

    def __len__(self):
        return math.ceil(len(self.X) / self.batch_size)

    def __getitem__(self, i):
        idx = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        xb = (self.X[idx] - self.mean) / self.std
        return xb.astype("float32"), self.y[idx].astype("float32")

    def on_epoch_end(self):
        if self.shuffle:
            self.rng.shuffle(self.order)


X, y = load_breast_cancer(return_X_y=True)
X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.2, stratify=y, random_state=9)
mean, std = X_tr.mean(0), X_tr.std(0)
train_data = TabularDataset(X_tr, y_tr, mean, std, batch_size=32, seed=9)
val_data = TabularDataset(X_va, y_va, mean, std, batch_size=64, shuffle=False)

keras.utils.set_random_seed(9)
model = keras.Sequential([
    keras.Input(shape=(30,)),
    keras.layers.Dense(32, activation="relu"),
    keras.layers.Dense(16, activation="relu"),
    keras.layers.Dense(1, activation="sigmoid"),
])
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
history = model.fit(train_data, validation_data=val_data, epochs=15, verbose=2)
print("first/last loss:", round(history.history["loss"][0], 4), round(history.history["loss"][-1], 4))
print("final accuracy:", round(history.history["accuracy"][-1], 4))
print("final val accuracy:", round(history.history["val_accuracy"][-1], 4))
