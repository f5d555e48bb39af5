"""Unit tests on hand-built facts: no TensorFlow, no model, seconds to run."""
