"""Spam / not-spam classifier. fit() crashes in the first step with "Received a
label value of 1 which is outside the valid range of [0, 1)". My labels are 0
and 1, that's the valid range?!

gradscope-expect: loss-output-mismatch
gradscope-also: loss-label-mismatch
"""
import numpy as np
from tensorflow import keras
from tensorflow.keras import layers

keras.utils.set_random_seed(46)

rng = np.random.default_rng(77)
n = 2000
word_counts = rng.poisson(1.0, size=(n, 40)).astype("float32")
spam_words = word_counts[:, :5].sum(1) - word_counts[:, 5:10].sum(1)
is_spam = (spam_words + rng.normal(0, 1, n) > 0).astype("int32")
X = np.log1p(word_counts)

model = keras.Sequential([
    layers.Input(shape=(40,)),
    layers.Dense(32, activation="relu"),
    layers.Dense(1, activation="sigmoid"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(X, is_spam, epochs=5, batch_size=32, validation_split=0.2, verbose=2)
print("final accuracy:", history.history["accuracy"][-1])
