"""Digits classifier. I turned on label smoothing for better-calibrated
probabilities. Now the loss is 2.3026 in every single epoch and accuracy jumps
around near chance. Without the smoothing it trains fine.

gradscope-expect: label-smoothing-too-high
gradscope-also: loss-flat, collapsed-predictions, cannot-overfit, accuracy-at-baseline
"""
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from tensorflow import keras
from tensorflow.keras import layers

keras.utils.set_random_seed(0)
digits = load_digits()
X = digits.data / 16.0
Y = keras.utils.to_categorical(digits.target, 10)
X_train, X_val, Y_train, Y_val = train_test_split(X, Y, test_size=0.2, random_state=0)

model = keras.Sequential([
    keras.Input(shape=(64,)),
    layers.Dense(128, activation="relu"),
    layers.Dense(64, activation="relu"),
    layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="adam",
              loss=keras.losses.CategoricalCrossentropy(label_smoothing=1.0),
              metrics=["accuracy"])
history = model.fit(X_train, Y_train, epochs=8, batch_size=32,
                    validation_data=(X_val, Y_val), verbose=2)
print("loss per epoch:", [round(v, 4) for v in history.history["loss"]])
print("final accuracy:", round(history.history["accuracy"][-1], 4))
print("final val accuracy:", round(history.history["val_accuracy"][-1], 4))
