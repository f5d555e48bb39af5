"""Review classifier on tokenised text (synthetic here): the tokenizer's
vocabulary has 1000 words, but I sized the Embedding for 100. On my laptop fit
crashes with "indices[0,0] = 100 is not in [0, 100)"; on the GPU box it runs
and the loss sits at 0.69.

gradscope-expect: embedding-out-of-range
"""
import numpy as np
from tensorflow import keras

rng = np.random.default_rng(0)
n, length = 2000, 30
x = rng.integers(1, 1000, size=(n, length))  # token ids from a 1000-word vocabulary
y = ((x < 500).sum(axis=1) > length / 2).astype("int64")

model = keras.Sequential([
    keras.Input((length,), dtype="int32"),
    keras.layers.Embedding(100, 16),  # input_dim should be the vocabulary size
    keras.layers.GlobalAveragePooling1D(),
    keras.layers.Dense(16, activation="relu"),
    keras.layers.Dense(1, activation="sigmoid"),
])
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
model.fit(x, y, epochs=5, batch_size=64, verbose=2)
