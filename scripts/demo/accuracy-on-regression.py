"""Diabetes progression regression. My accuracy is 0.0 in every epoch (val too)
while the loss goes down. Is the model learning anything at all?

gradscope-expect: accuracy-on-regression
"""
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from tensorflow.keras.models import Sequential
from tensorflow.keras.layers import Dense, Input
from tensorflow.keras.callbacks import EarlyStopping
from tensorflow.keras.utils import set_random_seed

set_random_seed(40)

X, y = load_diabetes(return_X_y=True)
y = y / 100.0
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
scaler = StandardScaler()
X_train = scaler.fit_transform(X_train)
X_test = scaler.transform(X_test)

model = Sequential([
    Input(shape=(10,)),
    Dense(64, activation="relu"),
    Dense(32, activation="relu"),
    Dense(1),
])
model.compile(optimizer="adam", loss="mse", metrics=["accuracy"])
history = model.fit(X_train, y_train, epochs=40, batch_size=32,
                    validation_data=(X_test, y_test),
                    callbacks=[EarlyStopping(monitor="val_accuracy", patience=5)],
                    verbose=2)
print("epochs run:", len(history.history["loss"]))
print("final loss:", round(history.history["loss"][-1], 4))
print("final accuracy:", history.history["accuracy"][-1])
