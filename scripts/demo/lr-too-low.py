"""Wine classifier. The loss goes 1.2034 -> 1.2034 -> 1.2033 ... -> 1.2027 over 30
epochs and accuracy stays at 0.34. I use SGD like in the lecture.

gradscope-expect: lr-too-low
gradscope-also: loss-flat
"""
from sklearn.datasets import load_wine
from sklearn.preprocessing import StandardScaler
from tensorflow import keras
from tensorflow.keras import layers

keras.utils.set_random_seed(2)
X, y = load_wine(return_X_y=True)
X = StandardScaler().fit_transform(X)

model = keras.Sequential([
    keras.Input(shape=(13,)),
    layers.Dense(32, activation="relu"),
    layers.Dense(16, activation="relu"),
    layers.Dense(3, activation="softmax"),
])
model.compile(optimizer=keras.optimizers.SGD(learning_rate=1e-6),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(X, y, epochs=30, batch_size=16, shuffle=True, verbose=2)
print("first/last loss:", round(history.history["loss"][0], 5), round(history.history["loss"][-1], 5))
print("final accuracy:", round(history.history["accuracy"][-1], 4))
