"""Predicting customer churn (about 1 in 5 customers churns). Accuracy goes
to 0.80 in the second epoch and then sits at 0.795-0.80 forever, on train and
validation, which is just the share of customers who stay. The model predicts
"churn" for almost nobody (2 of 800).

gradscope-expect: accuracy-at-baseline
"""
import numpy as np
import tensorflow as tf
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

X, y = make_classification(n_samples=4000, n_features=15, n_informative=2,
                           n_redundant=2, weights=[0.8, 0.2], class_sep=0.1,
                           flip_y=0.02, random_state=13)
X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2,
                                                  stratify=y, random_state=13)
scaler = StandardScaler().fit(X_train)
X_train, X_val = scaler.transform(X_train), scaler.transform(X_val)
print("churn rate:", round(y_train.mean(), 3))

tf.keras.utils.set_random_seed(13)
model = tf.keras.Sequential([
    tf.keras.layers.Input(shape=(15,)),
    tf.keras.layers.Dense(32, activation="relu"),
    tf.keras.layers.Dropout(0.3),
    tf.keras.layers.Dense(16, activation="relu"),
    tf.keras.layers.Dense(1, activation="sigmoid"),
])
model.compile(optimizer="adam", loss="binary_crossentropy",
              metrics=["accuracy", tf.keras.metrics.AUC(name="auc")])
history = model.fit(X_train, y_train, epochs=10, batch_size=64,
                    validation_data=(X_val, y_val), verbose=2)
pred = (model.predict(X_val, verbose=0).ravel() > 0.5).astype(int)
print("accuracy per epoch:", [round(v, 3) for v in history.history["accuracy"]])
print("final val auc:", round(history.history["val_auc"][-1], 3))
print("customers predicted to churn:", int(pred.sum()), "of", len(pred))
