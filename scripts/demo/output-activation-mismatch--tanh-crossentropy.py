"""Handwritten digits with an all-tanh network (my course uses tanh). The
loss is ~9.5 and accuracy sits at 0.25 from epoch 2 on and never moves.

gradscope-expect: output-activation-mismatch
gradscope-also: accuracy-at-baseline
"""
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
import keras

np.random.seed(12)
keras.utils.set_random_seed(12)

X, y = load_digits(return_X_y=True)
X = (X - 8.0) / 8.0
y_onehot = keras.utils.to_categorical(y, 10)
X_tr, X_te, y_tr, y_te = train_test_split(X, y_onehot, test_size=0.2, random_state=12)

model = keras.Sequential([
    keras.Input(shape=(64,)),
    keras.layers.Dense(100, activation="tanh"),
    keras.layers.Dense(50, activation="tanh"),
    keras.layers.Dense(10, activation="tanh"),
])
model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05),
              loss="categorical_crossentropy", metrics=["accuracy"])
history = model.fit(X_tr, y_tr, epochs=15, batch_size=32,
                    validation_data=(X_te, y_te), verbose=2)
print("final loss:", round(history.history["loss"][-1], 4))
print("final accuracy:", round(history.history["accuracy"][-1], 4))
