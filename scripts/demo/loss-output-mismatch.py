"""Breast cancer classifier: the loss is 0.0000 from the very first epoch, but
the accuracy is bad and does not change. How can the loss be zero when the model
is wrong on a third of the data?

gradscope-expect: loss-output-mismatch
gradscope-also: loss-flat, predictions-unchanged
"""
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from tensorflow import keras
from tensorflow.keras.layers import Dense, Dropout

keras.utils.set_random_seed(47)

data = load_breast_cancer()
X_train, X_test, y_train, y_test = train_test_split(
    data.data, data.target, test_size=0.25, random_state=0)
sc = StandardScaler()
X_train = sc.fit_transform(X_train)
X_test = sc.transform(X_test)

model = keras.Sequential()
model.add(Dense(30, activation="relu", input_shape=(30,)))
model.add(Dropout(0.3))
model.add(Dense(15, activation="relu"))
model.add(Dense(1, activation="sigmoid"))
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])

history = model.fit(X_train, y_train, batch_size=32, epochs=10,
                    validation_data=(X_test, y_test), verbose=2)

pred = (model.predict(X_test, verbose=0).ravel() > 0.5).astype(int)
print("final loss:", history.history["loss"][-1])
print("final accuracy:", history.history["accuracy"][-1])
print("test accuracy (thresholded):", (pred == y_test).mean())
