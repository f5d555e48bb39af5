"""Iris with BatchNormalization. I train one sample at a time (batch_size=1)
because the data set is tiny. Accuracy is stuck around 0.5 while a plain
logistic regression gets 0.97.

gradscope-expect: batch-norm-single-sample
gradscope-also: dead-relu, zero-gradient
"""
from sklearn.datasets import load_iris
from tensorflow import keras

keras.utils.set_random_seed(0)
X, y = load_iris(return_X_y=True)
X = (X - X.mean(0)) / X.std(0)

model = keras.Sequential([
    keras.Input((4,)),
    keras.layers.Dense(16),
    keras.layers.BatchNormalization(),
    keras.layers.Activation("relu"),
    keras.layers.Dense(3, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(X, y, epochs=20, batch_size=1, verbose=0)
loss, accuracy = model.evaluate(X, y, verbose=0)
print("accuracy:", round(accuracy, 4))
