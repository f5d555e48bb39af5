"""Wine classifier built from my "feature extractor + head" template. Loss and
accuracy are exactly the same in every epoch, to the last digit.

gradscope-expect: frozen-model
gradscope-also: loss-flat, predictions-unchanged
"""
import keras
from keras import layers
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

keras.utils.set_random_seed(8)
X, y = load_wine(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=8)
sc = StandardScaler().fit(X_train)
X_train, X_test = sc.transform(X_train), sc.transform(X_test)

backbone = keras.Sequential([
    layers.Dense(64, activation="relu"),
    layers.Dense(32, activation="relu"),
], name="backbone")
head = layers.Dense(3, activation="softmax", name="head")

inputs = keras.Input(shape=(13,))
outputs = head(backbone(inputs))
model = keras.Model(inputs, outputs)

for layer in model.layers:
    layer.trainable = False
backbone.trainable = False

model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.summary()
history = model.fit(X_train, y_train, epochs=10, batch_size=16,
                    validation_data=(X_test, y_test), verbose=2)
print("loss per epoch:", [round(v, 4) for v in history.history["loss"]])
print("final accuracy:", round(history.history["accuracy"][-1], 4))
