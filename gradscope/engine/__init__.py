"""Engine: intercepting fit, probing a clone of the model, reading its data."""
