"""Wine classification (3 classes). fit() fails on the first batch with
"Arguments `target` and `output` must have the same rank (ndim)". I have 3
classes and 3 output units, what else does it want?

gradscope-expect: loss-label-mismatch
"""
import keras
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

keras.utils.set_random_seed(3)

X, y = load_wine(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=3)
scaler = StandardScaler()
X_train = scaler.fit_transform(X_train)
X_test = scaler.transform(X_test)


def build_model(n_features, n_classes):
    model = keras.Sequential([
        keras.layers.Input((n_features,)),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(n_classes, activation="softmax"),
    ])
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy",
                  metrics=["accuracy"])
    return model


model = build_model(X_train.shape[1], 3)
history = model.fit(X_train, y_train, epochs=20, batch_size=16,
                    validation_data=(X_test, y_test), verbose=2)
print("final accuracy:", history.history["accuracy"][-1])
