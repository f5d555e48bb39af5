"""Diabetes regression with plain SGD, lr=0.5. The loss is nan from the first
epoch on.

gradscope-expect: lr-too-high
gradscope-also: nonfinite-loss
"""
from sklearn.datasets import load_diabetes
from sklearn.preprocessing import StandardScaler
import keras

keras.utils.set_random_seed(1)
X, y = load_diabetes(return_X_y=True)
X = StandardScaler().fit_transform(X)
y = (y - y.mean()) / y.std()

model = keras.Sequential([
    keras.Input((10,)),
    keras.layers.Dense(64, activation="relu"),
    keras.layers.Dense(64, activation="relu"),
    keras.layers.Dense(1),
])
model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5), loss="mse")
history = model.fit(X, y, epochs=10, batch_size=16, verbose=2)
print("loss per epoch:", history.history["loss"])
