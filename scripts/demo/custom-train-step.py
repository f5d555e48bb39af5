"""Digits MLP with my own train_step (gradient clipping by global norm, the way
I do it in my bigger models). Trains fine, accuracy ~0.98; I just want to know
what gradscope makes of a custom training loop.

gradscope-expect: custom-train-step
"""
import tensorflow as tf
from sklearn.datasets import load_digits
from tensorflow import keras


class ClippedMLP(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(64, activation="relu")
        self.head = keras.layers.Dense(10, activation="softmax")

    def call(self, x):
        return self.head(self.hidden(x))

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred)
        grads = tape.gradient(loss, self.trainable_variables)
        grads, _ = tf.clip_by_global_norm(grads, 1.0)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables, strict=True))
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


keras.utils.set_random_seed(0)
digits = load_digits()
X = digits.data.astype("float32") / 16.0
y = digits.target

model = ClippedMLP()
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(X, y, epochs=15, batch_size=32, validation_split=0.2, verbose=2)
print("first/last loss:", round(history.history["loss"][0], 4), round(history.history["loss"][-1], 4))
print("final accuracy:", round(history.history["accuracy"][-1], 4))
print("final val accuracy:", round(history.history["val_accuracy"][-1], 4))
