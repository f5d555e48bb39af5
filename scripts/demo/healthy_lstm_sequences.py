"""Token sequences (synthetic "log lines"), Embedding + LSTM classifier: does
the error token come before the retry token? Order matters, so a bag of tokens
is not enough. Learns well.

gradscope-expect: healthy
"""
import numpy as np
from tensorflow import keras
from tensorflow.keras import layers

VOCAB, SEQ_LEN, N = 50, 20, 3000
ERROR, RETRY = 7, 11

rng = np.random.default_rng(10)
seqs = rng.integers(1, VOCAB, size=(N, SEQ_LEN))
seqs[np.isin(seqs, [ERROR, RETRY])] = 1
labels = np.zeros(N, dtype="int32")
for i in range(N):
    a, b = sorted(rng.choice(SEQ_LEN, size=2, replace=False))
    kind = rng.integers(0, 3)
    if kind == 0:                       # error then retry -> positive
        seqs[i, a], seqs[i, b] = ERROR, RETRY
        labels[i] = 1
    elif kind == 1:                     # retry then error -> negative
        seqs[i, a], seqs[i, b] = RETRY, ERROR
    else:                               # only one of them -> negative
        seqs[i, a] = rng.choice([ERROR, RETRY])

keras.utils.set_random_seed(10)
model = keras.Sequential([
    keras.Input(shape=(SEQ_LEN,), dtype="int32"),
    layers.Embedding(VOCAB, 16),
    layers.LSTM(32),
    layers.Dense(16, activation="relu"),
    layers.Dense(1, activation="sigmoid"),
])
model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="binary_crossentropy",
              metrics=["accuracy"])
history = model.fit(seqs, labels, epochs=8, batch_size=64, validation_split=0.2, verbose=2)
print("first/last loss:", round(history.history["loss"][0], 4), round(history.history["loss"][-1], 4))
print("final accuracy:", round(history.history["accuracy"][-1], 4))
print("final val accuracy:", round(history.history["val_accuracy"][-1], 4))
