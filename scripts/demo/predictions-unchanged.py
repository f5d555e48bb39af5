"""Wine classifier. I use gradient accumulation to simulate a large batch
(effective batch = 16 x 64 = 1024) as the large-batch paper recommends. The
loss and accuracy are identical in every epoch, and model.predict gives exactly
the same output before and after fit().

gradscope-expect: predictions-unchanged
gradscope-also: loss-flat
"""
import numpy as np
import keras
from sklearn.datasets import load_wine
from sklearn.preprocessing import StandardScaler

keras.utils.set_random_seed(4)
X, y = load_wine(return_X_y=True)
X = StandardScaler().fit_transform(X)

model = keras.Sequential([
    keras.Input(shape=(13,)),
    keras.layers.Dense(32, activation="relu"),
    keras.layers.Dense(3, activation="softmax"),
])
optimizer = keras.optimizers.Adam(learning_rate=1e-3, gradient_accumulation_steps=64)
model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])

before = model.predict(X, verbose=0)
history = model.fit(X, y, epochs=5, batch_size=16, verbose=2)
after = model.predict(X, verbose=0)
print("loss per epoch:", [round(v, 4) for v in history.history["loss"]])
print("final accuracy:", round(history.history["accuracy"][-1], 4))
print("predictions changed:", not np.array_equal(before, after))
