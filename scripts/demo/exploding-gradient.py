"""Deep MLP on digits, weights initialised from N(0, 1) as in my course notes.
With verbose=1 the progress bar shows a loss of ~2e6 on the first batch, 5e21
on the second, then nan for good. Accuracy ends at ~0.10.

gradscope-expect: exploding-gradient
gradscope-also: nonfinite-loss, accuracy-at-baseline
"""
from sklearn.datasets import load_digits
from tensorflow import keras
from tensorflow.keras import layers, initializers

keras.utils.set_random_seed(0)
digits = load_digits()
X = digits.data / 16.0
y = digits.target

init = initializers.RandomNormal(mean=0.0, stddev=1.0)
model = keras.Sequential([keras.Input(shape=(64,))])
for units in [256, 256, 128, 128, 64, 64]:
    model.add(layers.Dense(units, activation="relu", kernel_initializer=init))
model.add(layers.Dense(10, activation="softmax", kernel_initializer=init))

model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(X, y, epochs=5, batch_size=32, verbose=2)
print("loss per epoch:", history.history["loss"])
print("final accuracy:", round(history.history["accuracy"][-1], 4))
