"""Digits MLP. The very first loss is ~66 (for 10 classes I expected ~2.3) and
the first epochs are wasted bringing it down (30.9, 10.4, 5.7, 3.5): after 4
epochs accuracy is ~0.77, where the default initialisation gets ~0.9. I
initialise the output layer with a larger std so it "starts more decisive".

gradscope-expect: init-loss-unexpected
gradscope-also: undertrained
"""
from sklearn.datasets import load_digits
import keras
from keras import layers

keras.utils.set_random_seed(0)
X, y = load_digits(return_X_y=True)
X = X / 16.0

model = keras.Sequential([
    keras.Input(shape=(64,)),
    layers.Dense(128, activation="relu"),
    layers.Dense(10, activation="softmax",
                 kernel_initializer=keras.initializers.RandomNormal(stddev=20.0)),
])
model.compile(optimizer=keras.optimizers.Adam(learning_rate=3e-4),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
print("initial loss / accuracy:", model.evaluate(X, y, verbose=0))
history = model.fit(X, y, epochs=4, batch_size=32, verbose=2)
print("loss per epoch:", [round(v, 3) for v in history.history["loss"]])
print("final accuracy:", round(history.history["accuracy"][-1], 4))
