"""Handwritten digits, 10 classes. Accuracy wanders around 0.3-0.5 and the
loss is stuck around 2.1-2.3 (sometimes it jumps to 6). The same network in
PyTorch gets 95 %.

gradscope-expect: logits-mismatch
"""
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler
import tensorflow as tf
from tensorflow.keras import Sequential
from tensorflow.keras.layers import Dense, Input

tf.random.set_seed(2)

digits = load_digits()
X = MinMaxScaler().fit_transform(digits.data)
X_train, X_test, y_train, y_test = train_test_split(
    X, digits.target, test_size=0.25, random_state=2)

model = Sequential([
    Input(shape=(64,)),
    Dense(128, activation="relu"),
    Dense(64, activation="relu"),
    Dense(10),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
hist = model.fit(X_train, y_train, epochs=12, batch_size=32,
                 validation_data=(X_test, y_test), verbose=2)
print("final loss:", round(hist.history["loss"][-1], 4))
print("final accuracy:", round(hist.history["accuracy"][-1], 4))
print("final val accuracy:", round(hist.history["val_accuracy"][-1], 4))
