"""Checks: pure functions from facts to Verdicts (numpy only; no TensorFlow, no UI)."""
